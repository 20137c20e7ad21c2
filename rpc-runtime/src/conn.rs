//! What both ends of a connection share: the greeting and the frame writer.

use std::io;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, FramedParts, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::frame::{
    Hello, Message, MAGIC, MAX_HELLO_LEN, PROTOCOL_VERSION, ROLE_DIALER, ROLE_LISTENER,
};
use crate::transport::Io;

/// Default maximum frame payload, both directions: 16 MiB.
pub(crate) const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// How long a writer that is being stopped may take to send the control
/// frames (cancels) still queued.
const FAREWELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Frames the writer takes from its queue before it flushes.
const WRITE_BATCH: usize = 64;

/// The read half of a connection after the greeting.
pub(crate) type Reader<T> = Framed<ReadHalf<T>, LengthDelimitedCodec>;

/// A connection after the greeting: framed halves and what the peer said.
pub(crate) struct Established<T: Io> {
    /// The read half. A `Framed` (of which only the reading side is used)
    /// rather than a `FramedRead`, because only `Framed::from_parts` knows
    /// that bytes already buffered may hold whole frames: frames that came
    /// in the same read as the greeting are decoded before the next read.
    pub reader: Reader<T>,
    pub writer: FramedWrite<WriteHalf<T>, LengthDelimitedCodec>,
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

fn codec(max_frame_length: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max_frame_length)
        .new_codec()
}

fn hello(role: u8, max_frame_length: usize, max_in_flight: usize) -> Bytes {
    codec::encode_hello(&Hello {
        magic: MAGIC,
        role,
        version: PROTOCOL_VERSION,
        max_frame_length: u32::try_from(max_frame_length).unwrap_or(u32::MAX),
        max_in_flight: u32::try_from(max_in_flight).unwrap_or(u32::MAX),
    })
}

/// Reads the peer's greeting frame.
async fn read_hello<T: Io>(
    framed: &mut Framed<T, LengthDelimitedCodec>,
) -> Result<Hello, HandshakeError> {
    match framed.next().await {
        None => Err(HandshakeError::Closed),
        // A TLS alert from the peer (over a TLS connection).
        #[cfg(feature = "tls")]
        Some(Err(e))
            if e.get_ref()
                .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>()) =>
        {
            Err(HandshakeError::Io(e))
        }
        Some(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            let start = framed.read_buffer();
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
        Some(Err(e)) => Err(io_error(e)),
        Some(Ok(payload)) if !payload.starts_with(&MAGIC) => {
            // A listener may refuse with a goodbye in place of its greeting.
            match codec::decode_message(&payload) {
                Ok((Message::Goodbye { code, message }, _)) => Err(HandshakeError::Refused {
                    code,
                    message: message.to_owned(),
                }),
                _ => Err(HandshakeError::NotProtocol(format!(
                    "its first frame is not a greeting (it starts with {:02x?})",
                    &payload[..payload.len().min(4)]
                ))),
            }
        }
        Some(Ok(payload)) => {
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

fn split<T: Io>(
    framed: Framed<T, LengthDelimitedCodec>,
    ours: usize,
    peer: &Hello,
) -> Established<T> {
    let theirs = peer.max_frame_length as usize;
    let parts = framed.into_parts();
    let (r, w) = tokio::io::split(parts.io);
    // Bytes that arrived right behind the greeting belong to the reader,
    // which decodes the frames among them before it reads again.
    let mut read_parts = FramedParts::new::<Bytes>(r, codec(ours));
    read_parts.read_buf = parts.read_buf;
    let reader = Framed::from_parts(read_parts);
    let mut writer = FramedWrite::new(w, codec(theirs));
    // The codec starts with an 8 KiB write buffer; start empty instead and
    // grow with the traffic, so an idle connection costs less memory.
    *writer.write_buffer_mut() = BytesMut::new();
    Established {
        reader,
        writer,
        peer_max_frame: theirs,
        peer_max_in_flight: peer.max_in_flight as usize,
    }
}

/// Greets as the side that dialed, and waits for the answer.
pub(crate) async fn dial<T: Io>(
    io: T,
    max_frame_length: usize,
    max_in_flight: usize,
) -> Result<Established<T>, HandshakeError> {
    let mut framed = Framed::new(io, codec(MAX_HELLO_LEN));
    framed
        // 0 unless this side serves services for the listener to call.
        .send(hello(ROLE_DIALER, max_frame_length, max_in_flight))
        .await
        .map_err(io_error)?;
    let theirs = read_hello(&mut framed).await?;
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
    Ok(split(framed, max_frame_length, &theirs))
}

/// Waits for a dialer's greeting and answers it.
///
/// On a version mismatch the listener still sends its greeting (so the dialer
/// learns which version it speaks), then a goodbye, then closes.
pub(crate) async fn accept<T: Io>(
    io: T,
    max_frame_length: usize,
    max_in_flight: usize,
) -> Result<Established<T>, HandshakeError> {
    let mut framed = Framed::new(io, codec(MAX_HELLO_LEN));
    let theirs = read_hello(&mut framed).await?;
    if theirs.role != ROLE_DIALER {
        return Err(HandshakeError::NotProtocol(format!(
            "its greeting has role {}, expected {ROLE_DIALER}",
            theirs.role
        )));
    }
    framed
        .send(hello(ROLE_LISTENER, max_frame_length, max_in_flight))
        .await
        .map_err(io_error)?;
    if theirs.version != PROTOCOL_VERSION {
        let message = format!(
            "unsupported protocol version {}; this server speaks version {PROTOCOL_VERSION}",
            theirs.version
        );
        framed.codec_mut().set_max_frame_length(1024);
        let _ = framed
            .send(codec::encode_goodbye(
                crate::frame::code::VERSION_MISMATCH,
                &message,
            ))
            .await;
        let _ = SinkExt::<Bytes>::close(&mut framed).await;
        return Err(HandshakeError::Version {
            remote: theirs.version,
        });
    }
    Ok(split(framed, max_frame_length, &theirs))
}

/// Refuses a dialer: reads its greeting (so closing does not reset the
/// connection under the goodbye), answers with a goodbye in place of a
/// greeting, and closes.
pub(crate) async fn refuse<T: Io>(io: T, code: u32, message: &str) -> Result<(), HandshakeError> {
    let mut framed = Framed::new(io, codec(MAX_HELLO_LEN));
    read_hello(&mut framed).await?;
    framed.codec_mut().set_max_frame_length(4096);
    framed
        .send(codec::encode_goodbye(code, message))
        .await
        .map_err(io_error)?;
    SinkExt::<Bytes>::close(&mut framed).await.map_err(io_error)
}

/// A frame for the writer, and whom to tell once it is flushed.
pub(crate) struct Outgoing {
    pub frame: Bytes,
    /// Told after the frame has been handed to the operating system.
    pub written: Option<oneshot::Sender<()>>,
}

impl Outgoing {
    pub(crate) fn frame(frame: Bytes) -> Self {
        Outgoing {
            frame,
            written: None,
        }
    }
}

/// Writes queued frames, batching them: it flushes only when the queue is
/// momentarily empty (or the codec's buffer is full, or someone waits to
/// hear that a frame was written), so many small frames share one system
/// call under load. `control` (cancels, pings, pongs) goes first.
///
/// Ends cleanly (flush, then shut down the write half) when every sender of
/// both queues is gone; when `cancel` fires it sends only the control frames
/// still queued (within [`FAREWELL_TIMEOUT`]) and ends.
pub(crate) async fn write_loop<T: Io>(
    mut sink: FramedWrite<WriteHalf<T>, LengthDelimitedCodec>,
    mut queue: mpsc::Receiver<Outgoing>,
    mut control: mpsc::UnboundedReceiver<Bytes>,
    cancel: CancellationToken,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    let (mut queue_open, mut control_open) = (true, true);
    let mut unflushed = false;
    while queue_open || control_open {
        if unflushed && queue.is_empty() && control.is_empty() {
            // Before paying for a system call, give the tasks producing
            // frames one turn to add theirs to this batch: under load this
            // turns one write per frame into one write per many frames.
            tokio::task::yield_now().await;
            if queue.is_empty() && control.is_empty() {
                SinkExt::<Bytes>::flush(&mut sink).await?;
                unflushed = false;
                for ack in acks.drain(..) {
                    let _ = ack.send(());
                }
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // The connection is being dropped (its last channel went
                // away, say): the cancels of the calls dropped with it are
                // already queued, and the peer must still hear them, or it
                // runs those calls to their deadlines. Best effort, briefly.
                let farewell = async {
                    while let Ok(frame) = control.try_recv() {
                        sink.feed(frame).await?;
                    }
                    SinkExt::<Bytes>::close(&mut sink).await
                };
                let _ = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await;
                return Ok(());
            }
            frame = control.recv(), if control_open => match frame {
                Some(frame) => {
                    sink.feed(frame).await?;
                    unflushed = true;
                }
                None => control_open = false,
            },
            n = queue.recv_many(&mut batch, WRITE_BATCH), if queue_open => {
                if n == 0 {
                    queue_open = false;
                }
                for outgoing in batch.drain(..) {
                    sink.feed(outgoing.frame).await?;
                    acks.extend(outgoing.written);
                    unflushed = true;
                }
            }
        }
    }
    SinkExt::<Bytes>::close(&mut sink).await?;
    for ack in acks.drain(..) {
        let _ = ack.send(());
    }
    Ok(())
}
