//! The greeting (section 4 of `docs/PROTOCOL.md`), over any link: what
//! each side says first, and what it learns of the other.

use std::io;

use super::compress::{Compressing, Compression, Decompressing};
use super::negotiate::{self, Offer, Settled};
use super::Link;
use crate::wire::codec;
use crate::wire::frame::{Hello, Layout, Message, MAGIC, MAX_HELLO_LEN, ROLE_DIALER};
use crate::wire::version::Negotiated;

/// A connection after the greeting: the link's halves and what the two
/// sides settled on.
pub(crate) struct Established<L: Link> {
    pub reader: Decompressing<L::Read>,
    pub writer: Compressing<L::Write>,
    /// The version, the extensions both listed, and the peer's limits.
    pub negotiated: Negotiated,
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
    /// The two sides share no protocol version; the peer speaks these.
    Version { oldest: u32, newest: u32 },
    /// The listener speaks only version `newest`, which this side speaks
    /// too, but reads only that version's own greeting: dial again and
    /// greet with it.
    Again { newest: u32 },
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

/// Reads the peer's greeting frame.
async fn read_hello<L: Link>(link: &mut L) -> Result<(Hello, Layout), HandshakeError> {
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
            let (hello, layout) = codec::decode_hello(&payload).map_err(|e| {
                HandshakeError::NotProtocol(format!("its first frame is not a greeting ({e})"))
            })?;
            if hello.magic != MAGIC {
                return Err(HandshakeError::NotProtocol(format!(
                    "its greeting starts with {:02x?}, not {:02x?}",
                    hello.magic, MAGIC
                )));
            }
            Ok((hello, layout))
        }
    }
}

fn established<L: Link>(
    link: L,
    ours: &Offer,
    peer: &Hello,
    negotiated: Negotiated,
    compression: Compression,
) -> Established<L> {
    let theirs = negotiated.peer_max_frame_length();
    let (reader, writer) = link.split(ours.max_frame_length, theirs);
    Established {
        reader: Decompressing::new(reader, compression, ours.max_frame_length),
        // Compressed frames go to a peer that accepts them, whether or not
        // this side does.
        writer: Compressing::new(writer, compression, peer.extensions),
        negotiated,
    }
}

/// Greets as the side that dialed, offering `ours`, and waits for the
/// answer.
pub(crate) async fn dial<L: Link>(
    mut link: L,
    ours: Offer,
    compression: Compression,
) -> Result<Established<L>, HandshakeError> {
    link.send(ours.greeting(ROLE_DIALER))
        .await
        .map_err(io_error)?;
    let (theirs, layout) = read_hello(&mut link).await?;
    if theirs.role == ROLE_DIALER {
        return Err(HandshakeError::NotProtocol(
            "it sent our own greeting back (an echo server?)".to_owned(),
        ));
    }
    match negotiate::settle(&ours, &theirs, layout) {
        Settled::Agreed(negotiated) => {
            Ok(established(link, &ours, &theirs, negotiated, compression))
        }
        Settled::Again { newest } => Err(HandshakeError::Again { newest }),
        Settled::Mismatch { oldest, newest } => Err(HandshakeError::Version { oldest, newest }),
    }
}

/// Waits for a dialer's greeting and answers it, offering `ours`.
///
/// When the two share no version the listener still sends its greeting,
/// in a layout the dialer reads (so the dialer learns which versions it
/// speaks), then a goodbye saying so, then closes.
pub(crate) async fn accept<L: Link>(
    mut link: L,
    ours: Offer,
    compression: Compression,
) -> Result<Established<L>, HandshakeError> {
    let (theirs, layout) = read_hello(&mut link).await?;
    if theirs.role != ROLE_DIALER {
        return Err(HandshakeError::NotProtocol(format!(
            "its greeting has role {}, expected {ROLE_DIALER}",
            theirs.role
        )));
    }
    let answer = negotiate::answer(&ours, &theirs, layout);
    link.send(answer.greeting).await.map_err(io_error)?;
    match answer.outcome {
        Ok(negotiated) => Ok(established(link, &ours, &theirs, negotiated, compression)),
        Err(message) => {
            let _ = link
                .send(codec::encode_goodbye(
                    crate::wire::frame::code::VERSION_MISMATCH,
                    &message,
                ))
                .await;
            let _ = link.close().await;
            Err(HandshakeError::Version {
                oldest: theirs.oldest,
                newest: theirs.newest,
            })
        }
    }
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
