//! DNS discovery: the endpoints a name's records give, resolved again when
//! their time to live runs out (feature `dns`, on hickory-resolver).

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use tokio::time::Instant;

use super::discover::{Change, Discover};

/// The shortest wait between two lookups, whatever the records' time to
/// live says.
const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two lookups.
const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(300);
/// The wait before trying again after a failed lookup.
const DEFAULT_RETRY: Duration = Duration::from_secs(5);

/// What to look up.
#[derive(Debug, Clone)]
enum Query {
    /// A and AAAA records of a host, each address with one port.
    Host { host: String, port: u16 },
    /// SRV records, each target's addresses with the record's port.
    Srv { name: String },
}

/// Endpoints from DNS, for [`ChannelBuilder::balance`](crate::ChannelBuilder::balance):
/// the addresses of a host's A and AAAA records with one port, or the
/// targets and ports of SRV records.
///
/// The name is resolved at once and again when the records' time to live
/// runs out (within [`min_interval`](Self::min_interval) and
/// [`max_interval`](Self::max_interval)): an address that appears is
/// added, one that goes is removed (calls on it finish first). A lookup
/// that fails (no such name, no answer, no records) keeps the last good
/// set and is tried again after [`retry`](Self::retry).
///
/// By default the system's resolver configuration is used
/// (`/etc/resolv.conf`); [`name_server`](Self::name_server) names one.
///
/// ```no_run
/// use rpc_runtime::balance::Dns;
///
/// # async fn f() {
/// let channel = rpc_runtime::Channel::builder()
///     .balance(Dns::host("replicas.internal", 7000).into());
/// let by_srv = rpc_runtime::Channel::builder()
///     .balance(Dns::srv("_rpc._tcp.example.com").into());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dns {
    query: Query,
    name_servers: Vec<SocketAddr>,
    min_interval: Duration,
    max_interval: Duration,
    retry: Duration,
}

impl Dns {
    /// The addresses of `host`'s A and AAAA records, each with `port`.
    #[must_use]
    pub fn host(host: &str, port: u16) -> Self {
        Dns::of(Query::Host {
            host: host.to_owned(),
            port,
        })
    }

    /// The targets of `name`'s SRV records (`_service._tcp.domain`), each
    /// address of each target with the record's port.
    #[must_use]
    pub fn srv(name: &str) -> Self {
        Dns::of(Query::Srv {
            name: name.to_owned(),
        })
    }

    fn of(query: Query) -> Self {
        Dns {
            query,
            name_servers: Vec::new(),
            min_interval: DEFAULT_MIN_INTERVAL,
            max_interval: DEFAULT_MAX_INTERVAL,
            retry: DEFAULT_RETRY,
        }
    }

    /// Asks this name server (over UDP) instead of the system's; may be
    /// given more than once.
    ///
    /// ```
    /// # use rpc_runtime::balance::Dns;
    /// let dns = Dns::host("replicas.internal", 7000).name_server("10.0.0.53:53".parse().unwrap());
    /// ```
    #[must_use]
    pub fn name_server(mut self, addr: SocketAddr) -> Self {
        self.name_servers.push(addr);
        self
    }

    /// The shortest wait between lookups, however short the time to live
    /// (default 1 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rpc_runtime::balance::Dns;
    /// let dns = Dns::host("replicas.internal", 7000).min_interval(Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// The longest wait between lookups, however long the time to live
    /// (default 5 min).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rpc_runtime::balance::Dns;
    /// let dns = Dns::host("replicas.internal", 7000).max_interval(Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn max_interval(mut self, interval: Duration) -> Self {
        self.max_interval = interval;
        self
    }

    /// The wait before looking up again after a lookup failed (default
    /// 5 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rpc_runtime::balance::Dns;
    /// let dns = Dns::host("replicas.internal", 7000).retry(Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn retry(mut self, wait: Duration) -> Self {
        self.retry = wait;
        self
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let provider = TokioRuntimeProvider::default();
        let builder = if self.name_servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| e.to_string())?
        } else {
            let servers = self
                .name_servers
                .iter()
                .map(|addr| {
                    let mut server = NameServerConfig::udp(addr.ip());
                    for connection in &mut server.connections {
                        connection.port = addr.port();
                    }
                    server
                })
                .collect();
            TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
        };
        builder.build().map_err(|e| e.to_string())
    }
}

impl From<Dns> for Discover {
    fn from(dns: Dns) -> Discover {
        let state = Resolving {
            resolver: dns.resolver(),
            dns,
            current: BTreeSet::new(),
            queue: VecDeque::new(),
            next: Instant::now(),
        };
        Discover::changes(futures::stream::unfold(state, Resolving::next))
    }
}

/// A DNS discovery between lookups.
struct Resolving {
    dns: Dns,
    resolver: Result<TokioResolver, String>,
    /// The endpoints of the last good lookup.
    current: BTreeSet<String>,
    /// Changes found and not yet reported.
    queue: VecDeque<Change>,
    /// When to look up next.
    next: Instant,
}

impl Resolving {
    async fn next(mut self) -> Option<(Change, Self)> {
        loop {
            if let Some(change) = self.queue.pop_front() {
                return Some((change, self));
            }
            tokio::time::sleep_until(self.next).await;
            match self.lookup().await {
                Ok((found, valid_until)) if !found.is_empty() => {
                    let wait = valid_until
                        .saturating_duration_since(Instant::now())
                        .clamp(self.dns.min_interval, self.dns.max_interval);
                    self.next = Instant::now() + wait;
                    self.queue.extend(
                        self.current
                            .difference(&found)
                            .map(|gone| Change::Remove(gone.clone())),
                    );
                    self.queue.extend(
                        found
                            .difference(&self.current)
                            .map(|new| Change::Insert(new.clone())),
                    );
                    self.current = found;
                }
                Ok(_) => {
                    tracing::debug!(query = ?self.dns.query, "DNS lookup found no records; keeping the last set");
                    self.next = Instant::now() + self.dns.retry;
                }
                Err(error) => {
                    tracing::debug!(query = ?self.dns.query, %error, "DNS lookup failed; keeping the last set");
                    self.next = Instant::now() + self.dns.retry;
                }
            }
        }
    }

    /// The endpoints the records give now, and until when they hold.
    async fn lookup(&self) -> Result<(BTreeSet<String>, Instant), String> {
        let resolver = self.resolver.as_ref().map_err(Clone::clone)?;
        match &self.dns.query {
            Query::Host { host, port } => {
                let lookup = resolver
                    .lookup_ip(host.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let found = lookup.iter().map(|ip| endpoint(ip, *port)).collect();
                Ok((found, Instant::from_std(lookup.valid_until())))
            }
            Query::Srv { name } => {
                let lookup = resolver
                    .srv_lookup(name.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let mut valid_until = Instant::from_std(lookup.valid_until());
                let mut found = BTreeSet::new();
                for record in lookup.answers() {
                    let RData::SRV(srv) = &record.data else {
                        continue;
                    };
                    // A target that does not resolve leaves the others.
                    let Ok(ips) = resolver.lookup_ip(srv.target.clone()).await else {
                        continue;
                    };
                    valid_until = valid_until.min(Instant::from_std(ips.valid_until()));
                    found.extend(ips.iter().map(|ip| endpoint(ip, srv.port)));
                }
                Ok((found, valid_until))
            }
        }
    }
}

/// An endpoint's name: its address.
fn endpoint(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

impl fmt::Debug for Resolving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolving")
            .field("query", &self.dns.query)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}
