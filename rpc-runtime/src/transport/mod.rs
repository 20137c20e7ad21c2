//! Byte-stream transports: where connections come from.
//!
//! The protocol runs over any reliable, ordered byte stream
//! (`AsyncRead + AsyncWrite`). A server accepts streams from a [`Listener`];
//! a client hands one stream to [`ChannelBuilder::connect_io`](crate::ChannelBuilder::connect_io)
//! or uses the TCP and Unix helpers on [`Channel`](crate::Channel). Everything
//! after that (greeting, framing, multiplexing, dispatch) is the same code for
//! every transport.
//!
//! Provided: TCP ([`tokio::net::TcpListener`], with `TCP_NODELAY` on every
//! connection), Unix domain sockets ([`tokio::net::UnixListener`], Unix only)
//! and an in-memory transport ([`memory`]) for tests and benchmarks. A TLS
//! listener, say, is a `Listener` whose `accept` completes the handshake.

pub mod memory;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream the protocol can run over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Where a connection came from, for logs and for handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix socket peer (usually unnamed).
    Unix,
    /// The other end of an in-memory connection.
    Memory,
    /// The server a client dialed, as the client named it (what handlers a
    /// client serves see as their caller).
    Dialed(String),
    /// A caller reached through a message broker, by the inbox its
    /// answers go to (the NATS transport, feature `nats`).
    Broker(String),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(addr) => write!(f, "{addr}"),
            PeerAddr::Unix => f.write_str("unix socket peer"),
            PeerAddr::Memory => f.write_str("in-memory peer"),
            PeerAddr::Dialed(name) => f.write_str(name),
            PeerAddr::Broker(inbox) => write!(f, "broker inbox {inbox}"),
        }
    }
}

/// A source of incoming connections for a [`Server`](crate::Server).
///
/// Implement it to serve over a transport of your own; the server calls
/// `accept` in a loop and runs the protocol on every stream it returns.
pub trait Listener: Send + 'static {
    /// The connections it yields.
    type Io: Io;
    /// The address clients use to reach it.
    type Addr: Clone + fmt::Debug + Send + Sync + 'static;

    /// Waits for the next connection.
    ///
    /// An error is logged and the server keeps accepting after a short pause
    /// (running out of file descriptors must not end a server).
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, PeerAddr)>> + Send;

    /// The address it listens on.
    ///
    /// # Errors
    /// When the operating system cannot tell.
    fn local_addr(&self) -> io::Result<Self::Addr>;
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, PeerAddr)> {
        let (stream, addr) = tokio::net::TcpListener::accept(self).await?;
        // Small frames must not wait for Nagle's algorithm.
        stream.set_nodelay(true)?;
        Ok((stream, PeerAddr::Tcp(addr)))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Addr = PathBuf;

    async fn accept(&mut self) -> io::Result<(Self::Io, PeerAddr)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((stream, PeerAddr::Unix))
    }

    fn local_addr(&self) -> io::Result<PathBuf> {
        let addr = tokio::net::UnixListener::local_addr(self)?;
        addr.as_pathname()
            .map(PathBuf::from)
            .ok_or_else(|| io::Error::other("the Unix listener has no path"))
    }
}
