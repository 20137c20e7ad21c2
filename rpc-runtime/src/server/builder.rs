//! [`ServerBuilder`]'s defaults and settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Config, ServerBuilder};
use crate::intercept::Interceptor;
use crate::service::Service;
use crate::session::{DEFAULT_MAX_METADATA, DEFAULT_WRITE_TIMEOUT};
use crate::wire::frame::DEFAULT_MAX_FRAME_LENGTH;

/// Default time a new connection has to send its greeting.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of calls one connection may have running at once.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default number of open connections.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time a connection may sit without calls before it is closed.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default time `shutdown` lets running calls finish.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

impl ServerBuilder {
    /// The largest frame a connection accepts, and the calls it runs at
    /// once: what a greeting would say (a broker transport, which has
    /// none, publishes them otherwise).
    #[cfg(feature = "nats")]
    pub(crate) fn limits(&self) -> (usize, usize) {
        (self.config.max_frame_length, self.config.max_in_flight)
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            services: HashMap::new(),
            interceptor: None,
            duplicate: None,
            reflection: true,
            config: Config {
                max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                max_metadata: DEFAULT_MAX_METADATA,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
                shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
                write_timeout: DEFAULT_WRITE_TIMEOUT,
                max_connections_per_peer: None,
                max_calls_per_second_per_peer: None,
                compression: crate::link::Compression::default(),
            },
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tower")]
            layers: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// Adds a service; calls naming its [`Service::name`] go to it. Adding two
    /// services with the same name makes `bind`/`serve` fail.
    #[must_use]
    pub fn add_service<S: Service>(mut self, service: S) -> Self {
        let name = service.name().to_owned();
        if self
            .services
            .insert(name.clone(), Arc::new(service))
            .is_some()
        {
            self.duplicate.get_or_insert(name);
        }
        self
    }

    /// Serves over TLS with `config` (feature `tls`): every connection
    /// starts with a TLS handshake, within the handshake timeout, and a peer
    /// that fails it is closed (and logged) without affecting the others.
    /// With a client verifier in `config` (mutual TLS, see
    /// [`tls::server_config`](crate::tls::server_config)), handlers see the
    /// client's verified identity in
    /// [`CallContext::peer_identity`](crate::CallContext::peer_identity).
    ///
    /// ```no_run
    /// # fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use rpc_runtime::{tls, Server};
    /// let config = tls::server_config(
    ///     tls::load_certs("server.pem")?,
    ///     tls::load_private_key("server.key")?,
    ///     None,
    /// )?;
    /// let builder = Server::builder().tls(config);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, config: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// Runs `interceptor` before every call to this server is dispatched
    /// (for one service only, wrap it in [`Intercepted`](crate::Intercepted)).
    /// A later call replaces an earlier interceptor; combine checks in one.
    ///
    /// ```
    /// use rpc_runtime::{CallInfo, RpcError, Server};
    /// let builder = Server::builder().intercept(|call: &CallInfo<'_>| {
    ///     if call.metadata.get("authorization").is_some() {
    ///         Ok(())
    ///     } else {
    ///         Err(RpcError::Unauthenticated { message: "no credentials".into() })
    ///     }
    /// });
    /// ```
    #[must_use]
    pub fn intercept(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptor = Some(Arc::new(interceptor));
        self
    }

    /// How long answers may wait for a client that reads nothing (default
    /// 30 s). Answers are buffered up to a small bound (the codec's 8 KiB,
    /// then the socket's); beyond it the connection stops being read, and
    /// if the client still reads nothing for this long the connection is
    /// closed. So a client that sends requests but never reads the answers
    /// costs a bounded buffer for a bounded time.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().write_timeout(std::time::Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// How the server compresses the frames it sends (answers and the
    /// streams it sends) and whether it accepts compressed requests: by
    /// default zstd for frames of 1 KiB and more, both ways, with clients
    /// that accept it too (see [`Compression`](crate::Compression)).
    ///
    /// ```
    /// use rpc_runtime::{Compression, Server};
    /// let builder = Server::builder().compression(Compression::default().threshold(64 * 1024));
    /// ```
    #[must_use]
    pub fn compression(mut self, compression: crate::link::Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Whether the server answers the [reflection service](crate::reflection)
    /// (default: yes), which describes the services it hosts (names,
    /// methods, documentation and the formats of their types) so that tools
    /// such as the `rpc` command line can call them. Turn it off for an API
    /// that is not to be seen.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().reflection(false);
    /// ```
    #[must_use]
    pub fn reflection(mut self, on: bool) -> Self {
        self.reflection = on;
        self
    }

    /// The largest metadata block a call may carry, in bytes (default
    /// 8 KiB); a call with more is answered with
    /// [`RpcError::BadRequest`](crate::RpcError::BadRequest) and not run, and the connection goes on.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().max_metadata_size(1024);
    /// ```
    #[must_use]
    pub fn max_metadata_size(mut self, bytes: usize) -> Self {
        self.config.max_metadata = bytes;
        self
    }

    /// The largest request frame accepted, in bytes (default 16 MiB). Clients
    /// learn it in the greeting and fail a larger call before sending it; a
    /// peer that sends one anyway is disconnected. Values above `u32::MAX` are
    /// capped to it.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().max_frame_length(1024 * 1024);
    /// ```
    #[must_use]
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.config.max_frame_length = bytes.clamp(64, u32::MAX as usize);
        self
    }

    /// How long a new connection may take to send its greeting (default
    /// 10 s); one that says nothing is closed after it.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder()
    ///     .handshake_timeout(std::time::Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// How many calls one connection may have running at once (default
    /// 1,024). At the limit the server stops reading that connection until a
    /// call finishes, so TCP pushes back on the client instead of the server
    /// queueing without bound.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().max_in_flight(64);
    /// ```
    #[must_use]
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.config.max_in_flight = calls.max(1);
        self
    }

    /// How many connections may be open at once (default 10,000). A
    /// connection beyond it is answered with a goodbye that fails the
    /// client's connect with [`RpcError::ServerBusy`](crate::RpcError::ServerBusy), then closed.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder().max_connections(500);
    /// ```
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.config.max_connections = connections;
        self
    }

    /// How long a connection may go without calls before the server closes
    /// it (default 5 minutes); `None` keeps idle connections open. Clients
    /// reconnect on their next call. Keepalive pings do not count as calls.
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder()
    ///     .idle_timeout(Some(std::time::Duration::from_secs(60)));
    /// ```
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long [`Server::shutdown`](super::Server::shutdown) lets running calls finish before it
    /// closes their connections anyway (default 30 s).
    ///
    /// ```
    /// let builder = rpc_runtime::Server::builder()
    ///     .shutdown_grace(std::time::Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }
}
