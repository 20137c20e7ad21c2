//! What both ends of a connection share: the greeting and the frame writer.

use std::io;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::frame::{Hello, MAGIC, MAX_HELLO_LEN, PROTOCOL_VERSION, ROLE_DIALER, ROLE_LISTENER};
use crate::transport::Io;

/// Default maximum frame payload, both directions: 16 MiB.
pub(crate) const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// Frames the writer takes from its queue before it flushes.
const WRITE_BATCH: usize = 64;

/// A connection after the greeting: framed halves and what the peer said.
pub(crate) struct Established<T: Io> {
    pub reader: FramedRead<ReadHalf<T>, LengthDelimitedCodec>,
    pub writer: FramedWrite<WriteHalf<T>, LengthDelimitedCodec>,
    /// The largest frame the peer accepts.
    pub peer_max_frame: usize,
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

fn hello(role: u8, max_frame_length: usize) -> Bytes {
    codec::encode_hello(&Hello {
        magic: MAGIC,
        role,
        version: PROTOCOL_VERSION,
        max_frame_length: u32::try_from(max_frame_length).unwrap_or(u32::MAX),
    })
}

/// Reads the peer's greeting frame.
async fn read_hello<T: Io>(
    framed: &mut Framed<T, LengthDelimitedCodec>,
) -> Result<Hello, HandshakeError> {
    match framed.next().await {
        None => Err(HandshakeError::Closed),
        Some(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            let start = framed.read_buffer();
            let what = if start.starts_with(b"HTTP") {
                "it answered like an HTTP server".to_owned()
            } else if start.starts_with(b"SSH-") {
                "it answered like an SSH server".to_owned()
            } else {
                format!("its first bytes are not a greeting ({e})")
            };
            Err(HandshakeError::NotProtocol(what))
        }
        Some(Err(e)) => Err(io_error(e)),
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
    theirs: usize,
) -> Established<T> {
    let parts = framed.into_parts();
    let (r, w) = tokio::io::split(parts.io);
    let mut reader = FramedRead::new(r, codec(ours));
    // Bytes that arrived right behind the greeting belong to the reader.
    reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
    let writer = FramedWrite::new(w, codec(theirs));
    Established {
        reader,
        writer,
        peer_max_frame: theirs,
    }
}

/// Greets as the side that dialed, and waits for the answer.
pub(crate) async fn dial<T: Io>(
    io: T,
    max_frame_length: usize,
) -> Result<Established<T>, HandshakeError> {
    let mut framed = Framed::new(io, codec(MAX_HELLO_LEN));
    framed
        .send(hello(ROLE_DIALER, max_frame_length))
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
    Ok(split(
        framed,
        max_frame_length,
        theirs.max_frame_length as usize,
    ))
}

/// Waits for a dialer's greeting and answers it.
///
/// On a version mismatch the listener still sends its greeting (so the dialer
/// learns which version it speaks), then a goodbye, then closes.
pub(crate) async fn accept<T: Io>(
    io: T,
    max_frame_length: usize,
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
        .send(hello(ROLE_LISTENER, max_frame_length))
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
    Ok(split(
        framed,
        max_frame_length,
        theirs.max_frame_length as usize,
    ))
}

/// Writes queued frames, batching them: it flushes only when the queue is
/// momentarily empty (or the codec's buffer is full), so many small frames
/// share one system call under load.
///
/// Ends cleanly (flush, then shut down the write half) when every sender is
/// gone; ends at once, without flushing, when `cancel` fires.
pub(crate) async fn write_loop<T: Io>(
    mut sink: FramedWrite<WriteHalf<T>, LengthDelimitedCodec>,
    mut queue: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        let n = tokio::select! {
            n = queue.recv_many(&mut batch, WRITE_BATCH) => n,
            () = cancel.cancelled() => return Ok(()),
        };
        if n == 0 {
            break;
        }
        for frame in batch.drain(..) {
            sink.feed(frame).await?;
        }
        if queue.is_empty() {
            SinkExt::<Bytes>::flush(&mut sink).await?;
        }
    }
    SinkExt::<Bytes>::close(&mut sink).await
}
