//! The server side: an accept loop, and one dispatch loop per connection.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::WriteHalf;
use tokio::net::ToSocketAddrs;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::{FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{CallerHalf, Reverse};
use crate::codec;
use crate::conn::{self, HandshakeError, DEFAULT_MAX_FRAME_LENGTH};
use crate::context::CallContext;
use crate::frame::{code, flags, Message, STREAM_WINDOW};
use crate::identity::PeerIdentity;
use crate::intercept::{CallInfo, Interceptor};
use crate::metadata::Metadata;
use crate::service::{Body, BodyRepr, BodyStream, Service, ServiceFuture};
use crate::streaming::{InboxEvent, InboxParts};
use crate::transport::{Io, Listener, PeerAddr};
use crate::{Channel, RpcError};

/// Default time a new connection has to send its greeting.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of calls one connection may have running at once.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Default largest metadata block a call may carry.
const DEFAULT_MAX_METADATA: usize = 8 * 1024;
/// Default time answers may wait for a peer that reads nothing.
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Encoded responses that may wait for a connection's writer.
const RESPONSE_QUEUE: usize = 256;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Default number of open connections.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time a connection may sit without calls before it is closed.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default time `shutdown` lets running calls finish.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
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
    config: Config,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
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
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            services: HashMap::new(),
            interceptor: None,
            duplicate: None,
            config: Config {
                max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                max_metadata: DEFAULT_MAX_METADATA,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
                shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
                write_timeout: DEFAULT_WRITE_TIMEOUT,
            },
            #[cfg(feature = "tls")]
            tls: None,
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

    /// The largest metadata block a call may carry, in bytes (default
    /// 8 KiB); a call with more is answered with
    /// [`RpcError::BadRequest`] and not run, and the connection goes on.
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
    /// client's connect with [`RpcError::ServerBusy`], then closed.
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

    /// How long [`Server::shutdown`] lets running calls finish before it
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
        self.check()?;
        let local_addr = listener.local_addr()?;
        let state = Arc::new(ServerState {
            services: self.services,
            interceptor: self.interceptor,
            #[cfg(feature = "tls")]
            tls: self.tls,
            config: self.config,
            shutdown: CancellationToken::new(),
            kill: CancellationToken::new(),
            tracker: TaskTracker::new(),
            connections: Arc::new(AtomicUsize::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            busy_replies: Arc::new(Semaphore::new(BUSY_REPLIES)),
        });
        state
            .tracker
            .spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Server { local_addr, state })
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
    services: HashMap<String, Arc<dyn Service>>,
    /// Runs before every call is dispatched.
    interceptor: Option<Arc<dyn Interceptor>>,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: Config,
    /// Graceful: stop accepting and reading, finish running calls.
    shutdown: CancellationToken,
    /// Immediate: drop every connection and running call.
    kill: CancellationToken,
    /// The accept loop and every connection.
    tracker: TaskTracker,
    /// Connections being served.
    connections: Arc<AtomicUsize>,
    /// Calls running, over all connections.
    in_flight: Arc<AtomicUsize>,
    /// Limits the connections being told "busy" at once.
    busy_replies: Arc<Semaphore>,
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
            .field("services", &self.state.services.keys().collect::<Vec<_>>())
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
    /// [`RpcError::ShuttingDown`] without running; then each connection says
    /// goodbye and closes. Connections with calls still running when the
    /// grace period ends are closed (their clients see
    /// [`RpcError::ConnectionLost`]).
    ///
    /// Shutdown begins when this is called, not when the returned future is
    /// first polled, so `tokio::spawn(server.shutdown())` stops the server
    /// from accepting at once.
    pub fn shutdown(self) -> impl Future<Output = ()> + Send + 'static {
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
                state.kill.cancel();
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
    /// every running call. Clients see [`RpcError::ConnectionLost`].
    ///
    /// Like [`shutdown`](Self::shutdown), it begins when called.
    pub fn abort(self) -> impl Future<Output = ()> + Send + 'static {
        self.state.kill.cancel();
        self.state.tracker.close();
        let state = self.state;
        async move { state.tracker.wait().await }
    }

    /// Calls running now, over all connections.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::Relaxed)
    }

    /// Connections open now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }
}

async fn accept_loop<L: Listener>(mut listener: L, state: Arc<ServerState>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.shutdown.cancelled() => break,
            () = state.kill.cancelled() => break,
        };
        match accepted {
            Ok((io, peer)) => {
                if state.connections.load(Ordering::Relaxed) >= state.config.max_connections {
                    refuse_busy(io, peer, &state);
                    continue;
                }
                let guard = Counted::new(&state.connections);
                state
                    .tracker
                    .spawn(open_connection(io, peer, Arc::clone(&state), guard));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = state.shutdown.cancelled() => break,
                    () = state.kill.cancelled() => break,
                }
            }
        }
    }
}

/// Decrements a counter when dropped.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(counter))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Tells a connection over the limit that the server is busy, if not too
/// many are being told already; closes it either way.
fn refuse_busy<T: Io>(io: T, peer: PeerAddr, state: &Arc<ServerState>) {
    let Ok(permit) = Arc::clone(&state.busy_replies).try_acquire_owned() else {
        tracing::debug!(%peer, "closed a connection over the limit without a reply");
        return;
    };
    let message = format!(
        "the server is at its limit of {} connections; try again later",
        state.config.max_connections
    );
    let timeout = state.config.handshake_timeout;
    state.tracker.spawn(async move {
        let _permit: OwnedSemaphorePermit = permit;
        let refused =
            tokio::time::timeout(timeout, conn::refuse(io, code::SERVER_BUSY, &message)).await;
        tracing::info!(%peer, ?refused, "refused a connection: at the connection limit");
    });
}

/// What the dispatch loop does after a frame.
enum Next {
    Continue,
    /// Stop reading and close; send this goodbye (if any) first.
    Stop(Option<Bytes>),
}

/// Where a dispatch loop's frames go.
pub(crate) trait Out: Send {
    /// Adds a frame; waits while the way out is full.
    fn feed(&mut self, frame: Bytes) -> impl Future<Output = io::Result<()>> + Send;
}

impl<T: Io> Out for FramedWrite<WriteHalf<T>, LengthDelimitedCodec> {
    fn feed(&mut self, frame: Bytes) -> impl Future<Output = io::Result<()>> + Send {
        SinkExt::feed(self, frame)
    }
}

/// A client's writer task, for the calls a client serves.
impl Out for mpsc::Sender<conn::Outgoing> {
    async fn feed(&mut self, frame: Bytes) -> io::Result<()> {
        self.send(conn::Outgoing::frame(frame))
            .await
            .map_err(|_| io::Error::other("the connection's writer is gone"))
    }
}

/// What one connection's dispatch loop keeps: the calls the peer makes.
pub(crate) struct Dispatch<'a, O: Out> {
    state: &'a Arc<ServerState>,
    peer: &'a PeerAddr,
    peer_max_frame: usize,
    /// The way out. On a server, the connection's write half, written by
    /// this task alone: answers to calls that finished inline go straight
    /// into its buffer, and it is flushed when there is nothing left to
    /// read, so one write system call carries the answers to everything one
    /// read brought in.
    writer: O,
    /// Something was written to `writer` since its last flush.
    unflushed: bool,
    /// Writing failed: the connection is gone.
    write_failed: Option<io::Error>,
    /// Answers of calls that run as their own tasks.
    responses: mpsc::Sender<Bytes>,
    /// Credits and cancels from handlers that read their caller's stream.
    control: mpsc::UnboundedSender<Bytes>,
    /// Call id → the stream its caller sends, while the call runs.
    inboxes: HashMap<u64, Inbox>,
    /// Every call running on this connection; dropping it aborts them.
    calls: JoinSet<u64>,
    /// Request id → its task, for cancels and credits.
    running: HashMap<u64, Running>,
    /// Shutting down: answer new requests with `ShuttingDown`.
    draining: bool,
    /// A request read while every slot was taken, waiting for one. While it
    /// waits the connection is not read: that is the backpressure. A client
    /// that keeps within the window announced in the greeting only gets
    /// here for a moment (a slot it freed by cancelling is not yet reaped),
    /// so it never stops the server from seeing its cancels and pings.
    parked: Option<Parked>,
    max_in_flight: usize,
    /// Ids of calls this side makes have this parity (0 on a server, whose
    /// calls back to the client have even ids; 1 on a client).
    own_parity: u64,
    /// Frames about the calls this side makes go here (a server's calls
    /// back to a client that serves).
    caller: Option<CallerHalf>,
    /// Handed to handlers (`CallContext::channel`) for calling the peer
    /// back, when the peer serves.
    peer_channel: Option<Channel>,
    /// Who the peer proved to be (mutual TLS).
    identity: Option<Arc<PeerIdentity>>,
}

/// A request waiting for a slot.
struct Parked {
    id: u64,
    deadline: Option<Instant>,
    oneway: bool,
    /// The caller wants the answer as a stream.
    stream: bool,
    /// The stream the caller sends with the call.
    inbox: Option<InboxParts>,
    metadata: Option<Metadata>,
    call: Result<ServiceFuture, RpcError>,
}

/// The connection's end of a stream a caller sends.
struct Inbox {
    events: mpsc::UnboundedSender<InboxEvent>,
    /// Items the caller may still send; the handler's side adds to it.
    credit: Arc<AtomicU32>,
}

/// A call running as its own task.
struct Running {
    task: AbortHandle,
    /// For a call that answers with a stream: the caller's credit.
    credit: Option<Arc<Semaphore>>,
}

/// The most stream credit a caller can hold at once; grants beyond it are
/// ignored (the producer is never more than this far ahead anyway).
const MAX_CREDIT: usize = 1 << 20;

/// Serves one accepted connection, after a TLS handshake if the server
/// has TLS.
async fn open_connection<T: Io>(io: T, peer: PeerAddr, state: Arc<ServerState>, guard: Counted) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = state.tls.clone() {
        let accepted = tokio::select! {
            r = tokio::time::timeout(state.config.handshake_timeout, acceptor.accept(io)) => r,
            () = state.kill.cancelled() => return,
            () = state.shutdown.cancelled() => return,
        };
        match accepted {
            Ok(Ok(stream)) => {
                let identity = crate::tls::identity(stream.get_ref().1.peer_certificates());
                return serve_connection(stream, peer, identity, state, guard).await;
            }
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "closed a connection whose TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "closed a connection that did not finish its TLS handshake in time");
                return;
            }
        }
    }
    serve_connection(io, peer, None, state, guard).await;
}

async fn serve_connection<T: Io>(
    io: T,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
    state: Arc<ServerState>,
    _connection: Counted,
) {
    let config = state.config;
    let greeting = tokio::select! {
        r = tokio::time::timeout(config.handshake_timeout, conn::accept(io, config.max_frame_length, config.max_in_flight)) => r,
        () = state.kill.cancelled() => return,
        () = state.shutdown.cancelled() => return,
    };
    let established = match greeting {
        Ok(Ok(established)) => established,
        Ok(Err(HandshakeError::Closed)) => {
            tracing::debug!(%peer, "connection closed before greeting");
            return;
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, error = ?e, "rejected a connection at the greeting");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "closed a connection that did not greet in time");
            return;
        }
    };
    tracing::debug!(%peer, "connection established");
    let conn::Established {
        mut reader,
        writer,
        peer_max_frame,
        peer_max_in_flight,
    } = established;
    // A client that serves services of its own (it said so in its greeting)
    // can be called back on this connection.
    let reverse = (peer_max_in_flight > 0)
        .then(|| Reverse::new(peer.to_string(), peer_max_frame, peer_max_in_flight));
    let (peer_channel, caller, mut reverse_queue, mut reverse_control) = match reverse {
        Some(Reverse {
            channel,
            caller,
            queue,
            control,
        }) => (Some(channel), Some(caller), Some(queue), Some(control)),
        None => (None, None, None, None),
    };

    let (responses, mut queue) = mpsc::channel::<Bytes>(RESPONSE_QUEUE);
    let (control, mut control_queue) = mpsc::unbounded_channel::<Bytes>();
    let mut dispatch = Dispatch {
        state: &state,
        peer: &peer,
        peer_max_frame,
        writer,
        unflushed: false,
        write_failed: None,
        responses,
        control,
        inboxes: HashMap::new(),
        calls: JoinSet::new(),
        running: HashMap::new(),
        draining: false,
        parked: None,
        max_in_flight: config.max_in_flight,
        own_parity: 0,
        caller,
        peer_channel,
        identity,
    };
    let mut reading = true;
    // Activity (a frame, a call finishing) since the idle timer last looked,
    // and since when the connection has been quiet as far as it knows. A
    // frame only sets the flag: no clock read per frame. The timer looks
    // four times per idle timeout, so a quiet connection closes between
    // one and one and a quarter timeouts after its last activity.
    let mut active = false;
    let mut quiet_since = Instant::now();

    // Made once, not per frame: a waiter on each token, and the idle timer.
    let killed = state.kill.cancelled();
    tokio::pin!(killed);
    let stopping = state.shutdown.cancelled();
    tokio::pin!(stopping);
    let far = Duration::from_secs(86_400 * 365);
    let idle_check = config
        .idle_timeout
        .map_or(far, |idle| (idle / 4).max(Duration::from_millis(1)));
    let idle_timer = tokio::time::sleep_until(
        quiet_since
            .checked_add(idle_check)
            .unwrap_or_else(|| quiet_since + far),
    );
    tokio::pin!(idle_timer);

    let goodbye = loop {
        let watch_idle =
            config.idle_timeout.is_some() && dispatch.calls.is_empty() && !dispatch.draining;
        if let Some(e) = dispatch.write_failed.take() {
            tracing::debug!(%peer, error = %e, "writing to a client failed");
            return;
        }
        tokio::select! {
            biased;
            () = &mut killed => return,
            Some(done) = dispatch.calls.join_next_with_id(), if !dispatch.calls.is_empty() => {
                dispatch.finished(done);
                dispatch.unpark().await;
                active = true;
                if dispatch.calls.is_empty() {
                    if dispatch.draining {
                        break Some(codec::encode_goodbye(code::SHUTTING_DOWN, "the server is shutting down"));
                    }
                    if !reading {
                        break None;
                    }
                }
            }
            // Only handlers reading their caller's stream send here; polled
            // (and so woken) only while there are such streams, or frames.
            Some(frame) = control_queue.recv(), if !dispatch.inboxes.is_empty() || !control_queue.is_empty() => {
                dispatch.send(frame).await;
            }
            Some(frame) = async {
                match &mut reverse_control {
                    Some(control) => control.recv().await,
                    None => std::future::pending().await,
                }
            }, if reverse_control.is_some() => dispatch.send(frame).await,
            Some(out) = recv_or_never(&mut reverse_queue), if reverse_queue.is_some() => {
                dispatch.send(out.frame).await;
                if let Some(written) = out.written {
                    let _ = written.send(());
                }
            }
            Some(answer) = queue.recv() => dispatch.send(answer).await,
            () = &mut stopping, if !dispatch.draining => {
                dispatch.draining = true;
                dispatch.unpark().await;
                if dispatch.calls.is_empty() {
                    break Some(codec::encode_goodbye(code::SHUTTING_DOWN, "the server is shutting down"));
                }
            }
            () = &mut idle_timer, if watch_idle => {
                let now = Instant::now();
                if std::mem::take(&mut active) {
                    quiet_since = now;
                }
                let idle = config.idle_timeout.unwrap_or(far);
                if now.saturating_duration_since(quiet_since) < idle {
                    idle_timer.as_mut().reset(now.checked_add(idle_check).unwrap_or(now + far));
                    continue;
                }
                tracing::debug!(%peer, "closing an idle connection");
                let message = format!("the connection was idle for {:?}", config.idle_timeout.unwrap_or_default());
                break Some(codec::encode_goodbye(code::IDLE_TIMEOUT, &message));
            }
            frame = reader.next(), if reading && dispatch.parked.is_none() => {
                active = true;
                let next = match frame {
                    None => {
                        // The client is done sending; answer what is running.
                        // Its answers to this side's calls will not come.
                        reading = false;
                        if let Some(caller) = &dispatch.caller {
                            caller.close(RpcError::connection_lost("the client closed its connection"));
                        }
                        if dispatch.calls.is_empty() { Next::Stop(None) } else { Next::Continue }
                    }
                    Some(Ok(payload)) => dispatch.frame(payload).await,
                    Some(Err(e)) => {
                        tracing::info!(%peer, error = %e, "closing a connection after a bad frame");
                        let (code, message) = if e.kind() == io::ErrorKind::InvalidData {
                            (code::FRAME_TOO_LARGE, format!("a frame exceeded the server's limit of {} bytes", config.max_frame_length))
                        } else {
                            (code::PROTOCOL, format!("reading failed: {e}"))
                        };
                        Next::Stop(Some(codec::encode_goodbye(code, &message)))
                    }
                };
                if let Next::Stop(goodbye) = next {
                    break goodbye;
                }
            }
            // Last: only when nothing else is ready, so that everything
            // already readable is answered in this one write.
            flushed = SinkExt::<Bytes>::flush(&mut dispatch.writer), if dispatch.unflushed => match flushed {
                Ok(()) => dispatch.unflushed = false,
                Err(e) => dispatch.write_failed = Some(e),
            },
        }
    };

    // Whatever still runs is aborted; answers already queued go out first,
    // then the goodbye.
    let Dispatch {
        calls,
        mut writer,
        write_failed,
        caller,
        ..
    } = dispatch;
    if let Some(caller) = &caller {
        caller.close(RpcError::connection_lost("the client's connection closed"));
    }
    drop(calls);
    if write_failed.is_some() {
        return;
    }
    queue.close();
    let finish = async {
        while let Ok(answer) = queue.try_recv() {
            Out::feed(&mut writer, answer).await?;
        }
        if let Some(goodbye) = goodbye {
            Out::feed(&mut writer, goodbye).await?;
        }
        // Flushes, then shuts the write half down.
        SinkExt::<Bytes>::close(&mut writer).await
    };
    tokio::select! {
        finished = finish => {
            if let Err(e) = finished {
                tracing::debug!(%peer, error = %e, "writing to a client failed");
            }
        }
        () = &mut killed => {}
    }
    tracing::debug!(%peer, "connection closed");
}

impl<O: Out> Dispatch<'_, O> {
    /// Handles one frame from the client.
    async fn frame(&mut self, payload: BytesMut) -> Next {
        self.frame_bytes(payload.freeze()).await
    }

    /// [`frame`](Self::frame), for a frame already frozen.
    async fn frame_bytes(&mut self, payload: Bytes) -> Next {
        let (message, used) = match codec::decode_message(&payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::info!(peer = %self.peer, error = %e, "closing a connection after an undecodable frame");
                let message = format!("a frame did not decode: {e}");
                return Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)));
            }
        };
        if let Some(id) = message.call_id().filter(|id| id % 2 == self.own_parity) {
            // About a call this side made, or a request with the wrong
            // parity (which would be mistaken for one).
            let outcome = match (&self.caller, &message) {
                (_, Message::Request { .. }) => Err(RpcError::Protocol {
                    message: format!(
                        "request id {id} has the parity of the other side's calls (a dialer's ids are odd)"
                    ),
                }),
                (Some(caller), _) => caller.frame(message, &payload, used),
                (None, _) => Err(RpcError::Protocol {
                    message: format!(
                        "unexpected {} (id {id}): this side made no such call",
                        message.kind()
                    ),
                }),
            };
            return match outcome {
                Ok(()) => Next::Continue,
                Err(error) => {
                    tracing::info!(peer = %self.peer, %error, "closing a connection that broke the protocol");
                    Next::Stop(Some(codec::encode_goodbye(
                        code::PROTOCOL,
                        &error.to_string(),
                    )))
                }
            };
        }
        match message {
            Message::Request {
                id,
                service,
                method,
                timeout_micros,
                flags,
            } => {
                let oneway = flags & flags::ONEWAY != 0;
                let stream = flags & flags::STREAM_OUT != 0;
                let sends = flags & flags::STREAM_IN != 0;
                if flags & !flags::KNOWN != 0 || (oneway && (stream || sends)) {
                    if !oneway {
                        let message =
                            format!("request flags {flags:#04x} are not supported by this server");
                        let frame = codec::encode_response(
                            id,
                            Err(RpcError::BadRequest { message }),
                            self.peer_max_frame,
                        );
                        self.send(frame).await;
                    }
                    return Next::Continue;
                }
                if self.draining {
                    if !oneway {
                        let frame = codec::encode_response(
                            id,
                            Err(RpcError::ShuttingDown),
                            self.peer_max_frame,
                        );
                        self.send(frame).await;
                    }
                    return Next::Continue;
                }
                let deadline =
                    // A deadline too far away to represent is no deadline.
                    timeout_micros.and_then(|micros| Instant::now().checked_add(Duration::from_micros(micros)));
                // The metadata, if any, comes first in the body; decoded
                // within the server's limit, so an oversized block fails
                // without being allocated.
                let mut args_at = used;
                let metadata = if flags & flags::METADATA != 0 {
                    let limit = self.state.config.max_metadata;
                    let body = payload.get(used..).unwrap_or_default();
                    match codec::decode_metadata(body.get(..limit).unwrap_or(body)) {
                        Ok((entries, n)) => {
                            args_at += n;
                            Some(Metadata::received(entries))
                        }
                        Err(e) => {
                            let message = format!(
                                "the call's metadata did not decode within the server's limit of {limit} bytes: {e}"
                            );
                            self.answer(id, oneway, Err(RpcError::BadRequest { message }))
                                .await;
                            return Next::Continue;
                        }
                    }
                } else {
                    None
                };
                if let Some(interceptor) = &self.state.interceptor {
                    static EMPTY: std::sync::OnceLock<Metadata> = std::sync::OnceLock::new();
                    let info = CallInfo {
                        service,
                        method,
                        metadata: metadata
                            .as_ref()
                            .unwrap_or_else(|| EMPTY.get_or_init(Metadata::new)),
                        peer: self.peer,
                        identity: self.identity.as_deref(),
                    };
                    let verdict =
                        std::panic::catch_unwind(AssertUnwindSafe(|| interceptor.intercept(&info)))
                            .unwrap_or_else(|panic| Err(panicked(&*panic)));
                    if let Err(error) = verdict {
                        tracing::debug!(peer = %self.peer, service, method, %error, "an interceptor refused a call");
                        self.answer(id, oneway, Err(error)).await;
                        return Next::Continue;
                    }
                }
                let call = start_call(self.state, service, method, payload.slice(args_at..));
                let inbox = sends.then(|| {
                    let (events, receiver) = mpsc::unbounded_channel();
                    let credit = Arc::new(AtomicU32::new(STREAM_WINDOW));
                    self.inboxes.insert(
                        id,
                        Inbox {
                            events,
                            credit: Arc::clone(&credit),
                        },
                    );
                    InboxParts {
                        id,
                        events: receiver,
                        credit,
                        control: self.control.clone(),
                    }
                });
                let request = Parked {
                    id,
                    deadline,
                    oneway,
                    stream,
                    inbox,
                    metadata,
                    call,
                };
                if self.calls.len() < self.max_in_flight {
                    self.spawn(request).await;
                } else {
                    self.parked = Some(request);
                }
                Next::Continue
            }
            Message::Cancel { id } => {
                self.inboxes.remove(&id);
                if let Some(running) = self.running.remove(&id) {
                    tracing::debug!(peer = %self.peer, id, "call cancelled by the client");
                    running.task.abort();
                }
                Next::Continue
            }
            Message::Credit { id, items } => {
                // Credit for a call that already ended is no news.
                if let Some(credit) = self.running.get(&id).and_then(|r| r.credit.as_ref()) {
                    let room = MAX_CREDIT.saturating_sub(credit.available_permits());
                    credit.add_permits(room.min(items as usize));
                }
                Next::Continue
            }
            Message::Item { id } => {
                // Items for a call that has ended are dropped: the caller
                // learns of the end from its response.
                let Some(inbox) = self.inboxes.get(&id) else {
                    return Next::Continue;
                };
                if inbox.credit.load(Ordering::Acquire) == 0 {
                    tracing::info!(peer = %self.peer, id, "closing a connection that sent stream items beyond its credit");
                    let message = format!("call {id}: a stream item beyond the credit granted");
                    return Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)));
                }
                inbox.credit.fetch_sub(1, Ordering::AcqRel);
                if inbox
                    .events
                    .send(InboxEvent::Item(payload.slice(used..)))
                    .is_err()
                {
                    // The handler dropped the stream (and told the caller).
                    self.inboxes.remove(&id);
                }
                Next::Continue
            }
            Message::End { id, status } => {
                if let Some(inbox) = self.inboxes.remove(&id) {
                    let end = match status {
                        crate::frame::Status::Ok => Ok(()),
                        crate::frame::Status::Error { code, message } => {
                            Err(codec::error_from_wire(code, message, "", ""))
                        }
                    };
                    let _ = inbox.events.send(InboxEvent::End(end));
                }
                Next::Continue
            }
            Message::Ping { nonce } => {
                // Through the bounded queue: a client that pings without
                // reading the pongs is pushed back like any other.
                self.send(codec::encode_control(&Message::Pong { nonce }))
                    .await;
                Next::Continue
            }
            Message::Pong { .. } => Next::Continue,
            Message::Goodbye { code, message } => {
                tracing::debug!(peer = %self.peer, code, message, "the client said goodbye");
                Next::Stop(None)
            }
            Message::Response { id, .. } => {
                tracing::info!(peer = %self.peer, id, "closing a connection that sent a response to a call never made");
                let message = format!("unexpected response (id {id}): this server made no calls");
                Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)))
            }
        }
    }

    /// Runs one call as its own task: within its deadline, with its
    /// context, catching panics; answers unless it is one-way.
    /// Starts the parked request if a slot is free (or refuses it, when
    /// shutting down).
    async fn unpark(&mut self) {
        if self.draining {
            if let Some(parked) = self.parked.take() {
                if !parked.oneway {
                    let frame = codec::encode_response(
                        parked.id,
                        Err(RpcError::ShuttingDown),
                        self.peer_max_frame,
                    );
                    self.send(frame).await;
                }
            }
        } else if self.calls.len() < self.max_in_flight {
            if let Some(parked) = self.parked.take() {
                self.spawn(parked).await;
            }
        }
    }

    async fn spawn(&mut self, request: Parked) {
        let Parked {
            id,
            deadline,
            oneway,
            stream,
            inbox,
            metadata,
            call,
        } = request;
        let mut future = match call {
            Ok(future) => future,
            Err(error) => {
                self.inboxes.remove(&id);
                return self.answer(id, oneway, Err(error)).await;
            }
        };
        let context = CallContext::new(id, deadline, self.peer.clone())
            .with_inbox(inbox)
            .with_channel(self.peer_channel.clone())
            .with_identity(self.identity.clone())
            .with_metadata(metadata);
        // Most handlers finish without waiting: run them once right here, on
        // the connection's task, and skip the cost of a task of their own. A
        // handler that waits (for I/O, a timer, a lock) moves to its own task
        // at its first wait, so it never holds up the calls behind it.
        let first = context.clone().sync_scope(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| (&mut future).now_or_never()))
        });
        let body = match first {
            Ok(Some(result)) => match shaped(result, stream) {
                // A stream is driven by a task of its own.
                Ok(Body(BodyRepr::Stream(items))) => Some(items),
                result => {
                    self.inboxes.remove(&id);
                    return self.answer(id, oneway, result).await;
                }
            },
            Err(panic) => {
                self.inboxes.remove(&id);
                return self.answer(id, oneway, Err(panicked(&*panic))).await;
            }
            Ok(None) => None,
        };
        let credit = stream.then(|| Arc::new(Semaphore::new(STREAM_WINDOW as usize)));
        let in_flight = Counted::new(&self.state.in_flight);
        let responses = self.responses.clone();
        let peer_max_frame = self.peer_max_frame;
        let stream_credit = credit.clone();
        let task = self.calls.spawn(async move {
            let _in_flight = in_flight;
            let work = async {
                let items = match body {
                    Some(items) => items,
                    None => match shaped(future.await, stream)? {
                        Body(BodyRepr::Stream(items)) => items,
                        body => return Ok(body),
                    },
                };
                let credit = stream_credit.ok_or_else(|| RpcError::Protocol {
                    message: "a stream without credit".to_owned(),
                })?;
                drive_stream(id, items, &credit, &responses, peer_max_frame).await
            };
            let run = context.scope(AssertUnwindSafe(work).catch_unwind());
            let outcome = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, run).await.ok(),
                None => Some(run.await),
            };
            let Some(outcome) = outcome else {
                // The caller has given up: stop, and send nothing.
                tracing::debug!(id, "deadline passed; the handler was stopped");
                return id;
            };
            let result = outcome.unwrap_or_else(|panic| Err(panicked(&*panic)));
            if !oneway {
                let frame = codec::encode_response(id, result, peer_max_frame);
                // Fails only when the connection is gone.
                let _ = responses.send(frame).await;
            } else if let Err(error) = result {
                tracing::info!(id, %error, "a one-way call failed");
            }
            id
        });
        if !oneway {
            self.running.insert(id, Running { task, credit });
        }
    }

    /// Sends the answer to a call that finished on the connection's task.
    async fn answer(&mut self, id: u64, oneway: bool, result: Result<Body, RpcError>) {
        if oneway {
            if let Err(error) = result {
                tracing::info!(id, %error, "a one-way call failed");
            }
            return;
        }
        let frame = codec::encode_response(id, result, self.peer_max_frame);
        self.send(frame).await;
    }

    /// Adds a frame to the write buffer. When the buffer is full and the
    /// socket takes no more (the client is not reading its answers) this
    /// waits, and the connection is not read meanwhile: that is the
    /// backpressure that keeps a client which sends without reading from
    /// growing the server's memory.
    async fn send(&mut self, frame: Bytes) {
        if self.write_failed.is_some() {
            return;
        }
        let feed = Out::feed(&mut self.writer, frame);
        tokio::pin!(feed);
        // Nearly always there is room in the buffer; only a write that has
        // to wait for the peer to read is timed.
        let fed = match futures::FutureExt::now_or_never(&mut feed) {
            Some(fed) => fed,
            None => {
                let limit = self.state.config.write_timeout;
                tokio::select! {
                    fed = &mut feed => fed,
                    () = tokio::time::sleep(limit) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the peer read nothing for {limit:?} while answers waited"),
                    )),
                    () = self.state.kill.cancelled() => Err(io::Error::other("the server was stopped")),
                }
            }
        };
        match fed {
            Ok(()) => self.unflushed = true,
            Err(e) => self.write_failed = Some(e),
        }
    }

    /// Forgets a finished call.
    fn finished(&mut self, done: Result<(tokio::task::Id, u64), tokio::task::JoinError>) {
        match done {
            Ok((task, id)) => {
                if self
                    .running
                    .get(&id)
                    .is_some_and(|running| running.task.id() == task)
                {
                    self.running.remove(&id);
                    self.inboxes.remove(&id);
                }
            }
            Err(e) => {
                let task = e.id();
                let inboxes = &mut self.inboxes;
                self.running.retain(|id, running| {
                    let keep = running.task.id() != task;
                    if !keep {
                        inboxes.remove(id);
                    }
                    keep
                });
            }
        }
    }
}

/// Checks that a handler answers the way the call asked: a stream for a
/// streaming call, one value otherwise.
fn shaped(result: Result<Body, RpcError>, stream: bool) -> Result<Body, RpcError> {
    match result {
        Ok(body) if body.is_stream() && !stream => Err(RpcError::BadRequest {
            message: "the method answers with a stream, but the call asked for one value \
                      (do both sides use the same trait?)"
                .to_owned(),
        }),
        Ok(body) if !body.is_stream() && stream => Err(RpcError::BadRequest {
            message: "the method answers with one value, but the call asked for a stream \
                      (do both sides use the same trait?)"
                .to_owned(),
        }),
        result => result,
    }
}

/// Sends the items of an answer stream as the caller's credit allows, and
/// returns how the call ends: an empty body after the last item, or the
/// error that ended the stream. The producer is polled only when there is
/// credit for what it yields, so it never runs ahead of the window.
async fn drive_stream(
    id: u64,
    mut items: BodyStream,
    credit: &Semaphore,
    responses: &mpsc::Sender<Bytes>,
    limit: usize,
) -> Result<Body, RpcError> {
    loop {
        match credit.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(RpcError::connection_lost("the stream's credit was closed")),
        }
        match items.next().await {
            Some(Ok(item)) => {
                let frame = codec::encode_item(id, item, limit)?;
                if responses.send(frame).await.is_err() {
                    return Err(RpcError::connection_lost("the connection closed"));
                }
            }
            Some(Err(error)) => return Err(error),
            None => return Ok(Body::from(Bytes::new())),
        }
    }
}

impl ServerState {
    /// What a client that serves services needs of a server: the services,
    /// the window it announces, and a token that stops its calls.
    pub(crate) fn for_channel(
        services: HashMap<String, Arc<dyn Service>>,
        max_in_flight: usize,
        kill: CancellationToken,
    ) -> Arc<Self> {
        let config = Config {
            max_in_flight,
            ..ServerBuilder::default().config
        };
        Arc::new(ServerState {
            services,
            interceptor: None,
            #[cfg(feature = "tls")]
            tls: None,
            config,
            shutdown: CancellationToken::new(),
            kill,
            tracker: TaskTracker::new(),
            connections: Arc::new(AtomicUsize::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            busy_replies: Arc::new(Semaphore::new(1)),
        })
    }
}

impl<'a> Dispatch<'a, mpsc::Sender<conn::Outgoing>> {
    /// The calls a server makes to a client that serves, dispatched by the
    /// client's reader: answers go to the client's writer task.
    pub(crate) fn for_channel(
        state: &'a Arc<ServerState>,
        peer: &'a PeerAddr,
        peer_max_frame: usize,
        writer: mpsc::Sender<conn::Outgoing>,
        responses: mpsc::Sender<Bytes>,
        control: mpsc::UnboundedSender<Bytes>,
    ) -> Self {
        Dispatch {
            state,
            peer,
            peer_max_frame,
            writer,
            unflushed: false,
            write_failed: None,
            responses,
            control,
            inboxes: HashMap::new(),
            calls: JoinSet::new(),
            running: HashMap::new(),
            draining: false,
            parked: None,
            max_in_flight: state.config.max_in_flight,
            own_parity: 1,
            caller: None,
            peer_channel: None,
            identity: None,
        }
    }

    /// Handles a frame about a call the server made; `Err` with a goodbye
    /// when the connection must close.
    pub(crate) async fn peer_frame(&mut self, payload: Bytes) -> Result<(), Option<Bytes>> {
        match self.frame_bytes(payload).await {
            Next::Continue => Ok(()),
            Next::Stop(goodbye) => Err(goodbye),
        }
    }

    /// Waits for one of the calls to finish, and forgets it.
    pub(crate) async fn reap(&mut self) {
        if let Some(done) = self.calls.join_next_with_id().await {
            self.finished(done);
            self.unpark().await;
        }
    }

    /// Whether a call is running.
    pub(crate) fn busy(&self) -> bool {
        !self.calls.is_empty()
    }

    /// Whether a request waits for a slot (then the connection is not read).
    pub(crate) fn parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Sends the answer of a call that ran as its own task.
    pub(crate) async fn answer_from_task(&mut self, frame: Bytes) -> Result<(), io::Error> {
        self.send(frame).await;
        match self.write_failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The next frame from a queue that may not exist.
async fn recv_or_never<T>(queue: &mut Option<mpsc::Receiver<T>>) -> Option<T>
where
    T: Send,
{
    match queue {
        Some(queue) => queue.recv().await,
        None => std::future::pending().await,
    }
}

fn start_call(
    state: &ServerState,
    service: &str,
    method: &str,
    args: Bytes,
) -> Result<ServiceFuture, RpcError> {
    let Some(target) = state.services.get(service) else {
        return Err(RpcError::UnknownService {
            service: service.to_owned(),
        });
    };
    // `call` should only pick a method, but a hand-written one might panic.
    std::panic::catch_unwind(AssertUnwindSafe(|| target.call(method, args)))
        .map_err(|panic| panicked(&*panic))
}

fn panicked(panic: &(dyn Any + Send)) -> RpcError {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    };
    RpcError::Panicked { message }
}
