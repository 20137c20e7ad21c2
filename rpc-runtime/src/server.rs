//! The server side: an accept loop, and one dispatch loop per connection.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use tokio::net::ToSocketAddrs;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec;
use crate::conn::{self, HandshakeError, DEFAULT_MAX_FRAME_LENGTH};
use crate::frame::{code, Message};
use crate::service::{Service, ServiceFuture};
use crate::transport::{Io, Listener, PeerAddr};
use crate::RpcError;

/// Default time a new connection has to send its greeting.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of calls one connection may have running at once.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// Encoded responses that may wait for a connection's writer.
const RESPONSE_QUEUE: usize = 256;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
    duplicate: Option<String>,
    config: Config,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    max_frame_length: usize,
    handshake_timeout: Duration,
    max_in_flight: usize,
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
            duplicate: None,
            config: Config {
                max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            },
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
            config: self.config,
            shutdown: CancellationToken::new(),
            kill: CancellationToken::new(),
            tracker: TaskTracker::new(),
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

struct ServerState {
    services: HashMap<String, Arc<dyn Service>>,
    config: Config,
    /// Graceful: stop accepting and reading, finish running calls.
    shutdown: CancellationToken,
    /// Immediate: drop every connection and running call.
    kill: CancellationToken,
    /// The accept loop and every connection.
    tracker: TaskTracker,
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
    /// connections are accepted, open connections stop reading requests,
    /// calls already running finish and their answers are sent, then every
    /// connection says goodbye (calls the client sent that were not read fail
    /// there with [`RpcError::ShuttingDown`]) and closes.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.state.tracker.close();
        self.state.tracker.wait().await;
    }

    /// Stops at once: closes the listener and every connection and drops
    /// every running call. Clients see [`RpcError::ConnectionLost`].
    pub async fn abort(self) {
        self.state.kill.cancel();
        self.state.tracker.close();
        self.state.tracker.wait().await;
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
                state
                    .tracker
                    .spawn(serve_connection(io, peer, Arc::clone(&state)));
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

/// What the dispatch loop does after a frame.
enum Next {
    Continue,
    /// Stop reading; send this goodbye (if any) once running calls finished.
    Stop(Option<Bytes>),
}

async fn serve_connection<T: Io>(io: T, peer: PeerAddr, state: Arc<ServerState>) {
    let config = state.config;
    let greeting = tokio::select! {
        r = tokio::time::timeout(config.handshake_timeout, conn::accept(io, config.max_frame_length)) => r,
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
    } = established;

    let (responses, queue) = mpsc::channel::<Bytes>(RESPONSE_QUEUE);
    let writer_stop = CancellationToken::new();
    let mut writer_task = tokio::spawn(conn::write_loop(writer, queue, writer_stop.clone()));
    // Dropping the set aborts every call still running on this connection.
    let mut calls = JoinSet::new();

    let goodbye = loop {
        tokio::select! {
            biased;
            () = state.kill.cancelled() => {
                writer_stop.cancel();
                return;
            }
            result = &mut writer_task => {
                log_writer_end(&peer, result);
                return;
            }
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
            () = state.shutdown.cancelled() => {
                break Some(codec::encode_goodbye(code::SHUTTING_DOWN, "the server is shutting down"));
            }
            frame = reader.next(), if calls.len() < config.max_in_flight => {
                let next = match frame {
                    None => Next::Stop(None),
                    Some(Ok(payload)) => dispatch(payload, &state, &mut calls, &responses, peer_max_frame),
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
        }
    };

    // Let the calls already running finish and send their answers.
    while !calls.is_empty() {
        tokio::select! {
            biased;
            () = state.kill.cancelled() => {
                writer_stop.cancel();
                return;
            }
            result = &mut writer_task => {
                log_writer_end(&peer, result);
                return;
            }
            _ = calls.join_next() => {}
        }
    }
    if let Some(goodbye) = goodbye {
        // Fails only if the writer is gone, and then there is nobody to tell.
        let _ = responses.send(goodbye).await;
    }
    drop(responses);
    tokio::select! {
        result = &mut writer_task => log_writer_end(&peer, result),
        () = state.kill.cancelled() => writer_stop.cancel(),
    }
    tracing::debug!(%peer, "connection closed");
}

fn log_writer_end(peer: &PeerAddr, result: Result<io::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "writing to a client failed"),
        Err(e) => tracing::error!(%peer, error = %e, "a connection writer failed"),
    }
}

/// Handles one frame from a client: starts a call, or decides to stop.
fn dispatch(
    payload: BytesMut,
    state: &ServerState,
    calls: &mut JoinSet<()>,
    responses: &mpsc::Sender<Bytes>,
    peer_max_frame: usize,
) -> Next {
    let payload = payload.freeze();
    let (message, used) = match codec::decode_message(&payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            tracing::info!(error = %e, "closing a connection after an undecodable frame");
            let message = format!("a frame did not decode: {e}");
            return Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)));
        }
    };
    match message {
        Message::Request {
            id,
            service,
            method,
        } => {
            let call = start_call(state, service, method, payload.slice(used..));
            let responses = responses.clone();
            calls.spawn(async move {
                let result = match call {
                    Ok(future) => AssertUnwindSafe(future)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|panic| Err(panicked(&*panic))),
                    Err(error) => Err(error),
                };
                let frame = codec::encode_response(id, &result, peer_max_frame);
                // Fails only when the connection is gone.
                let _ = responses.send(frame).await;
            });
            Next::Continue
        }
        Message::Goodbye { code, message } => {
            tracing::debug!(code, message, "the client said goodbye");
            Next::Stop(None)
        }
        Message::Response { id, .. } => {
            tracing::info!(
                id,
                "closing a connection that sent a response to a call never made"
            );
            let message = format!("unexpected response (id {id}): this server made no calls");
            Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)))
        }
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
