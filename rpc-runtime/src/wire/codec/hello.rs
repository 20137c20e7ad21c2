//! The greeting's payload in each version's layout (section 4.1 of
//! `docs/PROTOCOL.md`).

use bytes::{Bytes, BytesMut};

use super::{decode_exact, decode_prefix, encode_into};
use crate::wire::frame::{Hello, Layout, ACCEPT_ZSTD};
use crate::wire::version::{Extension, Extensions};

/// Encodes a greeting frame payload in `layout`.
pub(crate) fn encode_hello(hello: &Hello, layout: Layout) -> Bytes {
    let mut buf = BytesMut::with_capacity(24);
    let prefix = (
        hello.magic,
        hello.role,
        hello.newest,
        hello.max_frame_length,
        hello.max_in_flight,
    );
    let encoded = encode_into(&prefix, &mut buf).and_then(|()| match layout {
        Layout::Short => Ok(()),
        Layout::V3 => {
            let zstd = hello.extensions.contains(Extension::ZSTD);
            encode_into(&(if zstd { ACCEPT_ZSTD } else { 0 }), &mut buf)
        }
        Layout::Ranged => {
            let ids: Vec<u32> = hello.extensions.iter().map(Extension::id).collect();
            encode_into(&(hello.oldest, ids), &mut buf)
        }
    });
    // Integers, a byte array and a short list cannot fail to encode.
    if let Err(e) = encoded {
        tracing::error!("encoding a greeting failed: {e}");
    }
    buf.freeze()
}

/// Decodes a greeting frame payload, in the layout its version field says
/// (section 4 of `docs/PROTOCOL.md`). A version-3 greeting must be exactly
/// its struct; a later one may hold fields after its extensions, which are
/// ignored; an earlier one is read as far as its window, whatever follows,
/// so that its sender can be told which versions this side speaks rather
/// than that it is not speaking the protocol.
pub(crate) fn decode_hello(payload: &[u8]) -> Result<(Hello, Layout), String> {
    let ((magic, role, newest, max_frame_length, max_in_flight), used) =
        decode_prefix::<([u8; 4], u8, u32, u32, u32)>(payload)?;
    let rest = payload.get(used..).unwrap_or_default();
    let layout = Layout::of(newest);
    let (oldest, extensions) = match layout {
        Layout::Short => (newest, Extensions::none()),
        Layout::V3 => {
            let accepts = decode_exact::<u32>(rest)?;
            let zstd = accepts & ACCEPT_ZSTD != 0;
            let extensions = if zstd {
                Extensions::none().with(Extension::ZSTD)
            } else {
                Extensions::none()
            };
            (newest, extensions)
        }
        Layout::Ranged => {
            let ((oldest, ids), _later_fields) = decode_prefix::<(u32, Vec<u32>)>(rest)?;
            if oldest > newest {
                return Err(format!(
                    "its oldest version ({oldest}) is newer than its newest ({newest})"
                ));
            }
            (oldest, Extensions::from_ids(ids))
        }
    };
    let hello = Hello {
        magic,
        role,
        newest,
        oldest,
        max_frame_length,
        max_in_flight,
        extensions,
    };
    Ok((hello, layout))
}
