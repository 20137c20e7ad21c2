//! Where a server's connections come from: byte streams from a
//! [`Listener`] (framed, after TLS if the server has it) or links from a
//! [`LinkListener`]; after that, every connection is a link.

use std::future::Future;
use std::io;
use std::sync::Arc;

use crate::link::{ByteLink, Link, LinkListener};
use crate::transport::{Io, Listener, PeerAddr};

use super::connection::{open_connection, serve_connection};
use super::ServerState;
use crate::session::Counted;

/// A source of connections, for the accept loop.
pub(super) trait Source: Send + 'static {
    /// The connections it yields.
    type Conn: Incoming;

    /// The next connection.
    fn next(&mut self) -> impl Future<Output = io::Result<(Self::Conn, PeerAddr)>> + Send;
}

/// A connection just accepted.
pub(super) trait Incoming: Send + 'static {
    /// The link it is before any handshake of the transport's own.
    type Plain: Link;

    /// Serves it to the end (a TLS handshake first, where the server has
    /// TLS and the connection is a byte stream).
    fn serve(
        self,
        peer: PeerAddr,
        state: Arc<ServerState>,
        guard: Counted,
    ) -> impl Future<Output = ()> + Send;

    /// The connection as a link, for refusing it at once.
    fn into_link(self) -> Self::Plain;
}

impl<L: Listener> Source for L {
    type Conn = L::Io;

    fn next(&mut self) -> impl Future<Output = io::Result<(L::Io, PeerAddr)>> + Send {
        self.accept()
    }
}

impl<T: Io> Incoming for T {
    type Plain = ByteLink<T>;

    fn serve(
        self,
        peer: PeerAddr,
        state: Arc<ServerState>,
        guard: Counted,
    ) -> impl Future<Output = ()> + Send {
        open_connection(self, peer, state, guard)
    }

    fn into_link(self) -> ByteLink<T> {
        ByteLink::new(self)
    }
}

/// The links of a [`LinkListener`], as a source.
pub(super) struct Links<L>(pub L);

/// A link just accepted.
pub(super) struct Linked<L>(L);

impl<L: LinkListener> Source for Links<L> {
    type Conn = Linked<L::Link>;

    async fn next(&mut self) -> io::Result<(Linked<L::Link>, PeerAddr)> {
        let (link, peer) = self.0.accept().await?;
        Ok((Linked(link), peer))
    }
}

impl<L: Link> Incoming for Linked<L> {
    type Plain = L;

    fn serve(
        self,
        peer: PeerAddr,
        state: Arc<ServerState>,
        guard: Counted,
    ) -> impl Future<Output = ()> + Send {
        serve_connection(self.0, peer, None, state, guard)
    }

    fn into_link(self) -> L {
        self.0
    }
}
