//! Each method's metric handles, registered once per side with the
//! `metrics` recorder installed at the time, and found again without
//! building a key per call.
//!
//! A key with labels costs an allocation each time it is built, and a
//! recorder a lookup; a call would pay both for every metric it touches,
//! with or without a recorder. So each (side, service, method) registers
//! its handles once, in a process-wide table that keeps them for good
//! (bounded: past [`MAX_METHODS`] names, the rest share one entry labelled
//! `other`). A client call finds its method's entry in a per-thread cache
//! keyed by the addresses of the generated code's `&'static` names; a
//! server's method keeps its entry beside its names.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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
            started: metrics::counter!(started, labels.iter()),
            in_flight: metrics::gauge!(in_flight, labels.iter()),
            duration: metrics::histogram!(duration, labels.iter()),
            items_sent: metrics::counter!(sent, labels.iter()),
            items_received: metrics::counter!(received, labels.iter()),
            finished: std::array::from_fn(|_| OnceLock::new()),
            labels,
        }
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

/// The client side's entry for a call of `service.method`.
#[inline]
#[allow(clippy::ptr_arg)] // whether a name is borrowed (`&'static`) says how to find it
pub(crate) fn client(
    service: &Cow<'static, str>,
    method: &Cow<'static, str>,
) -> &'static MethodMetrics {
    match (service, method) {
        (Cow::Borrowed(service), Cow::Borrowed(method)) => cached(service, method),
        _ => registered(Side::Client, service, method),
    }
}

/// A `&'static` pair of names, found by their addresses.
fn cached(service: &'static str, method: &'static str) -> &'static MethodMetrics {
    type Cache = HashMap<
        (usize, usize, usize, usize),
        &'static MethodMetrics,
        BuildHasherDefault<PairHasher>,
    >;
    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::default();
    }
    let key = (
        service.as_ptr() as usize,
        service.len(),
        method.as_ptr() as usize,
        method.len(),
    );
    CACHE.with(|cache| {
        if let Some(entry) = cache.borrow().get(&key) {
            return *entry;
        }
        let entry = registered(Side::Client, service, method);
        cache.borrow_mut().insert(key, entry);
        entry
    })
}

/// A hasher for a few addresses and lengths (no attacker picks them).
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{client, server, MAX_METHODS};

    #[test]
    fn one_entry_per_side_and_names() {
        let a = client(&Cow::Borrowed("t.Svc"), &Cow::Borrowed("m"));
        let b = client(&Cow::Owned("t.Svc".to_owned()), &Cow::Owned("m".to_owned()));
        assert!(std::ptr::eq(a, b), "owned names find the cached entry");
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
