//! The writing half of a NATS link: each frame one message, to the
//! subject the link picks for it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Sink;

use crate::link::FrameWrite;

/// A sink of frames that publishes each (see [`Publisher::new`]).
pub(super) struct Publisher(Pin<Box<dyn Sink<Bytes, Error = io::Error> + Send>>);

impl Publisher {
    /// A sink that hands each frame to `publish` and waits for it before
    /// the next: NATS keeps the order of one connection's messages.
    pub(super) fn new<S, F, Fut>(state: S, publish: F) -> Self
    where
        S: Send + 'static,
        F: FnMut(S, Bytes) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
    {
        Publisher(Box::pin(futures::sink::unfold(state, publish)))
    }
}

impl Sink<Bytes> for Publisher {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Bytes) -> io::Result<()> {
        self.0.as_mut().start_send(frame)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll_close(cx)
    }
}

impl FrameWrite for Publisher {}

/// A publish that failed, as the link's error.
pub(super) fn publish_error(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("publishing to NATS failed: {error}"),
    )
}
