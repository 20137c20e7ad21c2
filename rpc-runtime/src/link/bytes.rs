//! A byte stream as a link: 4-byte big-endian length prefixes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, ReadBuf, ReadHalf, WriteHalf};
use tokio_util::codec::{Decoder, Framed, FramedRead, LengthDelimitedCodec};

use super::writer::FrameWriter;
use super::{FrameRead, Link};
use crate::telemetry::{self, Transport};
use crate::transport::Io;

/// The length-delimited codec of the protocol, for frames of at most `max`.
fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max)
        .new_codec()
}

/// Any byte stream, framed as the protocol frames it (section 1 of
/// `docs/PROTOCOL.md`).
#[derive(Debug)]
pub struct ByteLink<T: Io> {
    framed: Framed<T, LengthDelimitedCodec>,
}

impl<T: Io> ByteLink<T> {
    /// Frames `io`.
    pub fn new(io: T) -> Self {
        ByteLink {
            framed: Framed::new(io, codec(u32::MAX as usize)),
        }
    }
}

impl<T: Io> Link for ByteLink<T> {
    type Read = ByteReader<T>;
    type Write = FrameWriter<WriteHalf<T>>;

    async fn send(&mut self, frame: Bytes) -> io::Result<()> {
        self.framed
            .codec_mut()
            .set_max_frame_length(u32::MAX as usize);
        self.framed.send(frame).await
    }

    async fn recv(&mut self, limit: usize) -> io::Result<Option<Bytes>> {
        self.framed.codec_mut().set_max_frame_length(limit);
        self.framed
            .next()
            .await
            .transpose()
            .map(|f| f.map(BytesMut::freeze))
    }

    async fn close(&mut self) -> io::Result<()> {
        SinkExt::<Bytes>::close(&mut self.framed).await
    }

    fn buffered(&self) -> &[u8] {
        self.framed.read_buffer()
    }

    fn split(self, max_in: usize, max_out: usize) -> (ByteReader<T>, Self::Write) {
        let parts = self.framed.into_parts();
        let (r, w) = tokio::io::split(parts.io);
        // Bytes that arrived right behind the greeting belong to the reader.
        let counted = Counting {
            io: r,
            received: &telemetry::bytes(Transport::Stream).1,
        };
        let mut reader = FramedRead::new(counted, codec(max_in));
        reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
        let primed = parts.read_buf.is_empty();
        // The write buffer starts empty and grows with the traffic, so an
        // idle connection costs less.
        let writer = FrameWriter::new(w, max_out);
        (
            ByteReader {
                inner: reader,
                primed,
            },
            writer,
        )
    }
}

/// The reading half of a [`ByteLink`].
#[derive(Debug)]
pub struct ByteReader<T: Io> {
    inner: FramedRead<Counting<ReadHalf<T>>, LengthDelimitedCodec>,
    /// Whether the frames that came in with the greeting have been taken.
    /// A `FramedRead` reads before it decodes what was put in its buffer,
    /// so until then they are decoded here: a frame that arrived in the
    /// same read as the greeting is answered without waiting for another.
    primed: bool,
}

/// A reading half that counts what it reads, once per read (not per
/// frame: one read often holds many).
#[derive(Debug)]
struct Counting<R> {
    io: R,
    received: &'static metrics::Counter,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.received.increment(read as u64);
        }
        polled
    }
}

impl<T: Io> Stream for ByteReader<T> {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.primed {
            match decode_buffered(&mut this.inner) {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame.freeze()))),
                Ok(None) => this.primed = true,
                Err(e) => {
                    this.primed = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        this.inner
            .poll_next_unpin(cx)
            .map(|frame| frame.map(|frame| frame.map(BytesMut::freeze)))
    }
}

/// Decodes a whole frame already in `reader`'s buffer, if there is one.
fn decode_buffered<T: Io>(
    reader: &mut FramedRead<Counting<ReadHalf<T>>, LengthDelimitedCodec>,
) -> io::Result<Option<BytesMut>> {
    let mut buffer = std::mem::take(reader.read_buffer_mut());
    let decoded = reader.decoder_mut().decode(&mut buffer);
    *reader.read_buffer_mut() = buffer;
    decoded
}

impl<T: Io> FrameRead for ByteReader<T> {
    fn partial(&self) -> usize {
        self.inner.read_buffer().len()
    }
}
