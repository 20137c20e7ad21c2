//! [`ChannelBuilder`]: a channel's settings, with safe defaults.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "tls")]
use crate::error::RpcError;
use crate::service::Service;
use crate::session::{CallDefaults, Routes};
use crate::wire::frame::DEFAULT_MAX_FRAME_LENGTH;
use crate::wire::version::{OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// Default time allowed to dial and greet a server.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of encoded calls that may wait for the writer.
const DEFAULT_WRITE_QUEUE: usize = 1024;
/// Default quiet time, with calls pending, before a keepalive ping.
const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Default time a keepalive ping may go unanswered.
const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default first pause between failed reconnect attempts.
const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Default longest pause between failed reconnect attempts.
const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Default number of calls from the server a serving client runs at once.
const DEFAULT_SERVE_IN_FLIGHT: usize = 1024;

/// Settings for a [`Channel`](crate::Channel).
///
/// ```no_run
/// # async fn f() -> Result<(), rpc_runtime::RpcError> {
/// use std::time::Duration;
/// let channel = rpc_runtime::Channel::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(5))
///     .max_frame_length(64 * 1024 * 1024)
///     .connect("127.0.0.1:7000")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelBuilder {
    pub(super) max_frame_length: usize,
    /// What this side compresses and accepts.
    pub(super) compression: crate::link::Compression,
    /// The newest protocol version the greeting offers.
    pub(super) newest_version: u32,
    pub(super) connect_timeout: Duration,
    pub(super) write_queue: usize,
    pub(super) timeout: Duration,
    pub(super) keepalive_interval: Option<Duration>,
    pub(super) keepalive_timeout: Duration,
    pub(super) reconnect: bool,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
    pub(super) idempotent_retries: u32,
    /// Services this side offers the server on the connection.
    pub(super) services: Services,
    /// Calls of those services run at once per connection.
    pub(super) serve_in_flight: usize,
    /// A balanced channel watches its endpoints' health.
    pub(super) health_checks: bool,
    /// TLS for every connection, and the name to verify.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<ClientTls>,
}

/// A client's TLS settings.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(super) struct ClientTls {
    pub(super) connector: tokio_rustls::TlsConnector,
    pub(super) name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Services by name, and their methods by id: worked out when a service
/// is added, not on every connection (a collision fails every connect).
#[derive(Clone)]
pub(super) struct Services {
    by_name: HashMap<String, Arc<dyn Service>>,
    routes: Result<Routes, String>,
}

impl Services {
    fn add(&mut self, service: Arc<dyn Service>) {
        self.by_name.insert(service.name().to_owned(), service);
        self.routes = Routes::new(&self.by_name);
    }

    /// The methods of the services, by id; why not, when two collide.
    pub(super) fn routes(&self) -> Result<&Routes, &str> {
        self.routes.as_ref().map_err(String::as_str)
    }
}

impl Default for Services {
    fn default() -> Self {
        Services {
            by_name: HashMap::new(),
            routes: Ok(Routes::default()),
        }
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Default for ChannelBuilder {
    fn default() -> Self {
        ChannelBuilder {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            compression: crate::link::Compression::default(),
            newest_version: PROTOCOL_VERSION,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_queue: DEFAULT_WRITE_QUEUE,
            timeout: CallDefaults::default().timeout,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            reconnect: true,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            idempotent_retries: CallDefaults::default().idempotent_retries,
            services: Services::default(),
            serve_in_flight: DEFAULT_SERVE_IN_FLIGHT,
            health_checks: true,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ChannelBuilder {
    /// What calls get when their options do not say.
    pub(super) fn defaults(&self) -> CallDefaults {
        CallDefaults {
            timeout: self.timeout,
            idempotent_retries: self.idempotent_retries,
        }
    }

    /// Whether a [balanced channel](crate::balance) watches the health of
    /// its endpoints (default: it does). It asks each server's
    /// [health service](crate::health) for the whole server's status when it
    /// connects and follows its changes: an endpoint whose server says it
    /// is not serving (it is shutting down, or its owner said so) takes no
    /// new calls until it says it is again. A server without the health
    /// service counts as serving.
    ///
    /// ```no_run
    /// # use rpc_runtime::balance::Discover;
    /// # async fn f() {
    /// let channel = rpc_runtime::Channel::builder()
    ///     .health_checks(false)
    ///     .balance(Discover::fixed(["10.0.0.1:7000"]));
    /// # }
    /// ```
    #[must_use]
    pub fn health_checks(mut self, watch: bool) -> Self {
        self.health_checks = watch;
        self
    }

    /// Offers `service` to the server on this channel's connections, so the
    /// server's handlers can call this side back (see
    /// [`CallContext::channel`](crate::CallContext::channel)) over the
    /// connection this side dialed: no second port or connection, and it
    /// works through NAT. Calls from the server run like a server's: each as
    /// its own task, with its deadline, cancellation and streams. A service
    /// added twice under one name replaces the first.
    ///
    /// ```
    /// use rpc_runtime::{rpc_service, Channel};
    ///
    /// #[rpc_service]
    /// pub trait Notifier {
    ///     /// Something happened.
    ///     async fn notify(&self, event: String);
    /// }
    ///
    /// struct Printer;
    /// impl Notifier for Printer {
    ///     async fn notify(&self, event: String) {
    ///         println!("{event}");
    ///     }
    /// }
    ///
    /// let builder = Channel::builder().serve(NotifierServer::new(Printer));
    /// ```
    #[must_use]
    pub fn serve<S: Service>(mut self, service: S) -> Self {
        self.services.add(Arc::new(service));
        self
    }

    /// Speaks TLS on every connection (feature `tls`), verifying the
    /// server's certificate against `config`'s roots and `server_name` (a
    /// DNS name or an IP address). With a client certificate in `config`
    /// (see [`tls::client_config`](crate::tls::client_config)) this is
    /// mutual TLS. A handshake that fails fails the connection with
    /// [`RpcError::Tls`].
    ///
    /// ```no_run
    /// # fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use rpc_runtime::{tls, Channel};
    /// let config = tls::client_config(tls::load_certs("ca.pem")?, None)?;
    /// let builder = Channel::builder().tls(config, "rpc.example.com")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RpcError::Tls`] when `server_name` is neither a DNS name nor an IP
    /// address.
    #[cfg(feature = "tls")]
    pub fn tls(
        mut self,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
        server_name: &str,
    ) -> Result<Self, RpcError> {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| RpcError::Tls {
                addr: server_name.to_owned(),
                message: format!("not a server name: {e}"),
            })?;
        self.tls = Some(ClientTls {
            connector: tokio_rustls::TlsConnector::from(config),
            name,
        });
        Ok(self)
    }

    /// How many calls from the server this side runs at once per connection
    /// (default 1,024), when it [`serve`](Self::serve)s; beyond that it
    /// stops reading until one finishes.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().serve_max_in_flight(64);
    /// ```
    #[must_use]
    pub fn serve_max_in_flight(mut self, calls: usize) -> Self {
        self.serve_in_flight = calls.clamp(1, u32::MAX as usize);
        self
    }

    /// The largest response frame this client accepts, in bytes (default
    /// 16 MiB). The server learns it in the greeting and fails a call whose
    /// answer would be larger with [`RpcError::ResponseTooLarge`](crate::RpcError::ResponseTooLarge) instead of
    /// sending it. Values above `u32::MAX` are capped to it.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().max_frame_length(1024 * 1024);
    /// ```
    #[must_use]
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max_frame_length = bytes.clamp(64, u32::MAX as usize);
        self
    }

    /// How this side compresses the frames it sends (the requests and the
    /// streams it sends) and whether it accepts compressed answers: by
    /// default zstd for frames of 1 KiB and more, both ways, when the server
    /// accepts it too (see [`Compression`](crate::Compression)).
    ///
    /// ```
    /// use rpc_runtime::{Channel, Compression};
    /// let builder = Channel::builder().compression(Compression::disabled());
    /// ```
    #[must_use]
    pub fn compression(mut self, compression: crate::link::Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The newest protocol version the greeting offers (default, and at
    /// most, [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION); at least
    /// [`OLDEST_PROTOCOL_VERSION`](crate::OLDEST_PROTOCOL_VERSION)).
    ///
    /// A channel settles with each server on the newest version both speak
    /// (see [`Channel::negotiated`](crate::Channel::negotiated)), so this
    /// is seldom needed. A server of version 3 reads only version 3's own
    /// greeting: a channel that dials by itself then dials again at once
    /// with that greeting, but a channel over a stream or link you opened
    /// ([`connect_io`](Self::connect_io), [`connect_link`](Self::connect_link))
    /// cannot, and reaches such a server only with `newest_version(3)`.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().newest_version(3);
    /// ```
    #[must_use]
    pub fn newest_version(mut self, version: u32) -> Self {
        self.newest_version = version.clamp(OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION);
        self
    }

    /// How long dialing plus the protocol greeting may take (default 10 s).
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder()
    ///     .connect_timeout(std::time::Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The default deadline of a call (default 30 s); a generated client's
    /// `with_timeout` overrides it per client. The server learns the time
    /// remaining with each request and stops the handler when it passes.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().timeout(std::time::Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many encoded calls may wait to be written (default 1,024). A caller
    /// beyond it waits for room, so a runaway loop cannot grow memory.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().write_queue(256);
    /// ```
    #[must_use]
    pub fn write_queue(mut self, frames: usize) -> Self {
        self.write_queue = frames.max(1);
        self
    }

    /// After this long without hearing from the server while calls are
    /// pending, send a ping (default 30 s); `None` turns keepalive off. A dead
    /// server (a host that vanished without closing the connection) is then
    /// noticed, and pending calls fail with [`RpcError::ConnectionLost`](crate::RpcError::ConnectionLost),
    /// even when their deadlines are far away.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder()
    ///     .keepalive_interval(Some(std::time::Duration::from_secs(10)));
    /// ```
    #[must_use]
    pub fn keepalive_interval(mut self, interval: Option<Duration>) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// How long a keepalive ping may go unanswered before the connection is
    /// declared dead (default 10 s).
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder()
    ///     .keepalive_timeout(std::time::Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Whether a call on a broken connection opens a new one (default: yes).
    /// Calls pending when a connection broke are never re-sent, except
    /// idempotent ones.
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().reconnect(false);
    /// ```
    #[must_use]
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The pause after a failed reconnect attempt: `initial` (default 100 ms),
    /// doubling after each further failure up to `max` (default 10 s), with
    /// random jitter (each pause is between half and all of the current
    /// value). A call that arrives during a pause waits for it, within its
    /// deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = rpc_runtime::Channel::builder()
    ///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// How many times an idempotent call is sent again after its connection
    /// broke before the answer arrived (default 2, so at most 3 sends),
    /// always within the call's deadline. (Any call, idempotent or not, is
    /// also sent again once when the server closed the connection with a
    /// promise that it had not run it: a goodbye for shutdown or idleness.)
    ///
    /// ```
    /// let builder = rpc_runtime::Channel::builder().idempotent_retries(4);
    /// ```
    #[must_use]
    pub fn idempotent_retries(mut self, retries: u32) -> Self {
        self.idempotent_retries = retries;
        self
    }
}
