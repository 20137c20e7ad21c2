//! A link that carries whole frames through in-memory channels: no bytes,
//! no length prefixes. It is what a message transport looks like to the
//! protocol, and lets tests run everything above the link over something
//! that is not a byte stream.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rpc_runtime::{link::memory, Channel, Server};
//!
//! let (listener, addr) = memory::listener();
//! let server = Server::builder().serve_links(listener)?;
//! let channel = Channel::builder().connect_memory_link(&addr).await?;
//! # drop(channel);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::{FrameRead, Link, LinkListener};
use crate::transport::PeerAddr;

/// Frames buffered in each direction of an in-memory link.
const FRAMES: usize = 64;

/// Two links connected to each other.
#[must_use]
pub fn pair() -> (MemoryLink, MemoryLink) {
    let (a_tx, a_rx) = mpsc::channel(FRAMES);
    let (b_tx, b_rx) = mpsc::channel(FRAMES);
    (
        MemoryLink {
            tx: Some(a_tx),
            rx: b_rx,
        },
        MemoryLink {
            tx: Some(b_tx),
            rx: a_rx,
        },
    )
}

/// Creates a listener of in-memory links and the address that connects to
/// it.
#[must_use]
pub fn listener() -> (MemoryLinkListener, MemoryLinkAddr) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        MemoryLinkListener {
            incoming: rx,
            addr: MemoryLinkAddr { tx: tx.clone() },
        },
        MemoryLinkAddr { tx },
    )
}

/// One end of an in-memory link.
#[derive(Debug)]
pub struct MemoryLink {
    /// `None` once closed.
    tx: Option<mpsc::Sender<Bytes>>,
    rx: mpsc::Receiver<Bytes>,
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the other end of the link is gone",
    )
}

fn too_long(len: usize, limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a frame of {len} bytes exceeds the limit of {limit}"),
    )
}

impl Link for MemoryLink {
    type Read = MemoryReader;
    type Write = MemoryWriter;

    async fn send(&mut self, frame: Bytes) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        tx.send(frame).await.map_err(|_| gone())
    }

    async fn recv(&mut self, limit: usize) -> io::Result<Option<Bytes>> {
        match self.rx.recv().await {
            Some(frame) if frame.len() > limit => Err(too_long(frame.len(), limit)),
            frame => Ok(frame),
        }
    }

    async fn close(&mut self) -> io::Result<()> {
        self.tx = None;
        Ok(())
    }

    fn split(self, max_in: usize, max_out: usize) -> (MemoryReader, MemoryWriter) {
        let tx = match self.tx {
            Some(tx) => PollSender::new(tx),
            None => {
                let mut closed = PollSender::new(mpsc::channel(1).0);
                closed.close();
                closed
            }
        };
        (
            MemoryReader {
                rx: self.rx,
                max_in,
            },
            MemoryWriter { tx, max_out },
        )
    }
}

/// The reading half of a [`MemoryLink`].
#[derive(Debug)]
pub struct MemoryReader {
    rx: mpsc::Receiver<Bytes>,
    max_in: usize,
}

impl Stream for MemoryReader {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.rx.poll_recv(cx).map(|frame| {
            frame.map(|frame| match frame.len() {
                len if len > this.max_in => Err(too_long(len, this.max_in)),
                _ => Ok(frame),
            })
        })
    }
}

impl FrameRead for MemoryReader {}

/// The writing half of a [`MemoryLink`]. Frames are handed over as they
/// are fed; flushing has nothing to do.
#[derive(Debug)]
pub struct MemoryWriter {
    tx: PollSender<Bytes>,
    max_out: usize,
}

impl super::FrameWrite for MemoryWriter {}

impl Sink<Bytes> for MemoryWriter {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().tx.poll_reserve(cx).map_err(|_| gone())
    }

    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> io::Result<()> {
        let this = self.get_mut();
        if frame.len() > this.max_out {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes exceeds the peer's limit of {}",
                    frame.len(),
                    this.max_out
                ),
            ));
        }
        this.tx.send_item(frame).map_err(|_| gone())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().tx.close();
        Poll::Ready(Ok(()))
    }
}

/// The server side: yields one link per [`MemoryLinkAddr::connect`].
#[derive(Debug)]
pub struct MemoryLinkListener {
    incoming: mpsc::UnboundedReceiver<MemoryLink>,
    addr: MemoryLinkAddr,
}

/// The client side: each [`connect`](Self::connect) opens a new link.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryLinkAddr {
    tx: mpsc::UnboundedSender<MemoryLink>,
}

impl MemoryLinkAddr {
    /// Opens a link to the listener.
    ///
    /// # Errors
    /// `ConnectionRefused` when the listener is gone (its server stopped).
    pub fn connect(&self) -> io::Result<MemoryLink> {
        let (client, server) = pair();
        self.tx.send(server).map_err(|_| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the in-memory link listener is closed",
            )
        })?;
        Ok(client)
    }
}

impl LinkListener for MemoryLinkListener {
    type Link = MemoryLink;
    type Addr = MemoryLinkAddr;

    async fn accept(&mut self) -> io::Result<(MemoryLink, PeerAddr)> {
        // `self.addr` keeps a sender alive, so `recv` only ends if the
        // listener itself is being dropped.
        match self.incoming.recv().await {
            Some(link) => Ok((link, PeerAddr::Memory)),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the in-memory link listener is closed",
            )),
        }
    }

    fn local_addr(&self) -> io::Result<MemoryLinkAddr> {
        Ok(self.addr.clone())
    }
}
