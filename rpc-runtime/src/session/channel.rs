//! [`Channel`]: the handle calls go through, over one session at a time.
//! Both ends make them: a client over the connection it dialed, a server's
//! handler over the connection a call came on (a callback).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::error::RpcError;

use super::target::{CallDefaults, Picked, Target, Waiting};
use super::Connection;

/// A connection to a server, shared by every client built on it; it
/// reconnects by itself when the connection breaks.
///
/// A `Channel` is cheap to clone (an `Arc`); clones share the connection, and
/// any number of tasks may call through it at once: each call gets its own
/// request id and responses are matched to calls in whatever order they
/// arrive. One channel can carry calls to several services:
///
/// ```no_run
/// # use rpc_runtime::Channel;
/// # async fn f() -> Result<(), rpc_runtime::RpcError> {
/// let channel = Channel::connect("127.0.0.1:7000").await?;
/// // let calc = CalculatorClient::new(channel.clone());
/// // let store = KvClient::new(channel);
/// # Ok(()) }
/// ```
///
/// **Failures.** Every call has a deadline (default 30 s, see
/// [`ChannelBuilder::timeout`](crate::ChannelBuilder::timeout)) and fails with [`RpcError::DeadlineExceeded`]
/// when it passes; dropping a call's future cancels it on the server. When the
/// connection breaks, every pending call fails at once with
/// [`RpcError::ConnectionLost`]: it is never sent again by itself, because
/// the server may already have run it (at-most-once). The next call
/// reconnects, with exponential backoff between failed attempts. Only calls
/// marked idempotent are re-sent after a broken connection.
///
/// The connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<ChannelInner>,
}

struct ChannelInner {
    /// The server's address, or a label for it.
    peer: String,
    defaults: CallDefaults,
    current: Mutex<Arc<Connection>>,
    /// How to open a new connection when the current one has ended;
    /// `None` for a connection that cannot be dialed again (a stream
    /// handed in by the user, a callback's way back).
    redial: Option<Box<dyn Redial>>,
}

/// Opens a new connection for a channel whose connection has ended.
pub(crate) trait Redial: Send + Sync + 'static {
    /// A live connection, by `deadline`: `current`'s own if another call
    /// already replaced it, else a new one, installed in `current`.
    fn redial<'a>(
        &'a self,
        current: &'a Mutex<Arc<Connection>>,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Connection>, RpcError>> + Send + 'a>>;
}

/// The connection in `slot` now.
pub(crate) fn current_of(slot: &Mutex<Arc<Connection>>) -> Arc<Connection> {
    Arc::clone(&slot.lock().unwrap_or_else(PoisonError::into_inner))
}

impl Channel {
    /// A channel over `connection`, opening new ones with `redial`.
    pub(crate) fn new(
        peer: String,
        defaults: CallDefaults,
        connection: Arc<Connection>,
        redial: Option<Box<dyn Redial>>,
    ) -> Channel {
        Channel {
            inner: Arc::new(ChannelInner {
                peer,
                defaults,
                current: Mutex::new(connection),
                redial,
            }),
        }
    }

    /// The address (or label) of the server.
    #[must_use]
    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// Whether the current connection has ended. A closed channel that can
    /// reconnect does so on the next call.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.current().is_closed()
    }

    /// What the current connection settled on in its greetings: the
    /// protocol version, the extensions both sides listed, and the
    /// server's limits; `None` once that connection has ended (a channel
    /// that reconnects settles again on its next connection, possibly
    /// with a server of another version).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rpc_runtime::RpcError> {
    /// let channel = rpc_runtime::Channel::connect("127.0.0.1:7000").await?;
    /// if let Some(agreed) = channel.negotiated() {
    ///     println!("protocol version {}", agreed.version());
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn negotiated(&self) -> Option<crate::wire::version::Negotiated> {
        let current = self.current();
        (!current.is_closed()).then(|| current.negotiated())
    }

    /// The connection calls go to now.
    pub(crate) fn current(&self) -> Arc<Connection> {
        current_of(&self.inner.current)
    }

    /// The live connection, reconnecting first if the last one ended.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, RpcError> {
        let current = self.current();
        if !current.is_closed() {
            return Ok(current);
        }
        match &self.inner.redial {
            Some(redial) => redial.redial(&self.inner.current, deadline).await,
            None => Err(current.closed_reason()),
        }
    }
}

impl Target for Channel {
    type Ticket = ();
    const FAILOVER: bool = false;

    #[inline]
    fn defaults(&self) -> CallDefaults {
        self.inner.defaults
    }

    #[inline]
    fn ready(&self) -> Option<Picked<()>> {
        let current = self.current();
        (!current.is_closed()).then_some((current, ()))
    }

    fn wait(&self, deadline: Instant) -> Waiting<'_, ()> {
        Box::pin(async move { self.connection(deadline).await.map(|c| (c, ())) })
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("Channel")
            .field("peer", &self.inner.peer)
            .field("pending", &current.pending())
            .field("closed", &current.is_closed())
            .finish()
    }
}
