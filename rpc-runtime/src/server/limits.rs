//! Connection refusals, and limits per caller address: open connections,
//! and calls a second (a token bucket). Callers are told by their IP address; callers without one
//! (Unix sockets, in-memory links, a broker's inboxes) are not limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::incoming::Incoming;
use super::ServerState;
use crate::error::RpcError;
use crate::intercept::{CallInfo, Interceptor};
use crate::link::greeting;
use crate::status::Status;
use crate::transport::PeerAddr;
use crate::wire::frame::code;

/// Addresses tracked at most; past this, addresses whose buckets are full
/// (idle) are forgotten, and if none are, a new address is not limited
/// until room frees up (memory stays bounded whoever connects).
const MAX_TRACKED: usize = 65_536;

fn ip_of(peer: &PeerAddr) -> Option<IpAddr> {
    match peer {
        PeerAddr::Tcp(addr) => Some(addr.ip()),
        _ => None,
    }
}

/// What a connection over the server's limit of `limit` is told. Short:
/// it travels in place of the greeting, which a client reads within 64
/// bytes.
pub(super) fn busy(limit: usize) -> String {
    format!("at its limit of {limit} connections")
}

/// What a connection over its address's limit of `limit` is told (as
/// short as [`busy`]'s).
fn busy_per_peer(limit: usize) -> String {
    format!("address at its limit of {limit} connections")
}

/// Tells a connection over the limit that the server is busy, if not too
/// many are being told already; closes it either way.
pub(super) fn refuse_busy<C: Incoming>(
    conn: C,
    peer: PeerAddr,
    state: &Arc<ServerState>,
    message: String,
) {
    let Ok(permit) = Arc::clone(&state.busy_replies).try_acquire_owned() else {
        tracing::debug!(%peer, "closed a connection over the limit without a reply");
        return;
    };
    let timeout = state.config.handshake_timeout;
    state.tracker.spawn(async move {
        let _permit: OwnedSemaphorePermit = permit;
        let refused = tokio::time::timeout(
            timeout,
            greeting::refuse(conn.into_link(), code::SERVER_BUSY, &message),
        )
        .await;
        tracing::info!(%peer, ?refused, %message, "refused a connection");
    });
}

/// Open connections by address.
#[derive(Debug, Default)]
pub(super) struct PerPeerConnections {
    open: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

impl PerPeerConnections {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(PerPeerConnections {
            open: Mutex::default(),
            max,
        })
    }

    /// Counts a connection from `peer` while the returned guard lives
    /// (`None` for a caller without an address); `Err` with what to tell it
    /// when the address has its limit open already.
    pub(super) fn admit(
        self: &Arc<Self>,
        peer: &PeerAddr,
    ) -> Result<Option<PeerConnection>, String> {
        let Some(ip) = ip_of(peer) else {
            return Ok(None);
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return Err(busy_per_peer(self.max));
        }
        *count += 1;
        Ok(Some(PeerConnection {
            limits: Arc::clone(self),
            ip,
        }))
    }
}

/// One admitted connection, counted until dropped.
#[derive(Debug)]
pub(super) struct PeerConnection {
    limits: Arc<PerPeerConnections>,
    ip: IpAddr,
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A token bucket per address: `rate` calls a second, bursts of up to
/// `burst`.
#[derive(Debug)]
pub(super) struct PerPeerRate {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    rate: f64,
    burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl PerPeerRate {
    fn new(rate: u32, burst: u32) -> Self {
        PerPeerRate {
            buckets: Mutex::default(),
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Whether a call from `ip` at `now` is within its rate (taking a
    /// token if so).
    fn take(&self, ip: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&ip) && buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.at).as_secs_f64() < burst);
            if buckets.len() >= MAX_TRACKED {
                return true;
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled = bucket.tokens + self.rate * now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = refilled.min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Interceptor for PerPeerRate {
    fn intercept(&self, call: &CallInfo<'_>) -> Result<(), RpcError> {
        match ip_of(call.peer) {
            Some(ip) if !self.take(ip, Instant::now()) => Err(RpcError::Status(Status::resource_exhausted(format!(
                "over this server's limit of {} calls a second per caller address; the call was not run",
                self.rate
            )))),
            _ => Ok(()),
        }
    }
}

/// The interceptor a server runs: the limit of `rate` calls a second per
/// address (if set), then the program's own (if any).
pub(super) fn rate_then(
    rate: Option<u32>,
    own: Option<Arc<dyn Interceptor>>,
) -> Option<Arc<dyn Interceptor>> {
    let Some(rate) = rate else { return own };
    let limit: Arc<dyn Interceptor> = Arc::new(PerPeerRate::new(rate, rate));
    Some(match own {
        Some(own) => Arc::new(Both(limit, own)),
        None => limit,
    })
}

/// Two interceptors, the first one first.
struct Both(Arc<dyn Interceptor>, Arc<dyn Interceptor>);

impl Interceptor for Both {
    fn intercept(&self, call: &CallInfo<'_>) -> Result<(), RpcError> {
        self.0.intercept(call)?;
        self.1.intercept(call)
    }
}

impl super::ServerBuilder {
    /// How many connections one caller address (IP) may have open at once
    /// (default: no limit beyond [`max_connections`](Self::max_connections)).
    /// One beyond it is refused like a connection over the server's limit:
    /// a goodbye with code 10 `SERVER_BUSY` (the client's connect fails with
    /// [`RpcError::ServerBusy`]), then closed. Callers without an IP address
    /// (Unix sockets, in-memory links, NATS) are not limited.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().max_connections_per_peer(8);
    /// ```
    #[must_use]
    pub fn max_connections_per_peer(mut self, connections: usize) -> Self {
        self.config.max_connections_per_peer = Some(connections.max(1));
        self
    }

    /// How many calls a second one caller address (IP) may make, over all
    /// its connections (default: no limit): a token bucket holding a
    /// second's worth, so a burst of `calls` at once is allowed. A call
    /// beyond it is not run and fails with the status `RESOURCE_EXHAUSTED`
    /// (wire code 1008); the connection goes on. Checked before the
    /// interceptor. Callers without an IP address (Unix sockets, in-memory
    /// links, NATS) are not limited; at most 65,536 addresses are tracked at
    /// once (idle ones are forgotten first; past that, new addresses are
    /// not limited until room frees up).
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().max_calls_per_second_per_peer(1000);
    /// ```
    #[must_use]
    pub fn max_calls_per_second_per_peer(mut self, calls: u32) -> Self {
        self.config.max_calls_per_second_per_peer = Some(calls.max(1));
        self
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};

    use super::{PerPeerConnections, PerPeerRate};
    use crate::transport::PeerAddr;

    #[test]
    fn a_refusal_fits_where_the_greeting_goes() {
        use crate::wire::codec::encode_goodbye;
        use crate::wire::frame::{code, MAX_HELLO_LEN};
        for message in [super::busy(usize::MAX), super::busy_per_peer(usize::MAX)] {
            let frame = encode_goodbye(code::SERVER_BUSY, &message);
            assert!(
                frame.len() <= MAX_HELLO_LEN,
                "{message}: {} bytes",
                frame.len()
            );
        }
    }

    #[test]
    fn a_bucket_refills_at_its_rate() {
        let limit = PerPeerRate::new(10, 3);
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        );
        let start = Instant::now();
        assert!((0..3).all(|_| limit.take(a, start)), "a burst of three");
        assert!(!limit.take(a, start), "then refused");
        assert!(limit.take(b, start), "another address has its own");
        assert!(
            !limit.take(a, start + Duration::from_millis(50)),
            "half a token"
        );
        assert!(
            limit.take(a, start + Duration::from_millis(100)),
            "a token after 100 ms"
        );
        assert!(!limit.take(a, start + Duration::from_millis(100)));
        let later = start + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| limit.take(a, later)).count(),
            3,
            "no more than the burst"
        );
    }

    #[test]
    fn connections_are_counted_until_dropped() {
        let limits = PerPeerConnections::new(2);
        let peer = PeerAddr::Tcp("127.0.0.1:4000".parse().unwrap());
        let other_port = PeerAddr::Tcp("127.0.0.1:4001".parse().unwrap());
        let first = limits.admit(&peer).unwrap();
        let second = limits.admit(&other_port).unwrap();
        assert!(
            limits.admit(&peer).is_err(),
            "the address, whatever the port"
        );
        assert!(
            limits.admit(&PeerAddr::Unix).unwrap().is_none(),
            "no address, no limit"
        );
        drop(first);
        assert!(limits.admit(&peer).is_ok());
        drop(second);
        assert!(limits.open.lock().unwrap().len() <= 1);
    }
}
