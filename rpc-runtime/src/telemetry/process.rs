//! The metrics that are not a call's: open connections, reconnects, and
//! the bytes links carry.

use std::sync::OnceLock;

use metrics::{Counter, Gauge};

use super::method::Side;
use super::names;

/// An open connection, counted in its side's gauge until dropped.
pub(crate) struct OpenConnection(&'static Gauge);

impl OpenConnection {
    /// A connection this side dialed (`Client`) or accepted (`Server`).
    pub(crate) fn new(side: Side) -> Self {
        static CLIENT: OnceLock<Gauge> = OnceLock::new();
        static SERVER: OnceLock<Gauge> = OnceLock::new();
        let gauge = match side {
            Side::Client => CLIENT.get_or_init(|| metrics::gauge!(names::CLIENT_CONNECTIONS)),
            Side::Server => SERVER.get_or_init(|| metrics::gauge!(names::SERVER_CONNECTIONS)),
        };
        gauge.increment(1.0);
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts a connection a channel opened again.
pub(crate) fn reconnected() {
    metrics::counter!(names::CLIENT_RECONNECTS).increment(1);
}

/// The transports whose bytes are counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport {
    /// TCP, Unix sockets, any byte stream (TLS included).
    Stream,
    /// NATS messages (payloads only).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Nats,
}

/// The counters of bytes `transport` sends and receives.
pub(crate) fn bytes(transport: Transport) -> &'static (Counter, Counter) {
    static STREAM: OnceLock<(Counter, Counter)> = OnceLock::new();
    static NATS: OnceLock<(Counter, Counter)> = OnceLock::new();
    let (slot, label) = match transport {
        Transport::Stream => (&STREAM, "stream"),
        Transport::Nats => (&NATS, "nats"),
    };
    slot.get_or_init(|| {
        (
            metrics::counter!(names::BYTES_SENT, names::TRANSPORT => label),
            metrics::counter!(names::BYTES_RECEIVED, names::TRANSPORT => label),
        )
    })
}
