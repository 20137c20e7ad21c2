//! The client side: carriers as tower services of raw calls, a tower
//! service as a carrier, and a retry policy that can copy a call.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tower::retry::budget::{Budget, TpsBudget};
use tower::ServiceExt;

use crate::call::{Invoke, RawCall, RawReply};
use crate::error::RpcError;

use super::error::{into_rpc_error, BoxError};

/// The future of a call sent through [`CallService`].
pub type CallFuture = Pin<Box<dyn Future<Output = Result<RawReply, RpcError>> + Send + 'static>>;

/// Any carrier ([`Invoke`]: a [`Channel`](crate::Channel), a balanced or
/// NATS channel, a wrapper) as a `tower::Service` of raw calls, for tower
/// layers to wrap. Always ready: a carrier waits for room inside the call,
/// within its deadline.
///
/// ```
/// # async fn f(channel: rpc_runtime::Channel) {
/// use std::time::Duration;
/// use rpc_runtime::tower::{CallService, TowerChannel};
///
/// let stack = tower::ServiceBuilder::new()
///     .timeout(Duration::from_secs(2))
///     .concurrency_limit(64)
///     .service(CallService::new(channel));
/// let carrier = TowerChannel::new(stack);
/// // let client = CalculatorClient::new(carrier);
/// # let _ = carrier;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CallService<C> {
    carrier: C,
}

impl<C: Invoke> CallService<C> {
    /// `carrier`, as a tower service.
    pub fn new(carrier: C) -> Self {
        CallService { carrier }
    }

    /// The carrier.
    pub fn into_inner(self) -> C {
        self.carrier
    }
}

impl<C: Invoke> tower::Service<RawCall> for CallService<C> {
    type Response = RawReply;
    type Error = RpcError;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: RawCall) -> CallFuture {
        Box::pin(self.carrier.clone().invoke(call))
    }
}

/// A tower service of raw calls as a carrier: generated clients run over
/// it (`XClient::new(TowerChannel::new(stack))`), so timeouts, limits,
/// retries, load shedding and the program's own layers stack between a
/// client and its channel. A layer's error reaches the caller as
/// [`into_rpc_error`] makes it.
///
/// Each call is sent through a clone of the stack, made ready first (a
/// layer that is not ready makes the call wait, within its own deadline
/// only if a `timeout` layer says so). The stack needs to be `Send`, not
/// `Sync`: it is kept behind a lock that is held only to clone it.
pub struct TowerChannel<S> {
    stack: Arc<Mutex<S>>,
}

impl<S> Clone for TowerChannel<S> {
    fn clone(&self) -> Self {
        TowerChannel {
            stack: Arc::clone(&self.stack),
        }
    }
}

impl<S> std::fmt::Debug for TowerChannel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TowerChannel")
    }
}

impl<S> TowerChannel<S>
where
    S: tower::Service<RawCall, Response = RawReply> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    /// A carrier over `stack`.
    pub fn new(stack: S) -> Self {
        TowerChannel {
            stack: Arc::new(Mutex::new(stack)),
        }
    }
}

impl<S> Invoke for TowerChannel<S>
where
    S: tower::Service<RawCall, Response = RawReply> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        let stack = self
            .stack
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        async move {
            stack
                .oneshot(call)
                .await
                .map_err(|error| into_rpc_error(error.into()))
        }
    }
}

/// A retry policy for tower's `retry` layer: a call goes again when that
/// is safe (the server said it did not run it, it never reached one, or
/// its connection broke and it is [idempotent](crate::CallOptions::idempotent)),
/// at most `attempts` times more, and only while the budget allows (so
/// retries cannot multiply the load of an outage). A call that sends a
/// stream is never retried ([`RawCall::duplicate`] cannot copy it).
///
/// ```
/// use std::time::Duration;
/// use rpc_runtime::tower::RetryCalls;
///
/// // Up to 2 retries each; retries at most 10 % of calls, plus 5 a second.
/// let policy = RetryCalls::new(2, Duration::from_secs(10), 5, 0.1);
/// let layer = tower::retry::RetryLayer::new(policy);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct RetryCalls {
    budget: Arc<TpsBudget>,
    attempts: usize,
    left: usize,
}

impl RetryCalls {
    /// Retries of at most `attempts` per call, within a budget of
    /// `min_per_sec` retries a second plus `ratio` of the calls made, over
    /// a window of `ttl` (tower's [`TpsBudget`]).
    ///
    /// # Panics
    /// When `ttl` is not between 1 and 60 seconds, or `ratio` not between
    /// 0 and 1000 (as [`TpsBudget::new`]).
    #[must_use]
    pub fn new(attempts: usize, ttl: std::time::Duration, min_per_sec: u32, ratio: f32) -> Self {
        RetryCalls {
            budget: Arc::new(TpsBudget::new(ttl, min_per_sec, ratio)),
            attempts,
            left: attempts,
        }
    }
}

/// Whether a call that failed with `error` may go again.
fn may_retry(call: &RawCall, error: &RpcError) -> bool {
    match error {
        RpcError::ConnectionLost { .. } => call.options().is_idempotent(),
        RpcError::ShuttingDown
        | RpcError::ServerBusy { .. }
        | RpcError::Unavailable { .. }
        | RpcError::Connect { .. }
        | RpcError::ConnectTimeout { .. } => true,
        _ => false,
    }
}

/// The errors [`RetryCalls`] reads: a service's own [`RpcError`], or a
/// layer's boxed error (which may hold one).
pub trait CallError {
    /// The call's error, if this is one.
    fn as_rpc_error(&self) -> Option<&RpcError>;
}

impl CallError for RpcError {
    fn as_rpc_error(&self) -> Option<&RpcError> {
        Some(self)
    }
}

impl CallError for BoxError {
    fn as_rpc_error(&self) -> Option<&RpcError> {
        self.downcast_ref()
    }
}

impl<E: CallError> tower::retry::Policy<RawCall, RawReply, E> for RetryCalls {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        call: &mut RawCall,
        result: &mut Result<RawReply, E>,
    ) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(error) => {
                let retryable = error
                    .as_rpc_error()
                    .is_some_and(|error| may_retry(call, error));
                if retryable && self.left > 0 && self.budget.withdraw() {
                    self.left -= 1;
                    Some(std::future::ready(()))
                } else {
                    self.left = self.attempts;
                    None
                }
            }
        }
    }

    fn clone_request(&mut self, call: &RawCall) -> Option<RawCall> {
        call.duplicate()
    }
}

/// The channels themselves are tower services of raw calls too: each is
/// its own [`CallService`] (always ready; a call goes through a clone).
macro_rules! service_of_raw_calls {
    ($($(#[$cfg:meta])* $channel:ty),* $(,)?) => {$(
        $(#[$cfg])*
        impl tower::Service<RawCall> for $channel {
            type Response = RawReply;
            type Error = RpcError;
            type Future = CallFuture;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, call: RawCall) -> CallFuture {
                CallService::new(self.clone()).call(call)
            }
        }
    )*};
}

service_of_raw_calls!(
    crate::Channel,
    crate::balance::BalancedChannel,
    #[cfg(feature = "nats")]
    crate::nats::NatsChannel,
);
