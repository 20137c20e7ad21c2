//! What the balancer measures of an endpoint: the calls pending on it and
//! a peak-EWMA of its latency, combined into one cost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::session::{Outcome, Ticket};

/// The latency assumed of an endpoint that has answered nothing yet.
const DEFAULT_RTT: Duration = Duration::from_millis(1);
/// How fast old latencies are forgotten: after this long without a
/// sample, an estimate has fallen to 1/e of itself, so an endpoint that
/// was slow is tried again (and measured again) once it has rested.
const DECAY: Duration = Duration::from_secs(5);

/// The load of one endpoint.
#[derive(Debug)]
pub(super) struct Load {
    /// Calls sent through the balancer and not yet answered.
    pending: AtomicUsize,
    rtt: Mutex<Rtt>,
    /// A call found the endpoint's connection failing: it is passed over
    /// until a new connection replaces that one.
    suspect: AtomicBool,
}

/// A peak-EWMA of latency: a slower answer raises it at once, faster ones
/// lower it gradually.
#[derive(Debug, Clone, Copy)]
struct Rtt {
    estimate_ns: f64,
    stamp: Instant,
}

impl Rtt {
    /// An estimate of `estimate_ns` (the default latency if none) as of `now`.
    fn starting(estimate_ns: Option<f64>, now: Instant) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let default = DEFAULT_RTT.as_nanos() as f64;
        Rtt {
            estimate_ns: estimate_ns.unwrap_or(default),
            stamp: now,
        }
    }

    /// The estimate at `now`, decayed since the last sample.
    fn at(&self, now: Instant) -> f64 {
        let idle = now.saturating_duration_since(self.stamp).as_secs_f64();
        self.estimate_ns * (-idle / DECAY.as_secs_f64()).exp()
    }

    fn sample(&mut self, rtt: Duration, now: Instant) {
        #[allow(clippy::cast_precision_loss)]
        let rtt_ns = rtt.as_nanos() as f64;
        let idle = now.saturating_duration_since(self.stamp).as_secs_f64();
        let decay = (-idle / DECAY.as_secs_f64()).exp();
        let current = self.estimate_ns * decay;
        self.estimate_ns = if rtt_ns > current {
            rtt_ns
        } else {
            // Weighted by how long ago the last sample was: many samples
            // in a burst move the estimate no faster than a few would.
            let keep = decay.max(0.5);
            current * keep + rtt_ns * (1.0 - keep)
        };
        self.stamp = now;
    }
}

impl Load {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Load {
            pending: AtomicUsize::new(0),
            rtt: Mutex::new(Rtt::starting(None, Instant::now())),
            suspect: AtomicBool::new(false),
        })
    }

    /// The cost of sending one more call here: the latency estimate times
    /// the calls it would wait behind (plus itself).
    pub(super) fn cost(&self, now: Instant) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let waiting = (self.pending.load(Ordering::Relaxed) + 1) as f64;
        self.rtt_now(now) * waiting
    }

    /// Whether a call found the current connection failing.
    pub(super) fn is_suspect(&self) -> bool {
        self.suspect.load(Ordering::Relaxed)
    }

    /// A new connection replaces the one calls found failing.
    pub(super) fn clear_suspect(&self) {
        self.suspect.store(false, Ordering::Relaxed);
    }

    /// The latency estimate now.
    pub(super) fn rtt_now(&self, now: Instant) -> f64 {
        self.rtt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .at(now)
    }

    /// Starts over with `estimate_ns` as the latency estimate: for an
    /// endpoint (re)admitted with a new connection, whose old samples (or
    /// none) say nothing of it now; given the others' best, it is tried
    /// at once, and its own answers take over.
    pub(super) fn restart(&self, estimate_ns: Option<f64>, now: Instant) {
        *self.rtt.lock().unwrap_or_else(PoisonError::into_inner) = Rtt::starting(estimate_ns, now);
    }

    fn record(&self, rtt: Duration, now: Instant) {
        self.rtt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sample(rtt, now);
    }
}

/// One attempt on an endpoint: counted as pending while it lives, and its
/// time recorded if the endpoint answered.
pub(crate) struct LoadTicket {
    load: Arc<Load>,
    start: Instant,
}

impl LoadTicket {
    pub(super) fn new(load: Arc<Load>) -> Self {
        load.pending.fetch_add(1, Ordering::Relaxed);
        LoadTicket {
            load,
            start: Instant::now(),
        }
    }
}

impl Ticket for LoadTicket {
    fn ended(self, outcome: Outcome) {
        match outcome {
            Outcome::Answered => {
                let now = Instant::now();
                self.load
                    .record(now.saturating_duration_since(self.start), now);
            }
            Outcome::Failed => self.load.suspect.store(true, Ordering::Relaxed),
            Outcome::Other => {}
        }
    }
}

impl Drop for LoadTicket {
    fn drop(&mut self) {
        self.load.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Load, LoadTicket};
    use crate::session::{Outcome, Ticket};

    #[tokio::test(start_paused = true)]
    async fn a_slow_answer_raises_the_cost_at_once_and_fast_ones_lower_it_slowly() {
        let load = Load::new();
        let fresh = load.cost(Instant::now());
        let ticket = LoadTicket::new(Arc::clone(&load));
        tokio::time::advance(Duration::from_millis(50)).await;
        ticket.ended(Outcome::Answered);
        let slow = load.cost(Instant::now());
        assert!(slow > 40.0 * fresh, "{slow} vs {fresh}");
        for _ in 0..3 {
            tokio::time::advance(Duration::from_millis(100)).await;
            LoadTicket::new(Arc::clone(&load)).ended(Outcome::Answered);
        }
        let after = load.cost(Instant::now());
        assert!(after < slow && after > slow / 4.0, "{after} vs {slow}");
    }

    #[tokio::test(start_paused = true)]
    async fn pending_calls_multiply_the_cost_and_leave_it_when_dropped() {
        let load = Load::new();
        let one = load.cost(Instant::now());
        let tickets: Vec<_> = (0..3).map(|_| LoadTicket::new(Arc::clone(&load))).collect();
        assert_eq!(load.pending.load(Ordering::Relaxed), 3);
        let four = load.cost(Instant::now());
        assert!((four / one - 4.0).abs() < 1e-9, "{four} vs {one}");
        drop(tickets);
        assert_eq!(load.pending.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rested_endpoint_is_forgotten_slow() {
        let load = Load::new();
        let ticket = LoadTicket::new(Arc::clone(&load));
        tokio::time::advance(Duration::from_millis(100)).await;
        ticket.ended(Outcome::Answered);
        let slow = load.cost(Instant::now());
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(load.cost(Instant::now()) < slow / 50.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_attempt_makes_the_endpoint_suspect_until_cleared() {
        let load = Load::new();
        LoadTicket::new(Arc::clone(&load)).ended(Outcome::Failed);
        assert!(load.is_suspect());
        load.clear_suspect();
        assert!(!load.is_suspect());
    }
}
