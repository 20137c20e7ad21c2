//! Where the attempts of a call go: the seam between the call paths
//! (`paths`) and what picks a connection for each attempt. A [`Channel`]
//! is one target (its one connection, dialed again when it ends); a
//! balanced channel is another (one connection of a set, picked by load).
//!
//! [`Channel`]: super::Channel

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::RpcError;

use super::Connection;

/// A connection for one attempt, and what the target keeps of it.
pub(crate) type Picked<T> = (Arc<Connection>, T);

/// A future of a connection for an attempt.
pub(crate) type Waiting<'a, T> =
    Pin<Box<dyn Future<Output = Result<Picked<T>, RpcError>> + Send + 'a>>;

/// Where a call's attempts go.
pub(crate) trait Target: Clone + Send + Sync + 'static {
    /// Held for the length of one attempt (a balancer counts the calls
    /// pending on each connection with it).
    type Ticket: Ticket;

    /// Whether an attempt that never reached its connection (it was closed
    /// or could not be opened, or the peer promised it did not run the
    /// call) is made again on another connection at once, whatever the
    /// call: a target over a set of connections does; a channel over one
    /// does not (its next connection is a redial, paced by backoff).
    const FAILOVER: bool;

    /// What calls get when their options do not say.
    fn defaults(&self) -> CallDefaults;

    /// A connection for an attempt now, without waiting; `None` when the
    /// attempt must wait for one.
    fn ready(&self) -> Option<Picked<Self::Ticket>>;

    /// Waits for a connection for an attempt (the caller bounds the wait
    /// by `deadline`): a redial, or a connection of the set becoming ready.
    fn wait(&self, deadline: Instant) -> Waiting<'_, Self::Ticket>;
}

/// How an attempt ended, as the target learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The peer answered (or the deadline passed first): the attempt's
    /// time says how fast the peer is.
    Answered,
    /// The connection failed the attempt: closed, closing, or lost with
    /// the call on it.
    Failed,
    /// Neither (a stream opened, a one-way call written).
    Other,
}

/// What a target keeps of one attempt.
pub(crate) trait Ticket: Send + 'static {
    /// The attempt ended so.
    fn ended(self, outcome: Outcome);
}

impl Ticket for () {
    #[inline]
    fn ended(self, _: Outcome) {}
}

/// What calls get when their options do not say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallDefaults {
    /// A call's deadline.
    pub timeout: Duration,
    /// How many times an idempotent call is sent again.
    pub idempotent_retries: u32,
}

impl CallDefaults {
    /// The deadline of a call starting now whose options say `timeout`
    /// (or nothing), made inside a handler whose deadline is `inherited`;
    /// and the time it leaves.
    #[inline]
    pub(crate) fn deadline(
        &self,
        timeout: Option<Duration>,
        inherited: Option<Instant>,
    ) -> (Instant, Duration) {
        let now = Instant::now();
        let own = timeout.unwrap_or(self.timeout).min(FOREVER);
        let mut deadline = now
            .checked_add(own)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        if let Some(inherited) = inherited {
            deadline = deadline.min(inherited);
        }
        (deadline, deadline.saturating_duration_since(now))
    }
}

/// Default deadline of a call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of times an idempotent call is sent again.
const DEFAULT_IDEMPOTENT_RETRIES: u32 = 2;

impl Default for CallDefaults {
    fn default() -> Self {
        CallDefaults {
            timeout: DEFAULT_TIMEOUT,
            idempotent_retries: DEFAULT_IDEMPOTENT_RETRIES,
        }
    }
}

/// How long a call without a deadline ([`CallOptions::no_deadline`]) waits:
/// for ever, in effect, but as an instant that can be compared and added to.
///
/// [`CallOptions::no_deadline`]: crate::CallOptions::no_deadline
pub(super) const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);
