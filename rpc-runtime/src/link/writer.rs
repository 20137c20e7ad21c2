//! The writing half of a byte link: length-prefixed frames, small ones
//! gathered into one buffer, large ones written from where they are.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Sink;
use tokio::io::AsyncWrite;

use crate::telemetry::{self, Transport};

/// A frame at least this long is not copied into the write buffer: it is
/// handed to the operating system from its own memory, in the same
/// (vectored) write as the small frames around it.
const LARGE_FRAME: usize = 16 * 1024;

/// `poll_ready` writes what is queued before it takes more once this much
/// is: the sender's memory for one connection stays bounded by about this
/// and one frame.
const BACKPRESSURE: usize = 128 * 1024;

/// Slices handed to one vectored write (Linux takes up to 1,024).
const MAX_SLICES: usize = 64;

/// What is queued, in order.
#[derive(Debug)]
enum Segment {
    /// The next `n` bytes of the small-frame buffer.
    Small(usize),
    /// A large frame's payload, written from its own memory.
    Large(Bytes),
}

/// Writes frames to a byte stream as section 1 of `docs/PROTOCOL.md`
/// frames them: a 4-byte big-endian length, then the payload.
///
/// Small frames (and every length prefix) are copied into one buffer, so
/// that many of them share one system call; a large frame is queued as it
/// is, and written from its own memory by a vectored write, without a copy.
#[derive(Debug)]
pub struct FrameWriter<W> {
    io: W,
    /// Length prefixes and small frames.
    small: BytesMut,
    /// What `small` and the large frames hold, in the order to write it.
    queue: VecDeque<Segment>,
    /// Bytes queued and not yet written.
    queued: usize,
    /// The longest payload accepted.
    max: usize,
    /// Counts the bytes written.
    sent: &'static metrics::Counter,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Frames for `io`, of at most `max` bytes each.
    pub(crate) fn new(io: W, max: usize) -> Self {
        FrameWriter {
            io,
            small: BytesMut::new(),
            queue: VecDeque::new(),
            queued: 0,
            max,
            sent: &telemetry::bytes(Transport::Stream).0,
        }
    }

    /// The length prefix of a frame of `len` bytes, if it is within the
    /// limit.
    fn prefix(&self, len: usize) -> io::Result<[u8; 4]> {
        match u32::try_from(len) {
            Ok(prefix) if len <= self.max => Ok(prefix.to_be_bytes()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a frame of {len} bytes is over the limit of {}", self.max),
            )),
        }
    }

    /// Copies a small frame, behind its length prefix, into the buffer.
    fn push_small(&mut self, frame: &[u8]) -> io::Result<()> {
        let len = self.prefix(frame.len())?;
        self.small.extend_from_slice(&len);
        self.small.extend_from_slice(frame);
        self.queue_small(4 + frame.len());
        Ok(())
    }

    /// Appends `n` bytes just written to `small` to the queue.
    fn queue_small(&mut self, n: usize) {
        match self.queue.back_mut() {
            Some(Segment::Small(len)) => *len += n,
            _ => self.queue.push_back(Segment::Small(n)),
        }
        self.queued += n;
    }

    /// Writes until the queue is empty.
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.queued > 0 {
            let n = if self.io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let mut count = 0;
                let mut offset = 0;
                for (slot, segment) in slices.iter_mut().zip(&self.queue) {
                    let bytes = match segment {
                        Segment::Small(len) => {
                            let bytes = self.small.get(offset..offset + len).unwrap_or_default();
                            offset += len;
                            bytes
                        }
                        Segment::Large(bytes) => bytes,
                    };
                    *slot = IoSlice::new(bytes);
                    count += 1;
                }
                let slices = slices.get(..count).unwrap_or_default();
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, slices))?
            } else {
                let front = match self.queue.front() {
                    Some(Segment::Small(len)) => self.small.get(..*len).unwrap_or_default(),
                    Some(Segment::Large(bytes)) => bytes,
                    None => &[],
                };
                ready!(Pin::new(&mut self.io).poll_write(cx, front))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(n);
            self.sent.increment(n as u64);
        }
        // Everything is out: the buffer's memory is reused from its start.
        self.small.clear();
        Poll::Ready(Ok(()))
    }

    /// Drops the first `n` queued bytes, which were written.
    fn consume(&mut self, mut n: usize) {
        self.queued -= n.min(self.queued);
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            let (len, done) = match front {
                Segment::Small(len) => {
                    let take = n.min(*len);
                    self.small.advance(take);
                    *len -= take;
                    (take, *len == 0)
                }
                Segment::Large(bytes) => {
                    let take = n.min(bytes.len());
                    bytes.advance(take);
                    (take, bytes.is_empty())
                }
            };
            n -= len;
            if done {
                self.queue.pop_front();
            }
        }
    }
}

impl<W: AsyncWrite + Send + Unpin + 'static> super::FrameWrite for FrameWriter<W> {
    fn start_send_copy(self: Pin<&mut Self>, frame: &[u8]) -> io::Result<()> {
        let this = self.get_mut();
        if frame.len() >= LARGE_FRAME {
            return Pin::new(this).start_send(Bytes::copy_from_slice(frame));
        }
        this.push_small(frame)
    }

    #[inline]
    fn copies(&self, len: usize) -> bool {
        len < LARGE_FRAME
    }
}

impl<W: AsyncWrite + Unpin> Sink<Bytes> for FrameWriter<W> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.queued >= BACKPRESSURE {
            ready!(this.poll_write_queued(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> io::Result<()> {
        let this = self.get_mut();
        if frame.len() < LARGE_FRAME {
            return this.push_small(&frame);
        }
        let len = this.prefix(frame.len())?;
        this.small.extend_from_slice(&len);
        this.queue_small(4);
        this.queued += frame.len();
        this.queue.push_back(Segment::Large(frame));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_queued(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_queued(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use futures::SinkExt;
    use tokio::io::AsyncWrite;

    use super::{FrameWriter, LARGE_FRAME};

    /// A writer that takes at most `step` bytes per write, vectored or not.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        vectored: bool,
        writes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.step;
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(left);
                self.out.extend_from_slice(&buf[..take]);
                left -= take;
                n += take;
            }
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn frames() -> Vec<Bytes> {
        vec![
            Bytes::from_static(b"one"),
            Bytes::from(vec![7u8; LARGE_FRAME + 5]),
            Bytes::from_static(b""),
            Bytes::from_static(b"two"),
            Bytes::from(vec![9u8; 3 * LARGE_FRAME]),
        ]
    }

    fn expected() -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames() {
            out.extend_from_slice(&u32::try_from(frame.len()).unwrap().to_be_bytes());
            out.extend_from_slice(&frame);
        }
        out
    }

    #[tokio::test]
    async fn writes_every_frame_in_order_however_the_stream_takes_it() {
        for vectored in [true, false] {
            for step in [1, 3, 4, 1000, LARGE_FRAME, usize::MAX] {
                let io = Trickle {
                    out: Vec::new(),
                    step,
                    vectored,
                    writes: 0,
                };
                let mut writer = FrameWriter::new(io, usize::MAX);
                for frame in frames() {
                    writer.feed(frame).await.unwrap();
                }
                writer.flush().await.unwrap();
                assert!(writer.queue.is_empty() && writer.queued == 0);
                assert_eq!(
                    writer.io.out,
                    expected(),
                    "step {step}, vectored {vectored}"
                );
                // Written again after the buffer was reused.
                writer.feed(Bytes::from_static(b"more")).await.unwrap();
                writer.close().await.unwrap();
                assert!(writer.io.out.ends_with(b"\0\0\0\x04more"));
            }
        }
    }

    #[tokio::test]
    async fn one_vectored_write_takes_small_and_large_frames_together() {
        let io = Trickle {
            out: Vec::new(),
            step: usize::MAX,
            vectored: true,
            writes: 0,
        };
        let mut writer = FrameWriter::new(io, usize::MAX);
        for frame in frames() {
            writer.feed(frame).await.unwrap();
        }
        writer.flush().await.unwrap();
        assert_eq!(writer.io.writes, 1);
    }

    #[tokio::test]
    async fn refuses_a_frame_over_its_limit() {
        let io = Trickle {
            out: Vec::new(),
            step: usize::MAX,
            vectored: true,
            writes: 0,
        };
        let mut writer = FrameWriter::new(io, 3);
        let error = writer.send(Bytes::from_static(b"four")).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        writer.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(writer.io.out, b"\0\0\0\x02ok");
    }
}
