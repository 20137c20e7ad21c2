//! Reconnecting: a channel whose connection ended dials again on its next
//! call, with exponential backoff and jitter between failed attempts.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::RpcError;
use crate::session::{current_of, Connection, Redial};
use crate::telemetry;

/// Opens a new connection (for the first one, and to reconnect).
pub(super) type Connector = Box<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<Connection>, RpcError>> + Send>>
        + Send
        + Sync,
>;

/// Reconnect pacing: exponential backoff with jitter after failed attempts.
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    next_delay: Duration,
    /// No attempt before this.
    not_before: Option<Instant>,
    last_error: Option<RpcError>,
    /// Failed attempts so far; lets a waiting call see that the attempt it
    /// waited on failed.
    failures: u64,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next_delay: initial,
            not_before: None,
            last_error: None,
            failures: 0,
        }
    }

    pub(super) fn succeeded(&mut self) {
        self.next_delay = self.initial;
        self.not_before = None;
        self.last_error = None;
    }

    pub(super) fn failed(&mut self, error: RpcError) {
        // "Equal jitter": half the delay, plus up to the other half at random,
        // so many clients that lost the same server do not return in step.
        let half = self.next_delay / 2;
        let jitter = half.mul_f64(random_fraction());
        self.not_before = Instant::now().checked_add(half.saturating_add(jitter));
        self.next_delay = self.next_delay.saturating_mul(2).min(self.max);
        self.last_error = Some(error);
        self.failures += 1;
    }
}

impl Backoff {
    /// When the next attempt may be made (now, if none failed since the
    /// last success).
    pub(super) fn next_attempt(&self) -> Instant {
        self.not_before.unwrap_or_else(Instant::now)
    }
}

/// A number in [0, 1) from the standard library's per-process random keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    #[allow(clippy::cast_precision_loss)]
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}

/// How a channel that can reconnect does: its connector, and the pacing
/// of its attempts.
pub(super) struct Redialer {
    peer: String,
    connector: Connector,
    /// Held while reconnecting, so one call reconnects and the rest wait.
    reconnecting: tokio::sync::Mutex<Backoff>,
    /// `Backoff::failures`, readable without waiting for the lock.
    failures: AtomicU64,
}

impl Redialer {
    pub(super) fn new(peer: String, connector: Connector, backoff: Backoff) -> Self {
        Redialer {
            peer,
            connector,
            reconnecting: tokio::sync::Mutex::new(backoff),
            failures: AtomicU64::new(0),
        }
    }

    async fn reconnect(
        &self,
        slot: &Mutex<Arc<Connection>>,
        deadline: Instant,
    ) -> Result<Arc<Connection>, RpcError> {
        let failures_seen = self.failures.load(Ordering::Acquire);
        let mut backoff = self.reconnecting.lock().await;
        // Another call may have reconnected while this one waited, or tried
        // and failed: then this call fails the same way instead of dialing
        // again at once.
        let current = current_of(slot);
        if !current.is_closed() {
            return Ok(current);
        }
        if backoff.failures != failures_seen {
            if let Some(error) = &backoff.last_error {
                return Err(error.clone());
            }
        }
        if let Some(not_before) = backoff.not_before {
            // The server is known to be unreachable until then: a call that
            // cannot wait that long fails now, with the reason.
            if not_before > deadline {
                if let Some(error) = &backoff.last_error {
                    return Err(error.clone());
                }
            }
            tokio::time::sleep_until(not_before).await;
        }
        match (self.connector)().await {
            Ok(connection) => {
                tracing::debug!(peer = %self.peer, "reconnected");
                telemetry::reconnected();
                backoff.succeeded();
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&connection);
                Ok(connection)
            }
            Err(error) => {
                tracing::debug!(peer = %self.peer, %error, "reconnecting failed");
                backoff.failed(error.clone());
                self.failures.store(backoff.failures, Ordering::Release);
                Err(error)
            }
        }
    }
}

impl Redial for Redialer {
    fn redial<'a>(
        &'a self,
        current: &'a Mutex<Arc<Connection>>,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Connection>, RpcError>> + Send + 'a>> {
        Box::pin(self.reconnect(current, deadline))
    }
}
