//! Each method's metric handles, registered once per side with the
//! `metrics` recorder installed at the time, and found again without
//! building a key per call.
//!
//! A key with labels costs an allocation each time it is built, and a
//! recorder a lookup; a call would pay both for every metric it touches,
//! with or without a recorder. So each (side, service, method) registers
//! its handles once, in a process-wide table that keeps them for good
//! (bounded: past [`MAX_METHODS`] names, the rest share one entry labelled
//! `other`). A generated client's method keeps its entry in a `static` of
//! its own ([`MethodSlot`]); a server's method keeps its entry beside its
//! names.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use metrics::{Counter, Gauge, Histogram, Label, SharedString};

use super::names;
use super::outcome::{self, OUTCOMES};

/// Names beyond this many share one entry (label values stay bounded
/// whatever names a program makes up).
const MAX_METHODS: usize = 4096;

/// Which end of a call a metric counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// The caller's end.
    Client,
    /// The handler's end.
    Server,
}

/// One method's handles, on one side.
pub(crate) struct MethodMetrics {
    side: Side,
    /// Whether a recorder was installed when the method registered.
    recorded: bool,
    labels: [Label; 2],
    pub(crate) started: Counter,
    pub(crate) in_flight: Gauge,
    pub(crate) duration: Histogram,
    pub(crate) items_sent: Counter,
    pub(crate) items_received: Counter,
    finished: [OnceLock<Counter>; OUTCOMES],
}

impl MethodMetrics {
    fn register(side: Side, service: SharedString, method: SharedString) -> Self {
        let labels = [
            Label::new(names::SERVICE, service),
            Label::new(names::METHOD, method),
        ];
        let (started, in_flight, duration, sent, received) = match side {
            Side::Client => (
                names::CLIENT_CALLS_STARTED,
                names::CLIENT_CALLS_IN_FLIGHT,
                names::CLIENT_CALL_DURATION,
                names::CLIENT_STREAM_ITEMS_SENT,
                names::CLIENT_STREAM_ITEMS_RECEIVED,
            ),
            Side::Server => (
                names::SERVER_CALLS_STARTED,
                names::SERVER_CALLS_IN_FLIGHT,
                names::SERVER_CALL_DURATION,
                names::SERVER_STREAM_ITEMS_SENT,
                names::SERVER_STREAM_ITEMS_RECEIVED,
            ),
        };
        MethodMetrics {
            side,
            // `metrics` hands out its no-op recorder, a zero-sized type,
            // when none is installed: calls of methods registered then are
            // not timed (and not observed, unless a span is enabled).
            recorded: metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0),
            started: metrics::counter!(started, labels.iter()),
            in_flight: metrics::gauge!(in_flight, labels.iter()),
            duration: metrics::histogram!(duration, labels.iter()),
            items_sent: metrics::counter!(sent, labels.iter()),
            items_received: metrics::counter!(received, labels.iter()),
            finished: std::array::from_fn(|_| OnceLock::new()),
            labels,
        }
    }

    /// Whether a recorder was installed when the method registered (so its
    /// calls are counted and timed).
    #[inline]
    pub(crate) fn recorded(&self) -> bool {
        self.recorded
    }

    /// The counter of calls that finished with outcome `index`.
    pub(crate) fn finished(&self, index: usize) -> &Counter {
        let slot = self
            .finished
            .get(index)
            .unwrap_or(&self.finished[OUTCOMES - 1]);
        slot.get_or_init(|| {
            let name = match self.side {
                Side::Client => names::CLIENT_CALLS_FINISHED,
                Side::Server => names::SERVER_CALLS_FINISHED,
            };
            let [service, method] = self.labels.clone();
            let code = Label::new(names::CODE, outcome::label(index));
            metrics::counter!(name, vec![service, method, code])
        })
    }
}

impl std::fmt::Debug for MethodMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodMetrics")
            .field("side", &self.side)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

type Table = HashMap<(Side, Box<str>, Box<str>), &'static MethodMetrics>;

/// The process's entries, by side and names.
fn registered(side: Side, service: &str, method: &str) -> &'static MethodMetrics {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = table.get(&(side, service.into(), method.into())) {
        return entry;
    }
    let (service, method) = if table.len() < MAX_METHODS {
        (service, method)
    } else {
        ("other", "other")
    };
    let key = (side, Box::from(service), Box::from(method));
    if let Some(entry) = table.get(&key) {
        return entry;
    }
    let owned = |name: &str| SharedString::from(name.to_owned());
    let entry: &'static MethodMetrics = Box::leak(Box::new(MethodMetrics::register(
        side,
        owned(service),
        owned(method),
    )));
    table.insert(key, entry);
    entry
}

/// The server side's entry for a method.
pub(crate) fn server(service: &str, method: &str) -> &'static MethodMetrics {
    registered(Side::Server, service, method)
}

/// Counts a call sent again: to another server (`failover`), or to the
/// same target after its connection broke.
pub(crate) fn resent((service, method): (&str, &str), failover: bool) {
    let entry = registered(Side::Client, service, method);
    let name = if failover {
        names::CLIENT_FAILOVERS
    } else {
        names::CLIENT_RETRIES
    };
    metrics::counter!(name, entry.labels.iter()).increment(1);
}

/// The client side's entry for a call of `service.method` made with names
/// of its own (not a generated client's).
pub(crate) fn client(service: &str, method: &str) -> &'static MethodMetrics {
    registered(Side::Client, service, method)
}

/// Where a generated client's method keeps its entry: a `static` per
/// method, so a call finds it with one load.
#[doc(hidden)]
#[derive(Debug)]
pub struct MethodSlot(OnceLock<&'static MethodMetrics>);

impl MethodSlot {
    /// An empty slot.
    #[must_use]
    pub const fn new() -> Self {
        MethodSlot(OnceLock::new())
    }

    /// The client side's entry of `service.method`, registered at the
    /// first call.
    #[inline]
    pub(crate) fn get(&self, service: &str, method: &str) -> &'static MethodMetrics {
        self.0
            .get_or_init(|| registered(Side::Client, service, method))
    }
}

impl Default for MethodSlot {
    fn default() -> Self {
        MethodSlot::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{client, server, MethodSlot, MAX_METHODS};

    #[test]
    fn one_entry_per_side_and_names() {
        static SLOT: MethodSlot = MethodSlot::new();
        let a = SLOT.get("t.Svc", "m");
        let b = client("t.Svc", "m");
        assert!(std::ptr::eq(a, b), "a slot holds the table's entry");
        assert!(std::ptr::eq(a, SLOT.get("t.Svc", "m")));
        let s = server("t.Svc", "m");
        assert!(!std::ptr::eq(a, s), "each side has its own");
        assert!(std::ptr::eq(s, server("t.Svc", "m")));
    }

    #[test]
    fn made_up_names_stay_bounded() {
        let first = server("bound.Svc", "m0");
        let mut last = first;
        for n in 0..=MAX_METHODS {
            last = server("bound.Svc", &format!("m{n}"));
        }
        assert!(std::ptr::eq(first, server("bound.Svc", "m0")));
        assert!(std::ptr::eq(last, server("other", "other")));
    }
}
