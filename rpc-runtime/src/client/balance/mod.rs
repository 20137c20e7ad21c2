//! A balanced channel: one channel over a set of servers, each call sent to
//! the one that costs least of two drawn at random, by its pending calls and
//! its measured latency.
//!
//! ```no_run
//! use rpc_runtime::balance::Discover;
//! use rpc_runtime::Channel;
//!
//! # async fn f() {
//! let channel = Channel::builder()
//!     .balance(Discover::fixed(["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]));
//! // let client = CalculatorClient::new(channel);
//! # }
//! ```
//!
//! **Endpoints.** Each endpoint is kept connected by a task of its own: it
//! is *connecting*, *ready* (calls go there), *failing* (its last attempt
//! to connect failed; it is tried again with the channel's backoff and
//! takes calls again once it connects), or gone (discovery removed it).
//! A call never waits on an endpoint that is not ready while another is:
//! it waits only when none is ready and one may be before its deadline,
//! and fails at once with [`RpcError::Unavailable`] (saying why each is
//! not) when none may.
//!
//! **Failover.** A call that never reached a server (its connection was
//! gone or closing, or the server said it did not run it, as a server
//! shutting down does) goes to another endpoint at once, within its
//! deadline, whatever the method. An idempotent call whose connection
//! broke with it in flight is sent again, to another endpoint, up to the
//! channel's `idempotent_retries`. Any other call in flight on a
//! connection that breaks fails with [`RpcError::ConnectionLost`] and is
//! never sent again: the server may have run it.
//!
//! **Load.** The cost of an endpoint is a peak-EWMA of its latency (a slow
//! answer raises it at once; it decays over seconds) times its pending
//! calls plus one, as in Finagle and tower. Unary calls are measured and
//! counted; a streaming call counts while it is being opened.

mod discover;
#[cfg(feature = "dns")]
mod dns;
mod fanout;
mod keeper;
mod load;
mod pick;
mod set;

pub use discover::{Change, Discover};
#[cfg(feature = "dns")]
pub use dns::Dns;
pub use set::EndpointState;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::call::{Invoke, RawCall, RawReply};
use crate::error::RpcError;
use crate::session::{CallDefaults, Picked, Target, Waiting};

use super::calls;
use super::ChannelBuilder;
use keeper::{Dial, Keeping};
use load::LoadTicket;
use set::{Registry, Snapshot};

/// A channel over a set of servers (see the [module docs](self)): every
/// generated client works on it unchanged, `XClient::new(balanced)`.
///
/// Cheap to clone; clones share the endpoints and their connections. The
/// connections close when the last clone is dropped.
#[derive(Clone)]
pub struct BalancedChannel {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    defaults: CallDefaults,
    /// Stops discovery and every endpoint's task.
    _closing: DropGuard,
}

impl ChannelBuilder {
    /// A channel over the endpoints `discover` finds, each connected with
    /// these settings (TLS, timeouts, keepalive, the services offered for
    /// callbacks); the reconnect backoff paces each endpoint's attempts.
    /// Returns at once: endpoints connect in the background, and a call
    /// waits for one within its deadline.
    ///
    /// Must be called within a Tokio runtime (it starts tasks).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use rpc_runtime::balance::Discover;
    ///
    /// # async fn f() {
    /// let channel = rpc_runtime::Channel::builder()
    ///     .timeout(Duration::from_secs(5))
    ///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2))
    ///     .balance(Discover::fixed(["10.0.0.1:7000", "10.0.0.2:7000"]));
    /// # }
    /// ```
    #[must_use]
    pub fn balance(self, discover: Discover) -> BalancedChannel {
        let registry = Registry::new();
        let defaults = self.defaults();
        let keeping = Keeping {
            backoff: (self.backoff_initial, self.backoff_max),
            health: self.health_checks.then_some(self.connect_timeout),
            dial: dial_with(self),
        };
        let closing = CancellationToken::new();
        tokio::spawn(run_discovery(
            discover,
            Arc::clone(&registry),
            keeping,
            closing.clone(),
        ));
        BalancedChannel {
            inner: Arc::new(Inner {
                registry,
                defaults,
                _closing: closing.drop_guard(),
            }),
        }
    }
}

/// Dials an endpoint with `builder`'s settings; the balancer reconnects.
fn dial_with(builder: ChannelBuilder) -> Dial {
    let builder = builder.reconnect(false);
    Arc::new(move |addr: String| {
        let builder = builder.clone();
        Box::pin(async move { builder.connect(addr).await })
    })
}

/// Applies what discovery reports until the channel is dropped, then stops
/// every endpoint.
async fn run_discovery(
    mut discover: Discover,
    registry: Arc<Registry>,
    keeping: Keeping,
    closing: CancellationToken,
) {
    let apply = |change: discover::Change| match change {
        Change::Insert(key) => {
            if let Some((key, stop)) = registry.insert(&key) {
                tokio::spawn(keeper::keep(
                    Arc::clone(&registry),
                    key,
                    keeping.clone(),
                    stop,
                ));
            }
        }
        Change::Remove(key) => registry.remove(&key),
    };
    loop {
        let change = tokio::select! {
            change = discover.next() => change,
            () = closing.cancelled() => break,
        };
        let mut ended = change.is_none();
        if let Some(change) = change {
            apply(change);
            // The rest of a batch reported at once, before calls look.
            loop {
                match discover.next_now() {
                    Some(Some(change)) => apply(change),
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
        }
        registry.discovered();
        if ended {
            closing.cancelled().await;
            break;
        }
    }
    registry.close();
}

impl BalancedChannel {
    /// Every endpoint in the set, and where it stands.
    #[must_use]
    pub fn endpoints(&self) -> Vec<(String, EndpointState)> {
        self.inner.registry.snapshot().states()
    }

    /// A channel to the one endpoint of the set named `endpoint` (its
    /// address as discovery reported it), for calls meant for that server
    /// alone: `XClient::new(balanced.endpoint("10.0.0.1:7000"))`. Its calls
    /// wait for that endpoint within their deadlines, fail with
    /// [`RpcError::Unavailable`] when it is not in the set or cannot be
    /// ready in time, and never go elsewhere.
    #[must_use]
    pub fn endpoint(&self, endpoint: &str) -> EndpointChannel {
        EndpointChannel {
            inner: Arc::clone(&self.inner),
            key: Arc::from(endpoint),
        }
    }

    /// The cheaper of two ready endpoints of `snapshot`.
    fn pick_in(snapshot: &Snapshot) -> Option<Picked<LoadTicket>> {
        let ready = &snapshot.ready;
        // Costs are compared only between two.
        let now = (ready.len() > 1).then(Instant::now);
        let usable = |i: usize| {
            ready
                .get(i)
                .is_some_and(|r| r.serving && !r.load.is_suspect())
        };
        let cost = |i: usize| {
            ready.get(i).map_or(f64::INFINITY, |r| {
                r.load.cost(now.unwrap_or_else(Instant::now))
            })
        };
        ready
            .get(pick::pick(ready.len(), usable, cost)?)
            .map(set::Ready::picked)
    }
}

impl Target for BalancedChannel {
    type Ticket = LoadTicket;
    const FAILOVER: bool = true;

    fn defaults(&self) -> CallDefaults {
        self.inner.defaults
    }

    #[inline]
    fn ready(&self) -> Option<Picked<LoadTicket>> {
        Self::pick_in(&self.inner.registry.snapshot())
    }

    fn wait(&self, deadline: Instant) -> Waiting<'_, LoadTicket> {
        let registry = &self.inner.registry;
        Box::pin(wait_for(
            registry,
            deadline,
            Self::pick_in,
            move |snapshot| (!snapshot.may_be_ready_by(deadline)).then(|| snapshot.unavailable()),
        ))
    }
}

/// Waits until `pick` finds a connection in a snapshot, or `hopeless`
/// says nothing can be ready by `deadline` (then, why not).
async fn wait_for(
    registry: &Registry,
    deadline: Instant,
    pick: impl Fn(&Snapshot) -> Option<Picked<LoadTicket>>,
    hopeless: impl Fn(&Snapshot) -> Option<RpcError>,
) -> Result<Picked<LoadTicket>, RpcError> {
    let mut changes = registry.subscribe();
    loop {
        {
            let snapshot = changes.borrow_and_update();
            if let Some(picked) = pick(&snapshot) {
                return Ok(picked);
            }
            if let Some(error) = hopeless(&snapshot) {
                return Err(error);
            }
        }
        if !matches!(
            tokio::time::timeout_at(deadline, changes.changed()).await,
            Ok(Ok(()))
        ) {
            return Err(registry.snapshot().unavailable());
        }
    }
}

impl Invoke for BalancedChannel {
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        calls::invoke(self, call)
    }

    #[inline]
    fn invoke_unary(self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        calls::invoke_unary(self, call)
    }
}

impl fmt::Debug for BalancedChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancedChannel")
            .field("endpoints", &*self.inner.registry.snapshot())
            .finish()
    }
}

/// A channel to one endpoint of a [`BalancedChannel`]'s set (see
/// [`BalancedChannel::endpoint`]).
#[derive(Clone)]
pub struct EndpointChannel {
    inner: Arc<Inner>,
    key: Arc<str>,
}

impl EndpointChannel {
    /// The endpoint's name (its address).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.key
    }

    /// Where the endpoint stands; `None` when it is not in the set.
    #[must_use]
    pub fn state(&self) -> Option<EndpointState> {
        self.inner
            .registry
            .snapshot()
            .state_of(&self.key)
            .map(set::State::public)
    }

    /// The endpoint's connection in `snapshot`, if it is connected and open.
    fn pick_in(&self, snapshot: &Snapshot) -> Option<Picked<LoadTicket>> {
        snapshot
            .ready_one(&self.key)
            .filter(|ready| !ready.connection.is_closed())
            .map(set::Ready::picked)
    }
}

impl Target for EndpointChannel {
    type Ticket = LoadTicket;
    const FAILOVER: bool = false;

    fn defaults(&self) -> CallDefaults {
        self.inner.defaults
    }

    fn ready(&self) -> Option<Picked<LoadTicket>> {
        self.pick_in(&self.inner.registry.snapshot())
    }

    fn wait(&self, deadline: Instant) -> Waiting<'_, LoadTicket> {
        let registry = &self.inner.registry;
        let pick = |snapshot: &Snapshot| self.pick_in(snapshot);
        let hopeless = move |snapshot: &Snapshot| {
            let key = &self.key;
            match snapshot.state_of(key) {
                None if snapshot.is_discovered() => Some(RpcError::Unavailable {
                    message: format!("{key} is not an endpoint of the set"),
                }),
                Some(state) if !state.may_be_ready_by(deadline) => Some(state.unavailable(key)),
                _ => None,
            }
        };
        Box::pin(wait_for(registry, deadline, pick, hopeless))
    }
}

impl Invoke for EndpointChannel {
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        calls::invoke(self, call)
    }

    fn invoke_unary(self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        calls::invoke_unary(self, call)
    }
}

impl fmt::Debug for EndpointChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointChannel")
            .field("endpoint", &self.key)
            .field("state", &self.state())
            .finish()
    }
}
