//! The server side: an accept loop, and one dispatch loop per connection.

mod builder;
mod connection;
mod incoming;
#[cfg(feature = "tower")]
mod layers;
mod limits;

use incoming::{Incoming, Links, Source};

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::ToSocketAddrs;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::health::HealthReporter;
use crate::intercept::Interceptor;
use crate::link::LinkListener;
use crate::reflection;
use crate::service::Service;
use crate::session::{Counted, Routes, Serving};
use crate::transport::Listener;

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Connections over the limit that are told "busy" at once; beyond these,
/// further ones are closed without a word.
const BUSY_REPLIES: usize = 64;

/// Settings and services for a [`Server`].
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// # use rpc_runtime::Server;
/// let server = Server::builder()
///     // .add_service(CalculatorServer::new(Calc))
///     .max_frame_length(4 * 1024 * 1024)
///     .bind("127.0.0.1:7000")
///     .await?;
/// # Ok(()) }
/// ```
pub struct ServerBuilder {
    services: HashMap<String, Arc<dyn Service>>,
    interceptor: Option<Arc<dyn Interceptor>>,
    duplicate: Option<String>,
    /// Whether the reflection service is added.
    reflection: bool,
    config: Config,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// tower layers around dispatch, outermost first.
    #[cfg(feature = "tower")]
    layers: Vec<layers::BoxLayer>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    max_frame_length: usize,
    /// How long answers may wait for a peer that does not read.
    write_timeout: Duration,
    /// The largest metadata block a call may carry.
    max_metadata: usize,
    handshake_timeout: Duration,
    max_in_flight: usize,
    max_connections: usize,
    idle_timeout: Option<Duration>,
    shutdown_grace: Duration,
    max_connections_per_peer: Option<usize>,
    max_calls_per_second_per_peer: Option<u32>,
    compression: crate::link::Compression,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

impl ServerBuilder {
    /// Listens on a TCP address (port 0 picks a free port; see
    /// [`Server::local_addr`]) and starts serving.
    ///
    /// # Errors
    /// When the address cannot be bound, or two services share a name.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> io::Result<Server<SocketAddr>> {
        self.check()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// Listens on a Unix domain socket at `path` and starts serving.
    ///
    /// # Errors
    /// When the path cannot be bound (it exists already, say), or two
    /// services share a name.
    #[cfg(unix)]
    pub fn bind_unix(
        self,
        path: impl AsRef<std::path::Path>,
    ) -> io::Result<Server<std::path::PathBuf>> {
        self.check()?;
        let listener = tokio::net::UnixListener::bind(path)?;
        self.serve(listener)
    }

    /// Serves connections from any [`Listener`]. Must be called inside a Tokio
    /// runtime; the server runs on spawned tasks.
    ///
    /// # Errors
    /// When two services share a name, or the listener cannot tell its
    /// address.
    pub fn serve<L: Listener>(self, listener: L) -> io::Result<Server<L::Addr>> {
        let local_addr = listener.local_addr()?;
        self.start(listener, local_addr)
    }

    /// Serves the links of a [`LinkListener`]: connections over a
    /// transport that carries whole frames (see [`link`](crate::link)).
    /// TLS, if set, does not apply: such a transport brings its own.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let (listener, addr) = rpc_runtime::link::memory::listener();
    /// let server = rpc_runtime::Server::builder().serve_links(listener)?;
    /// # server.shutdown().await;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub fn serve_links<L: LinkListener>(self, listener: L) -> io::Result<Server<L::Addr>> {
        let local_addr = listener.local_addr()?;
        self.start(Links(listener), local_addr)
    }

    fn start<S: Source, A>(mut self, source: S, local_addr: A) -> io::Result<Server<A>> {
        self.check()?;
        let health = HealthReporter::new();
        // Unless the user serves a health service of their own.
        let service = health.service();
        self.services
            .entry(service.name().to_owned())
            .or_insert_with(|| Arc::new(service));
        if self.reflection {
            let service = reflection::Hosted::new(self.services.values()).service();
            self.services
                .entry(service.name().to_owned())
                .or_insert_with(|| Arc::new(service));
        }
        // The health and reflection services are hosted like any other,
        // and reported as such (section 9 of PROTOCOL.md).
        health.hosts(self.services.keys().map(String::as_str));
        #[cfg(feature = "tower")]
        let services = ServerBuilder::layered(&self.layers, std::mem::take(&mut self.services));
        #[cfg(not(feature = "tower"))]
        let services = std::mem::take(&mut self.services);
        let routes = Routes::new(&services)
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        let serving = Arc::new(Serving {
            routes,
            interceptor: limits::rate_then(
                self.config.max_calls_per_second_per_peer,
                self.interceptor,
            ),
            max_in_flight: self.config.max_in_flight,
            max_metadata: self.config.max_metadata,
            write_timeout: self.config.write_timeout,
            kill: CancellationToken::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        });
        let state = Arc::new(ServerState {
            serving,
            health,
            #[cfg(feature = "tls")]
            tls: self.tls,
            config: self.config,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            connections: Arc::new(AtomicUsize::new(0)),
            busy_replies: Arc::new(Semaphore::new(BUSY_REPLIES)),
            per_peer: self
                .config
                .max_connections_per_peer
                .map(limits::PerPeerConnections::new),
        });
        state.tracker.spawn(accept_loop(source, Arc::clone(&state)));
        Ok(Server { local_addr, state })
    }

    /// The idle timeout, set to `fallback` where none is: a transport
    /// whose callers go away without a word (a broker's) needs one.
    #[cfg(feature = "nats")]
    pub(crate) fn idle_timeout_or(mut self, fallback: Duration) -> Self {
        self.config.idle_timeout = self.config.idle_timeout.or(Some(fallback));
        self
    }

    fn check(&self) -> io::Result<()> {
        match &self.duplicate {
            Some(name) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("two services named `{name}` were added; give one a different wire name"),
            )),
            None => Ok(()),
        }
    }
}

pub(crate) struct ServerState {
    /// The services, and what dispatch needs: its `kill` stops every
    /// connection and running call at once, and it counts the calls running
    /// over all connections.
    serving: Arc<Serving>,
    /// What the health service reports.
    health: HealthReporter,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: Config,
    /// Graceful: stop accepting and reading, finish running calls.
    shutdown: CancellationToken,
    /// The accept loop and every connection.
    tracker: TaskTracker,
    /// Connections being served.
    connections: Arc<AtomicUsize>,
    /// Limits the connections being told "busy" at once.
    busy_replies: Arc<Semaphore>,
    /// Open connections by caller address, when they are limited.
    per_peer: Option<Arc<limits::PerPeerConnections>>,
}

/// A running server.
///
/// Dropping the handle leaves the server running (like dropping a
/// `JoinHandle`); call [`shutdown`](Server::shutdown) to stop it gracefully or
/// [`abort`](Server::abort) to stop it at once.
pub struct Server<A = SocketAddr> {
    local_addr: A,
    state: Arc<ServerState>,
}

impl<A: fmt::Debug> fmt::Debug for Server<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("services", &self.state.serving.routes.service_names())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts configuring a server.
    #[must_use]
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

impl<A: Clone> Server<A> {
    /// The address clients connect to (for TCP, the port actually bound).
    #[must_use]
    pub fn local_addr(&self) -> A {
        self.local_addr.clone()
    }

    /// Stops gracefully and returns when everything has stopped: no new
    /// connections are accepted; calls already running may finish (up to the
    /// grace period, see [`ServerBuilder::shutdown_grace`]) and their answers
    /// are sent; requests that arrive meanwhile are answered with
    /// [`RpcError::ShuttingDown`](crate::RpcError::ShuttingDown) without running; then each connection says
    /// goodbye and closes. Handlers learn that shutdown began through
    /// [`CallContext::shutting_down`](crate::CallContext::shutting_down), so
    /// a long stream can end cleanly. When the grace period ends, answer
    /// streams still open are ended with [`RpcError::ShuttingDown`](crate::RpcError::ShuttingDown) (the
    /// items already sent stand) and the connections still serving calls
    /// are closed: a call answering with one value that is still running
    /// fails with [`RpcError::ConnectionLost`](crate::RpcError::ConnectionLost), since it may have run.
    ///
    /// Shutdown begins when this is called, not when the returned future is
    /// first polled, so `tokio::spawn(server.shutdown())` stops the server
    /// from accepting at once.
    pub fn shutdown(self) -> impl Future<Output = ()> + Send + 'static {
        self.state.health.shutting_down();
        self.state.shutdown.cancel();
        self.state.tracker.close();
        let state = self.state;
        async move {
            let grace = state.config.shutdown_grace;
            if tokio::time::timeout(grace, state.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    ?grace,
                    "calls still running after the grace period; closing their connections"
                );
                state.serving.kill.cancel();
                state.tracker.wait().await;
            }
        }
    }

    /// Serves until `signal` completes, then shuts down gracefully, as
    /// [`shutdown`](Self::shutdown).
    ///
    /// ```no_run
    /// # async fn f(server: rpc_runtime::Server) {
    /// server.shutdown_on(async { let _ = tokio::signal::ctrl_c().await; }).await;
    /// # }
    /// ```
    pub async fn shutdown_on(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops at once: closes the listener and every connection and drops
    /// every running call. Clients see [`RpcError::ConnectionLost`](crate::RpcError::ConnectionLost).
    ///
    /// Like [`shutdown`](Self::shutdown), it begins when called.
    pub fn abort(self) -> impl Future<Output = ()> + Send + 'static {
        self.state.serving.kill.cancel();
        self.state.tracker.close();
        let state = self.state;
        async move { state.tracker.wait().await }
    }

    /// What the server's health service reports (see [`health`](crate::health)):
    /// set a service's status by hand with it.
    #[must_use]
    pub fn health(&self) -> HealthReporter {
        self.state.health.clone()
    }

    /// Calls running now, over all connections.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.state.serving.in_flight.load(Ordering::Relaxed)
    }

    /// The wire names of the services it serves (the health and
    /// reflection services included).
    #[cfg(feature = "nats")]
    pub(crate) fn service_names(&self) -> &[String] {
        self.state.serving.routes.service_names()
    }

    /// The methods it serves.
    #[cfg(feature = "nats")]
    pub(crate) fn routes(&self) -> &crate::session::Routes {
        &self.state.serving.routes
    }

    /// Connections open now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }
}

async fn accept_loop<S: Source>(mut source: S, state: Arc<ServerState>) {
    loop {
        let accepted = tokio::select! {
            accepted = source.next() => accepted,
            () = state.shutdown.cancelled() => break,
            () = state.serving.kill.cancelled() => break,
        };
        match accepted {
            Ok((conn, peer)) => {
                if state.connections.load(Ordering::Relaxed) >= state.config.max_connections {
                    let message = limits::busy(state.config.max_connections);
                    limits::refuse_busy(conn, peer, &state, message);
                    continue;
                }
                let from_peer = match state.per_peer.as_ref().map(|limits| limits.admit(&peer)) {
                    None => None,
                    Some(Ok(admitted)) => admitted,
                    Some(Err(message)) => {
                        limits::refuse_busy(conn, peer, &state, message);
                        continue;
                    }
                };
                let guard = Counted::new(&state.connections);
                let serving = conn.serve(peer, Arc::clone(&state), guard);
                match from_peer {
                    None => state.tracker.spawn(serving),
                    Some(from_peer) => state.tracker.spawn(async move {
                        let _from_peer = from_peer;
                        serving.await;
                    }),
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = state.shutdown.cancelled() => break,
                    () = state.serving.kill.cancelled() => break,
                }
            }
        }
    }
}
