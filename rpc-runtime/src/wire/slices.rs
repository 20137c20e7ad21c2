//! Byte strings decoded as slices of the frame that carried them.
//!
//! A value of type [`Bytes`] (an argument, a return value, a stream item)
//! is encoded as any byte string is (its length as a varint, then the
//! bytes; `docs/PROTOCOL.md` §4), but decoding it through `serde` copies it
//! out of the frame. Decoded here instead, it is a slice of the received
//! frame: a 1 MiB argument costs no copy and no allocation.

use std::any::{Any, TypeId};

use bytes::Bytes;

/// How a byte string's length is read: the varint at the start of its
/// input, and the bytes it took (the codec's own decoding of a `u64`).
pub(crate) type Length = fn(&[u8]) -> Result<(u64, usize), String>;

/// `body[at..]` decoded as a `T`, when `T` is [`Bytes`]: a slice of `body`,
/// with the number of bytes it took. `None` for every other `T`, which
/// decodes through `serde`.
pub(crate) fn bytes_at<T: 'static>(
    body: &Bytes,
    at: usize,
    length: Length,
) -> Option<Result<(T, usize), String>> {
    if TypeId::of::<T>() != TypeId::of::<Bytes>() {
        return None;
    }
    Some(slice_at(body, at, length).and_then(|(bytes, used)| {
        let mut slot = Some(bytes);
        let any: &mut dyn Any = &mut slot;
        any.downcast_mut::<Option<T>>()
            .and_then(Option::take)
            .map(|value| (value, used))
            .ok_or_else(|| "a byte string did not decode as one".to_owned())
    }))
}

/// The byte string at `body[at..]`, and the bytes its encoding took.
fn slice_at(body: &Bytes, at: usize, length: Length) -> Result<(Bytes, usize), String> {
    let rest = body.get(at..).unwrap_or_default();
    let (len, prefix) = length(rest)?;
    let left = rest.len() - prefix;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= left)
        .ok_or_else(|| format!("a byte string claims {len} bytes, and {left} are left"))?;
    let start = at + prefix;
    Ok((body.slice(start..start + len), prefix + len))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::{bytes_at, Length};
    use crate::wire::codec;

    const LENGTH: Length = codec::decode_prefix::<u64>;

    #[test]
    fn a_byte_string_is_a_slice_of_the_frame_and_decodes_as_serde_would() {
        for len in [0usize, 1, 250, 251, 70_000] {
            let value = Bytes::from(vec![0xA5; len]);
            let mut frame = vec![0xEE, 0xEE];
            frame.extend_from_slice(&codec::encode_value(&value[..]).unwrap().into_bytes());
            frame.push(0x07);
            let frame = Bytes::from(frame);
            let (decoded, used): (Bytes, usize) = bytes_at(&frame, 2, LENGTH).unwrap().unwrap();
            assert_eq!(decoded, value);
            assert_eq!(used, frame.len() - 3);
            if len > 0 {
                assert_eq!(
                    decoded.as_ptr(),
                    frame[frame.len() - 1 - len..].as_ptr(),
                    "no copy"
                );
            }
        }
    }

    #[test]
    fn other_types_are_left_to_serde_and_short_frames_fail() {
        let frame = Bytes::from_static(&[3, 1, 2]);
        assert!(bytes_at::<Vec<u8>>(&frame, 0, LENGTH).is_none());
        assert!(bytes_at::<Bytes>(&frame, 0, LENGTH).unwrap().is_err());
        assert!(bytes_at::<Bytes>(&frame, 9, LENGTH).unwrap().is_err());
        let huge = Bytes::from_static(&[0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(bytes_at::<Bytes>(&huge, 0, LENGTH).unwrap().is_err());
    }
}
