//! The greeting (section 4 of `docs/PROTOCOL.md`), over any link: what
//! each side says first, and what it learns of the other.

use std::io;

use bytes::Bytes;

use super::compress::{Compressing, Compression, Decompressing};
use super::Link;
use crate::wire::codec;
use crate::wire::frame::{
    Hello, Message, MAGIC, MAX_HELLO_LEN, PROTOCOL_VERSION, ROLE_DIALER, ROLE_LISTENER,
};

/// A connection after the greeting: the link's halves and what the peer
/// said.
pub(crate) struct Established<L: Link> {
    pub reader: Decompressing<L::Read>,
    pub writer: Compressing<L::Write>,
    /// The largest frame the peer accepts.
    pub peer_max_frame: usize,
    /// The most calls the peer runs at once for us.
    pub peer_max_in_flight: usize,
}

/// Why a greeting failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The peer closed the connection before greeting.
    Closed,
    /// The peer sent something that is not a greeting of this protocol.
    NotProtocol(String),
    /// The peer speaks another version.
    Version { remote: u32 },
    /// The listener answered the greeting with a goodbye (busy, shutting down).
    Refused { code: u32, message: String },
}

/// A peer that resets the connection during the greeting has hung up.
fn io_error(e: io::Error) -> HandshakeError {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => HandshakeError::Closed,
        _ => HandshakeError::Io(e),
    }
}

/// A greeting; `accepts`: the compressions this side accepts.
pub(crate) fn hello(
    role: u8,
    max_frame_length: usize,
    max_in_flight: usize,
    accepts: u32,
) -> Bytes {
    codec::encode_hello(&Hello {
        magic: MAGIC,
        role,
        version: PROTOCOL_VERSION,
        max_frame_length: u32::try_from(max_frame_length).unwrap_or(u32::MAX),
        max_in_flight: u32::try_from(max_in_flight).unwrap_or(u32::MAX),
        accepts,
    })
}

/// Reads the peer's greeting frame.
async fn read_hello<L: Link>(link: &mut L) -> Result<Hello, HandshakeError> {
    match link.recv(MAX_HELLO_LEN).await {
        Ok(None) => Err(HandshakeError::Closed),
        // A TLS alert from the peer (over a TLS connection).
        #[cfg(feature = "tls")]
        Err(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>()) =>
        {
            Err(HandshakeError::Io(e))
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let start = link.buffered();
            let what = if start.starts_with(b"HTTP") {
                "it answered like an HTTP server".to_owned()
            } else if matches!(start.first(), Some(0x15 | 0x16)) && start.get(1) == Some(&0x03) {
                // A TLS record (an alert or a handshake) from a TLS server.
                "it answered with TLS: the server requires TLS (ChannelBuilder::tls)".to_owned()
            } else if start.starts_with(b"SSH-") {
                "it answered like an SSH server".to_owned()
            } else {
                format!("its first bytes are not a greeting ({e})")
            };
            Err(HandshakeError::NotProtocol(what))
        }
        Err(e) => Err(io_error(e)),
        Ok(Some(payload)) if !payload.starts_with(&MAGIC) => {
            // A listener may refuse with a goodbye in place of its greeting.
            match codec::decode_message(&payload) {
                Ok((Message::Goodbye { code, message }, _)) => Err(HandshakeError::Refused {
                    code,
                    message: message.to_owned(),
                }),
                _ => Err(HandshakeError::NotProtocol(format!(
                    "its first frame is not a greeting (it starts with {:02x?})",
                    payload.get(..payload.len().min(4)).unwrap_or_default()
                ))),
            }
        }
        Ok(Some(payload)) => {
            let hello = codec::decode_hello(&payload).map_err(|e| {
                HandshakeError::NotProtocol(format!("its first frame is not a greeting ({e})"))
            })?;
            if hello.magic != MAGIC {
                return Err(HandshakeError::NotProtocol(format!(
                    "its greeting starts with {:02x?}, not {:02x?}",
                    hello.magic, MAGIC
                )));
            }
            Ok(hello)
        }
    }
}

fn established<L: Link>(
    link: L,
    ours: usize,
    peer: &Hello,
    compression: Compression,
) -> Established<L> {
    let theirs = peer.max_frame_length as usize;
    let (reader, writer) = link.split(ours, theirs);
    Established {
        reader: Decompressing::new(reader, compression, ours),
        writer: Compressing::new(writer, compression, peer.accepts),
        peer_max_frame: theirs,
        peer_max_in_flight: peer.max_in_flight as usize,
    }
}

/// Greets as the side that dialed, and waits for the answer.
pub(crate) async fn dial<L: Link>(
    mut link: L,
    max_frame_length: usize,
    max_in_flight: usize,
    compression: Compression,
) -> Result<Established<L>, HandshakeError> {
    link
        // 0 unless this side serves services for the listener to call.
        .send(hello(
            ROLE_DIALER,
            max_frame_length,
            max_in_flight,
            compression.accepts(),
        ))
        .await
        .map_err(io_error)?;
    let theirs = read_hello(&mut link).await?;
    if theirs.role == ROLE_DIALER {
        return Err(HandshakeError::NotProtocol(
            "it sent our own greeting back (an echo server?)".to_owned(),
        ));
    }
    if theirs.version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version {
            remote: theirs.version,
        });
    }
    Ok(established(link, max_frame_length, &theirs, compression))
}

/// Waits for a dialer's greeting and answers it.
///
/// On a version mismatch the listener still sends its greeting (so the dialer
/// learns which version it speaks), then a goodbye, then closes.
pub(crate) async fn accept<L: Link>(
    mut link: L,
    max_frame_length: usize,
    max_in_flight: usize,
    compression: Compression,
) -> Result<Established<L>, HandshakeError> {
    let theirs = read_hello(&mut link).await?;
    if theirs.role != ROLE_DIALER {
        return Err(HandshakeError::NotProtocol(format!(
            "its greeting has role {}, expected {ROLE_DIALER}",
            theirs.role
        )));
    }
    link.send(hello(
        ROLE_LISTENER,
        max_frame_length,
        max_in_flight,
        compression.accepts(),
    ))
    .await
    .map_err(io_error)?;
    if theirs.version != PROTOCOL_VERSION {
        let message = format!(
            "unsupported protocol version {}; this server speaks version {PROTOCOL_VERSION}",
            theirs.version
        );
        let _ = link
            .send(codec::encode_goodbye(
                crate::wire::frame::code::VERSION_MISMATCH,
                &message,
            ))
            .await;
        let _ = link.close().await;
        return Err(HandshakeError::Version {
            remote: theirs.version,
        });
    }
    Ok(established(link, max_frame_length, &theirs, compression))
}

/// Refuses a dialer: reads its greeting (so closing does not reset the
/// connection under the goodbye), answers with a goodbye in place of a
/// greeting, and closes.
pub(crate) async fn refuse<L: Link>(
    mut link: L,
    code: u32,
    message: &str,
) -> Result<(), HandshakeError> {
    read_hello(&mut link).await?;
    link.send(codec::encode_goodbye(code, message))
        .await
        .map_err(io_error)?;
    link.close().await.map_err(io_error)
}
