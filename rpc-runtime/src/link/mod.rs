//! Links: what carries whole frames between the two ends of a connection.
//!
//! Everything above a link (the greeting, multiplexing, deadlines, streams,
//! dispatch) sees only whole frames, so a transport plugs in here:
//!
//! - a byte stream (TCP, a Unix socket, TLS, any `AsyncRead + AsyncWrite`)
//!   becomes a link through length-delimited framing ([`ByteLink`]); this is
//!   what [`Server::serve`](crate::ServerBuilder::serve) and
//!   [`Channel::connect`](crate::Channel::connect) use;
//! - a transport that carries messages natively needs no framing at all: it
//!   implements [`Link`] directly, as the in-memory link of [`memory`] does
//!   (a pair of channels of frames), and is served with
//!   [`ServerBuilder::serve_links`](crate::ServerBuilder::serve_links) and
//!   dialed with [`ChannelBuilder::connect_link`](crate::ChannelBuilder::connect_link).
//!
//! A link is used in two phases. During the greeting, one frame at a time
//! with [`Link::send`] and [`Link::recv`]; then, once both sides know each
//! other's frame limits, it is [split](Link::split) into a reading half and
//! a writing half that the session uses from then on.

mod bytes;
pub(crate) mod compress;
pub(crate) mod greeting;
pub mod memory;
pub(crate) mod negotiate;
mod writer;

use std::future::Future;
use std::io;

use futures::{Sink, Stream};

pub use self::bytes::{ByteLink, ByteReader};
pub use self::compress::{Compressing, Compression, Decompressing};
pub use self::writer::FrameWriter;

/// A connection that carries whole frames (each a `Bytes` payload).
pub trait Link: Send + 'static {
    /// The reading half, after the greeting.
    type Read: FrameRead;
    /// The writing half, after the greeting.
    type Write: FrameWrite;

    /// Sends one frame and flushes it (during the greeting).
    fn send(&mut self, frame: ::bytes::Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Receives one frame of at most `limit` bytes (during the greeting);
    /// `Ok(None)` when the peer closed the link. A longer frame fails with
    /// [`io::ErrorKind::InvalidData`].
    fn recv(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = io::Result<Option<::bytes::Bytes>>> + Send;

    /// Flushes and closes the link (after a refusal).
    fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// What arrived but is not a whole frame, for telling what a peer that
    /// does not speak the protocol is (an HTTP or a TLS server). Empty for
    /// a link that carries whole messages.
    fn buffered(&self) -> &[u8] {
        &[]
    }

    /// Splits the link for the session: frames read are at most `max_in`
    /// bytes (a longer one fails the read with
    /// [`io::ErrorKind::InvalidData`]), frames written at most `max_out`.
    fn split(self, max_in: usize, max_out: usize) -> (Self::Read, Self::Write);
}

/// The reading half of a link: whole frames in, `None` at the end.
pub trait FrameRead: Stream<Item = io::Result<::bytes::Bytes>> + Send + Unpin + 'static {
    /// How many bytes of a frame still arriving are buffered (0 for a link
    /// that carries whole messages): keepalive counts them as hearing from
    /// the peer, so a large frame on a slow link is not a dead peer.
    fn partial(&self) -> usize {
        0
    }
}

/// The writing half of a link: whole frames out. `poll_flush` hands what
/// was fed to the transport; `poll_close` flushes and ends the link.
///
/// A sink of frames becomes one with an empty `impl FrameWrite for X {}`;
/// [`start_send_copy`](FrameWrite::start_send_copy) and
/// [`copies`](FrameWrite::copies) are there for writers that copy small
/// frames into a buffer of their own anyway.
pub trait FrameWrite: Sink<::bytes::Bytes, Error = io::Error> + Send + Unpin + 'static {
    /// Like `start_send` (after `poll_ready`), with a frame the caller
    /// keeps: the writer takes a copy. By default, a copy as `Bytes`; a
    /// writer with a buffer of its own copies into it, without allocating.
    ///
    /// # Errors
    /// As `start_send`.
    fn start_send_copy(self: std::pin::Pin<&mut Self>, frame: &[u8]) -> io::Result<()> {
        self.start_send(::bytes::Bytes::copy_from_slice(frame))
    }

    /// Whether [`start_send_copy`](Self::start_send_copy) takes a frame
    /// of `len` bytes without allocating (it copies it into a buffer of
    /// its own). A frame just encoded is then handed over as it is,
    /// rather than made shareable first, which costs an allocation. By
    /// default, `false`.
    fn copies(&self, len: usize) -> bool {
        let _ = len;
        false
    }
}

/// A source of incoming links for a [`Server`](crate::Server), as
/// [`Listener`](crate::transport::Listener) is of byte streams.
pub trait LinkListener: Send + 'static {
    /// The links it yields.
    type Link: Link;
    /// The address clients use to reach it.
    type Addr: Clone + std::fmt::Debug + Send + Sync + 'static;

    /// Waits for the next link. An error is logged and the server keeps
    /// accepting after a short pause.
    fn accept(
        &mut self,
    ) -> impl Future<Output = io::Result<(Self::Link, crate::transport::PeerAddr)>> + Send;

    /// The address it listens on.
    ///
    /// # Errors
    /// When it cannot tell.
    fn local_addr(&self) -> io::Result<Self::Addr>;
}
