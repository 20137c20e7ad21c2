//! zstd compression of whole frames, above the link: whatever a link
//! carries, a frame worth compressing goes out as [`ZSTD_FRAME`] followed by
//! one zstd frame holding the original payload, and comes back as the
//! original payload before anything else reads it.
//!
//! Each side says in its greeting whether it accepts compressed frames;
//! each direction compresses on its own (a side sends compressed frames
//! only to a peer that accepts them, and only if its own settings say so).
//! A frame is compressed when it is at least the threshold long, and kept
//! compressed only if that saved a tenth of it; a large frame is first
//! judged by a sample of its start, and after a frame that did not
//! shrink, the next ones above the threshold are sent as they are (1, 2, 4,
//! ... up to 64 of them), so incompressible traffic costs little.
//!
//! Decompression is bounded by the receiver's frame limit: a compressed
//! frame must declare its size (zstd does when it compresses in one go),
//! and one declaring more than the limit fails the read before anything is
//! allocated, as a frame over the limit does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};

use super::{FrameRead, FrameWrite};
use crate::wire::version::{Extension, Extensions};

/// How a side compresses the frames it sends and whether it accepts
/// compressed ones: for
/// [`ServerBuilder::compression`](crate::ServerBuilder::compression) and
/// [`ChannelBuilder::compression`](crate::ChannelBuilder::compression).
///
/// By default (with the `zstd` feature, on by default), frames of 1 KiB and
/// more are compressed with zstd at level 1 for a peer that accepts them,
/// and compressed frames are accepted. Over NATS nothing is compressed.
///
/// ```
/// use rpc_runtime::Compression;
///
/// let larger_only = Compression::default().threshold(64 * 1024);
/// let tighter = Compression::default().level(6);
/// let off = Compression::disabled();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Frames of at least this many bytes are compressed; `None`: none.
    threshold: Option<usize>,
    /// zstd's level.
    level: i32,
    /// Whether compressed frames are accepted.
    accept: bool,
}

/// The default threshold: below about a kilobyte, compression saves little
/// and costs its fixed overhead.
const DEFAULT_THRESHOLD: usize = 1024;
/// The default level: zstd's fastest but one, for loopback-fast links.
const DEFAULT_LEVEL: i32 = 1;

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: Some(DEFAULT_THRESHOLD),
            level: DEFAULT_LEVEL,
            accept: true,
        }
    }
}

impl Compression {
    /// No compression either way: nothing is compressed, and the greeting
    /// says compressed frames are not accepted.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().compression(rpc_runtime::Compression::disabled());
    /// ```
    #[must_use]
    pub fn disabled() -> Self {
        Compression {
            threshold: None,
            level: DEFAULT_LEVEL,
            accept: false,
        }
    }

    /// Compresses frames of at least `bytes` bytes (default 1 KiB).
    ///
    /// ```
    /// let compression = rpc_runtime::Compression::default().threshold(16 * 1024);
    /// ```
    #[must_use]
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = Some(bytes);
        self
    }

    /// zstd's compression level (default 1; 1 to 22, higher is smaller
    /// and slower; negative levels are faster still).
    ///
    /// ```
    /// let compression = rpc_runtime::Compression::default().level(3);
    /// ```
    #[must_use]
    pub fn level(mut self, level: i32) -> Self {
        self.level = level;
        self
    }

    /// Sends frames as they are, still accepting compressed ones from the
    /// peer.
    ///
    /// ```
    /// let compression = rpc_runtime::Compression::default().send_uncompressed();
    /// ```
    #[must_use]
    pub fn send_uncompressed(mut self) -> Self {
        self.threshold = None;
        self
    }

    /// The extensions the greeting lists for these settings: zstd when
    /// this side accepts compressed frames.
    pub(crate) fn extensions(self) -> Extensions {
        if self.accept && cfg!(feature = "zstd") {
            Extensions::none().with(Extension::ZSTD)
        } else {
            Extensions::none()
        }
    }
}

/// The writing half of a link, compressing what is worth it.
pub struct Compressing<W> {
    inner: W,
    #[cfg(feature = "zstd")]
    encoder: Option<zstd_codec::Encoder>,
}

/// The reading half of a link, decompressing compressed frames.
pub struct Decompressing<R> {
    inner: R,
    #[cfg(feature = "zstd")]
    decoder: Option<zstd_codec::Decoder>,
}

impl<W> Compressing<W> {
    /// `inner`, compressing with `ours` if the peer listed zstd among the
    /// extensions it accepts.
    pub(crate) fn new(inner: W, ours: Compression, peer: Extensions) -> Self {
        #[cfg(feature = "zstd")]
        {
            let encoder = match ours.threshold {
                Some(threshold) if peer.contains(Extension::ZSTD) => {
                    zstd_codec::Encoder::new(threshold, ours.level)
                }
                _ => None,
            };
            Compressing { inner, encoder }
        }
        #[cfg(not(feature = "zstd"))]
        {
            let _ = (ours, peer);
            Compressing { inner }
        }
    }

    /// `frame`, compressed if that is worth it.
    #[inline]
    fn outgoing(&mut self, frame: Bytes) -> Bytes {
        #[cfg(feature = "zstd")]
        if let Some(encoder) = &mut self.encoder {
            if let Some(compressed) = encoder.compress(&frame) {
                return compressed;
            }
        }
        frame
    }

    /// Whether `len` bytes might be compressed.
    #[inline]
    fn might_compress(&self, len: usize) -> bool {
        #[cfg(feature = "zstd")]
        if let Some(encoder) = &self.encoder {
            return len >= encoder.threshold();
        }
        let _ = len;
        false
    }
}

impl<R> Decompressing<R> {
    /// `inner`, decompressing frames of up to `limit` bytes if this side
    /// accepts them (`ours`).
    pub(crate) fn new(inner: R, ours: Compression, limit: usize) -> Self {
        #[cfg(feature = "zstd")]
        {
            let decoder = ours
                .extensions()
                .contains(Extension::ZSTD)
                .then(|| zstd_codec::Decoder::new(limit))
                .flatten();
            Decompressing { inner, decoder }
        }
        #[cfg(not(feature = "zstd"))]
        {
            let _ = (ours, limit);
            Decompressing { inner }
        }
    }
}

impl<W: FrameWrite> Sink<Bytes> for Compressing<W> {
    type Error = io::Error;

    #[inline]
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    #[inline]
    fn start_send(mut self: Pin<&mut Self>, frame: Bytes) -> io::Result<()> {
        let frame = if self.might_compress(frame.len()) {
            self.outgoing(frame)
        } else {
            frame
        };
        Pin::new(&mut self.inner).start_send(frame)
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    #[inline]
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<W: FrameWrite> FrameWrite for Compressing<W> {
    #[inline]
    fn start_send_copy(mut self: Pin<&mut Self>, frame: &[u8]) -> io::Result<()> {
        if self.might_compress(frame.len()) {
            let frame = self.outgoing(Bytes::copy_from_slice(frame));
            Pin::new(&mut self.inner).start_send(frame)
        } else {
            Pin::new(&mut self.inner).start_send_copy(frame)
        }
    }

    #[inline]
    fn copies(&self, len: usize) -> bool {
        // A frame to compress is compressed into a buffer of its own.
        !self.might_compress(len) && self.inner.copies(len)
    }
}

impl<R: FrameRead> Stream for Decompressing<R> {
    type Item = io::Result<Bytes>;

    #[inline]
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        #[cfg(feature = "zstd")]
        if let Poll::Ready(Some(Ok(frame))) = &next {
            if frame.first() == Some(&crate::wire::frame::ZSTD_FRAME) {
                if let Some(decoder) = &mut self.decoder {
                    return Poll::Ready(Some(decoder.decompress(frame)));
                }
            }
        }
        // A compressed frame this side does not accept goes on as it is:
        // no message starts with its first byte, so it fails as one that
        // does not decode.
        next
    }
}

impl<R: FrameRead> FrameRead for Decompressing<R> {
    fn partial(&self) -> usize {
        self.inner.partial()
    }
}

#[cfg(feature = "zstd")]
mod zstd_codec {
    use std::io;

    use bytes::{Bytes, BytesMut};

    use crate::wire::frame::ZSTD_FRAME;

    /// How much of a large frame is tried first.
    const SAMPLE: usize = 16 * 1024;
    /// The most frames sent as they are after one that did not shrink.
    const MAX_BACKOFF: u32 = 64;

    /// Whether compressing `from` bytes to `to` was worth it: a tenth saved.
    fn worth(from: usize, to: usize) -> bool {
        to.saturating_mul(10) < from.saturating_mul(9)
    }

    pub(super) struct Encoder {
        compressor: zstd::bulk::Compressor<'static>,
        threshold: usize,
        /// Frames above the threshold still to send as they are.
        skip: u32,
        /// How many to skip after the next one that does not shrink.
        backoff: u32,
        sample: Vec<u8>,
        /// Where frames are compressed: one allocation, taken back for the
        /// next frame once the last one is written (fresh memory for each
        /// frame costs more in page faults than compressing it).
        out: BytesMut,
    }

    impl Encoder {
        pub(super) fn new(threshold: usize, level: i32) -> Option<Self> {
            match zstd::bulk::Compressor::new(level) {
                Ok(compressor) => Some(Encoder {
                    compressor,
                    threshold,
                    skip: 0,
                    backoff: 1,
                    sample: Vec::new(),
                    out: BytesMut::new(),
                }),
                Err(error) => {
                    tracing::warn!(%error, "zstd cannot compress at this level; sending frames as they are");
                    None
                }
            }
        }

        pub(super) fn threshold(&self) -> usize {
            self.threshold
        }

        /// `frame`, compressed, if that is worth it.
        pub(super) fn compress(&mut self, frame: &[u8]) -> Option<Bytes> {
            if self.skip > 0 {
                self.skip -= 1;
                return None;
            }
            if frame.len() >= 4 * SAMPLE {
                let sample = frame.get(..SAMPLE).unwrap_or(frame);
                self.sample.clear();
                self.sample
                    .reserve(zstd::zstd_safe::compress_bound(sample.len()));
                let shrank = self
                    .compressor
                    .compress_to_buffer(sample, &mut self.sample)
                    .is_ok_and(|n| worth(sample.len(), n));
                if !shrank {
                    self.missed();
                    return None;
                }
            }
            self.out.clear();
            self.out
                .resize(1 + zstd::zstd_safe::compress_bound(frame.len()), 0);
            let compressed = self
                .out
                .get_mut(1..)
                .and_then(|room| self.compressor.compress_to_buffer(frame, room).ok());
            match compressed {
                Some(n) if worth(frame.len(), 1 + n) => {
                    self.out.truncate(1 + n);
                    if let Some(first) = self.out.first_mut() {
                        *first = ZSTD_FRAME;
                    }
                    self.backoff = 1;
                    Some(self.out.split().freeze())
                }
                _ => {
                    self.missed();
                    None
                }
            }
        }

        fn missed(&mut self) {
            self.skip = self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    pub(super) struct Decoder {
        decompressor: zstd::bulk::Decompressor<'static>,
        limit: usize,
        /// Where frames are decompressed, taken back once the last frame
        /// is dropped (as the byte link's read buffer is).
        out: BytesMut,
    }

    impl Decoder {
        pub(super) fn new(limit: usize) -> Option<Self> {
            zstd::bulk::Decompressor::new()
                .ok()
                .map(|decompressor| Decoder {
                    decompressor,
                    limit,
                    out: BytesMut::new(),
                })
        }

        /// The payload `frame` (which starts with [`ZSTD_FRAME`]) holds.
        pub(super) fn decompress(&mut self, frame: &[u8]) -> io::Result<Bytes> {
            let data = frame.get(1..).unwrap_or_default();
            let bad = |message: String| io::Error::other(message);
            let size = match zstd::zstd_safe::get_frame_content_size(data) {
                Ok(Some(size)) => size,
                Ok(None) => {
                    return Err(bad(
                        "a compressed frame does not declare its size".to_owned()
                    ))
                }
                Err(_) => return Err(bad("a compressed frame is not zstd".to_owned())),
            };
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > self.limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a compressed frame holds {size} bytes, over the limit of {}",
                        self.limit
                    ),
                ));
            }
            self.out.clear();
            self.out.resize(size, 0);
            let written = self
                .decompressor
                .decompress_to_buffer(data, &mut self.out[..])
                .map_err(|e| bad(format!("a compressed frame does not decompress: {e}")))?;
            if written != size {
                return Err(bad(format!(
                    "a compressed frame declares {size} bytes and holds {written}"
                )));
            }
            if self.out.first() == Some(&ZSTD_FRAME) {
                return Err(bad("a compressed frame holds another".to_owned()));
            }
            Ok(self.out.split().freeze())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{Decoder, Encoder, SAMPLE};
        use crate::wire::frame::ZSTD_FRAME;

        fn text(len: usize) -> Vec<u8> {
            b"compressible text, "
                .iter()
                .copied()
                .cycle()
                .take(len)
                .collect()
        }

        fn noise(len: usize) -> Vec<u8> {
            let mut x: u32 = 0x1234_5678;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[1]
                })
                .collect()
        }

        #[test]
        fn round_trip_within_the_limit() {
            let mut encoder = Encoder::new(1024, 1).unwrap();
            let frame = text(100_000);
            let compressed = encoder.compress(&frame).unwrap();
            assert_eq!(compressed.first(), Some(&ZSTD_FRAME));
            assert!(compressed.len() < frame.len() / 10);
            let mut decoder = Decoder::new(100_000).unwrap();
            assert_eq!(decoder.decompress(&compressed).unwrap(), frame);
            // One byte less of room: refused before decompressing.
            let mut tight = Decoder::new(99_999).unwrap();
            let error = tight.decompress(&compressed).unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
        }

        #[test]
        fn frames_that_do_not_shrink_back_off() {
            let mut encoder = Encoder::new(1024, 1).unwrap();
            let large_noise = noise(8 * SAMPLE);
            let skipped = |encoder: &mut Encoder, n: usize| {
                (0..n).all(|_| encoder.compress(&text(10_000)).is_none())
            };
            // Judged by its sample; the next frame goes as it is, then two.
            assert!(encoder.compress(&large_noise).is_none());
            assert!(skipped(&mut encoder, 1));
            assert!(encoder.compress(&noise(2000)).is_none());
            assert!(skipped(&mut encoder, 2));
            // A frame that shrinks ends the backing off.
            assert!(encoder.compress(&text(10_000)).is_some());
            assert!(encoder.compress(&noise(2000)).is_none());
            assert!(skipped(&mut encoder, 1));
            assert!(encoder.compress(&text(10_000)).is_some());
            // After a long run of noise, at most 64 frames go as they are
            // before one is tried again.
            for _ in 0..1000 {
                assert!(encoder.compress(&noise(2000)).is_none());
            }
            let waited = (0..100)
                .take_while(|_| encoder.compress(&text(10_000)).is_none())
                .count();
            assert!((2..=64).contains(&waited), "{waited}");
        }

        #[test]
        fn a_frame_without_its_size_is_refused() {
            // A streamed zstd frame does not declare its size.
            let mut streamed = vec![ZSTD_FRAME];
            let mut writer = zstd::stream::Encoder::new(&mut streamed, 1).unwrap();
            std::io::Write::write_all(&mut writer, &text(5000)).unwrap();
            writer.finish().unwrap();
            let mut decoder = Decoder::new(1 << 20).unwrap();
            let error = decoder.decompress(&streamed).unwrap_err();
            assert!(error.to_string().contains("declare its size"), "{error}");
        }
    }
}
