//! What a handler knows about the call it is serving.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::transport::PeerAddr;

tokio::task_local! {
    static CURRENT: CallContext;
}

/// The call a handler is serving: its deadline, its id and its caller.
///
/// ```
/// use rpc_runtime::CallContext;
///
/// async fn handler_body() {
///     if let Some(cx) = CallContext::current() {
///         if cx.remaining().is_some_and(|left| left.as_millis() < 10) {
///             return; // not worth starting
///         }
///     }
/// }
/// ```
///
/// A client call made inside a handler inherits the handler's deadline when
/// that is sooner than its own, so a deadline set by the first caller holds
/// across every service the call passes through.
#[derive(Debug, Clone)]
pub struct CallContext {
    request_id: u64,
    deadline: Option<Instant>,
    peer: PeerAddr,
}

impl CallContext {
    pub(crate) fn new(request_id: u64, deadline: Option<Instant>, peer: PeerAddr) -> Self {
        CallContext {
            request_id,
            deadline,
            peer,
        }
    }

    /// The context of the call the current task is serving, or `None` outside
    /// a handler (and in tasks the handler spawned: pass it along yourself).
    #[must_use]
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Time left before the caller gives up, or `None` if the call has no
    /// deadline. Zero once it has passed.
    #[must_use]
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// When the caller gives up, on this host's clock.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The request id the caller chose (unique among its calls in flight on
    /// this connection).
    #[must_use]
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// Where the call came from.
    #[must_use]
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }

    /// Runs `f` with this context as the current one.
    pub(crate) fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }

    /// Runs `future` with this context as the current one.
    pub(crate) fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }
}

/// The deadline a call made now inherits from the handler it is made in.
pub(crate) fn inherited_deadline() -> Option<Instant> {
    CURRENT.try_with(|cx| cx.deadline).ok().flatten()
}
