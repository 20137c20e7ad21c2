//! The client side: a [`Channel`] is one multiplexed connection to a server.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::ReadHalf;
use tokio::net::ToSocketAddrs;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::codec;
use crate::conn::{self, HandshakeError, DEFAULT_MAX_FRAME_LENGTH};
use crate::frame::{code, Message, Status, PROTOCOL_VERSION};
use crate::transport::Io;
use crate::RpcError;

/// Default time allowed to dial and greet a server.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of encoded calls that may wait for the writer.
const DEFAULT_WRITE_QUEUE: usize = 1024;

/// One connection to a server, shared by every client built on it.
///
/// A `Channel` is cheap to clone (an `Arc`); clones share the connection, and
/// any number of tasks may call through it at once: each call gets its own
/// request id and responses are matched to calls in whatever order they
/// arrive. One channel can carry calls to several services:
///
/// ```no_run
/// # use rpc_runtime::Channel;
/// # async fn f() -> Result<(), rpc_runtime::RpcError> {
/// let channel = Channel::connect("127.0.0.1:7000").await?;
/// // let calc = CalculatorClient::new(channel.clone());
/// // let store = KvClient::new(channel);
/// # Ok(()) }
/// ```
///
/// The connection closes when the last clone is dropped. If it breaks, every
/// pending call fails at once with [`RpcError::ConnectionLost`], and so does
/// every later call: a channel does not reconnect by itself.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    queue: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    peer_max_frame: usize,
    peer: String,
    /// Stops the reader and the writer when the last `Channel` goes away.
    _stop: DropGuard,
}

/// The part of the connection the reader task shares with callers.
struct Shared {
    state: Mutex<State>,
}

struct State {
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    /// Set once, when the connection ends; later calls fail with it.
    closed: Option<RpcError>,
}

/// What the reader hands a waiting call.
enum Reply {
    Ok(Bytes),
    Remote { code: u32, message: String },
    Failed(RpcError),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, id: u64) -> Result<oneshot::Receiver<Reply>, RpcError> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let (tx, rx) = oneshot::channel();
        state.pending.insert(id, tx);
        Ok(rx)
    }

    fn complete(&self, id: u64, reply: Reply) {
        let waiter = self.lock().pending.remove(&id);
        match waiter {
            // The caller may have given up; that is fine.
            Some(waiter) => drop(waiter.send(reply)),
            None => tracing::debug!(id, "response for a call that is no longer waiting"),
        }
    }

    fn forget(&self, id: u64) {
        self.lock().pending.remove(&id);
    }

    /// Ends the connection: every pending call and every later call fails
    /// with `reason`.
    fn close(&self, reason: RpcError) {
        let pending = {
            let mut state = self.lock();
            if state.closed.is_none() {
                state.closed = Some(reason.clone());
            }
            std::mem::take(&mut state.pending)
        };
        for (_, waiter) in pending {
            drop(waiter.send(Reply::Failed(reason.clone())));
        }
    }

    fn closed_reason(&self) -> RpcError {
        self.lock()
            .closed
            .clone()
            .unwrap_or_else(|| RpcError::connection_lost("the connection is closed"))
    }
}

/// Removes a call's slot if its future is dropped before the answer came.
struct PendingSlot<'a> {
    shared: &'a Shared,
    id: u64,
    armed: bool,
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.forget(self.id);
        }
    }
}

impl Channel {
    /// Connects over TCP with the default settings; see [`Channel::builder`].
    ///
    /// # Errors
    /// [`RpcError::Connect`] when nothing listens there,
    /// [`RpcError::NotAServer`] when the peer is not a server of this protocol,
    /// [`RpcError::VersionMismatch`], or [`RpcError::ConnectTimeout`].
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
        Channel::builder().connect(addr).await
    }

    /// Connects over a Unix domain socket with the default settings.
    ///
    /// # Errors
    /// As [`Channel::connect`].
    #[cfg(unix)]
    pub async fn connect_unix(path: impl AsRef<std::path::Path>) -> Result<Channel, RpcError> {
        Channel::builder().connect_unix(path).await
    }

    /// Settings for a new channel.
    #[must_use]
    pub fn builder() -> ChannelBuilder {
        ChannelBuilder::default()
    }

    /// The address (or label) of the server.
    #[must_use]
    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// Whether the connection has ended; every call on a closed channel fails.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.shared.lock().closed.is_some()
    }

    /// Calls `service.method` with `args` and decodes the answer as `R`.
    ///
    /// This is what generated clients call; use it directly to call a service
    /// without its trait. `args` is encoded the way generated clients encode
    /// a method's arguments: as a tuple, `&(a, b)` for two arguments, `&(a,)`
    /// for one, `&()` for none. The arguments are encoded before this returns,
    /// so the future borrows only `self` and the two names.
    ///
    /// # Errors
    /// Any [`RpcError`]: the call failed on the way, on the server, or the
    /// connection did.
    pub fn call<'a, A, R>(
        &'a self,
        service: &'a str,
        method: &'a str,
        args: &A,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + 'a,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode_request(id, service, method, args, self.inner.peer_max_frame);
        async move {
            let frame = frame?;
            match self.round_trip(id, frame).await? {
                Reply::Ok(body) => codec::decode_value::<R>(&body)
                    .map_err(|message| RpcError::BadResponse { message }),
                Reply::Remote { code, message } => {
                    Err(codec::error_from_wire(code, &message, service, method))
                }
                Reply::Failed(error) => Err(error),
            }
        }
    }

    async fn round_trip(&self, id: u64, frame: Bytes) -> Result<Reply, RpcError> {
        let shared = &*self.inner.shared;
        let reply = shared.register(id)?;
        let mut slot = PendingSlot {
            shared,
            id,
            armed: true,
        };
        if self.inner.queue.send(frame).await.is_err() {
            return Err(shared.closed_reason());
        }
        // The reader always answers or drops the sender (closing fails every
        // pending call), so this cannot wait forever on a dead connection.
        let reply = reply.await.map_err(|_| shared.closed_reason())?;
        slot.armed = false;
        Ok(reply)
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.shared.lock();
        f.debug_struct("Channel")
            .field("peer", &self.inner.peer)
            .field("pending", &state.pending.len())
            .field("closed", &state.closed.is_some())
            .finish()
    }
}

/// Settings for a [`Channel`].
///
/// ```no_run
/// # async fn f() -> Result<(), rpc_runtime::RpcError> {
/// use std::time::Duration;
/// let channel = rpc_runtime::Channel::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .max_frame_length(64 * 1024 * 1024)
///     .connect("127.0.0.1:7000")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelBuilder {
    max_frame_length: usize,
    connect_timeout: Duration,
    write_queue: usize,
}

impl Default for ChannelBuilder {
    fn default() -> Self {
        ChannelBuilder {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_queue: DEFAULT_WRITE_QUEUE,
        }
    }
}

impl ChannelBuilder {
    /// The largest response frame this client accepts, in bytes (default
    /// 16 MiB). The server learns it in the greeting and fails a call whose
    /// answer would be larger with [`RpcError::ResponseTooLarge`] instead of
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

    /// Connects over TCP (with `TCP_NODELAY`), trying each resolved address.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect(self, addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
        let timeout = self.connect_timeout;
        let mut label = String::from("(unresolved address)");
        let attempt = async {
            let addrs = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| connect_error(&label, e))?;
            let mut last =
                io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
            for addr in addrs {
                label = addr.to_string();
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream
                            .set_nodelay(true)
                            .map_err(|e| connect_error(&label, e))?;
                        return self.handshake(stream, label.clone()).await;
                    }
                    Err(e) => last = e,
                }
            }
            Err(connect_error(&label, last))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::ConnectTimeout {
                addr: label,
                timeout,
            }),
        }
    }

    /// Connects over a Unix domain socket.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    #[cfg(unix)]
    pub async fn connect_unix(
        self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Channel, RpcError> {
        let label = path.as_ref().display().to_string();
        let timeout = self.connect_timeout;
        let attempt = async {
            let stream = tokio::net::UnixStream::connect(path.as_ref())
                .await
                .map_err(|e| connect_error(&label, e))?;
            self.handshake(stream, label.clone()).await
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::ConnectTimeout {
                addr: label,
                timeout,
            }),
        }
    }

    /// Runs the protocol over a stream you opened yourself (an in-memory
    /// pipe, a TLS stream, a socket from elsewhere). `label` names the peer in
    /// errors.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_io<T: Io>(
        self,
        io: T,
        label: impl Into<String>,
    ) -> Result<Channel, RpcError> {
        let label = label.into();
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, self.handshake(io, label.clone())).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::ConnectTimeout {
                addr: label,
                timeout,
            }),
        }
    }

    async fn handshake<T: Io>(&self, io: T, peer: String) -> Result<Channel, RpcError> {
        let established = conn::dial(io, self.max_frame_length)
            .await
            .map_err(|e| match e {
                HandshakeError::Io(e) => RpcError::NotAServer {
                    addr: peer.clone(),
                    reason: format!("the greeting failed: {e}"),
                },
                HandshakeError::Closed => RpcError::NotAServer {
                    addr: peer.clone(),
                    reason: "it closed the connection without greeting".to_owned(),
                },
                HandshakeError::NotProtocol(reason) => RpcError::NotAServer {
                    addr: peer.clone(),
                    reason,
                },
                HandshakeError::Version { remote } => RpcError::VersionMismatch {
                    local: PROTOCOL_VERSION,
                    remote,
                },
            })?;
        Ok(self.start(established, peer))
    }

    fn start<T: Io>(&self, established: conn::Established<T>, peer: String) -> Channel {
        let conn::Established {
            reader,
            writer,
            peer_max_frame,
        } = established;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                closed: None,
            }),
        });
        let stop = CancellationToken::new();
        let (queue, rx) = mpsc::channel(self.write_queue);

        let writer_shared = Arc::clone(&shared);
        let writer_stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = conn::write_loop(writer, rx, writer_stop.clone()).await {
                writer_shared.close(RpcError::connection_lost(format!(
                    "writing to the server failed: {e}"
                )));
                writer_stop.cancel();
            }
        });
        tokio::spawn(read_loop(reader, Arc::clone(&shared), stop.clone()));

        Channel {
            inner: Arc::new(Inner {
                queue,
                shared,
                next_id: AtomicU64::new(1),
                peer_max_frame,
                peer,
                _stop: stop.drop_guard(),
            }),
        }
    }
}

fn connect_error(addr: &str, source: io::Error) -> RpcError {
    RpcError::Connect {
        addr: addr.to_owned(),
        source: Arc::new(source),
    }
}

/// Matches responses to pending calls until the connection ends, then fails
/// whatever is still pending.
async fn read_loop<T: Io>(
    mut reader: FramedRead<ReadHalf<T>, LengthDelimitedCodec>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let reason = loop {
        let frame = tokio::select! {
            frame = reader.next() => frame,
            () = stop.cancelled() => break RpcError::connection_lost("the channel was closed"),
        };
        let payload = match frame {
            None => break RpcError::connection_lost("the server closed the connection"),
            Some(Err(e)) => {
                break RpcError::connection_lost(format!("reading from the server failed: {e}"))
            }
            Some(Ok(payload)) => payload.freeze(),
        };
        match codec::decode_message(&payload) {
            Ok((Message::Response { id, status }, used)) => {
                let reply = match status {
                    Status::Ok => Reply::Ok(payload.slice(used..)),
                    Status::Error { code, message } => Reply::Remote {
                        code,
                        message: message.to_owned(),
                    },
                };
                shared.complete(id, reply);
            }
            Ok((Message::Goodbye { code, message }, _)) => {
                break match code {
                    code::SHUTTING_DOWN => RpcError::ShuttingDown,
                    _ => RpcError::connection_lost(format!(
                        "the server closed the connection: {message}"
                    )),
                };
            }
            Ok((Message::Request { .. }, _)) => {
                break RpcError::Protocol {
                    message: "the server sent a request, but this channel serves no services"
                        .to_owned(),
                };
            }
            Err(e) => {
                break RpcError::Protocol {
                    message: format!("a frame from the server did not decode: {e}"),
                };
            }
        }
    };
    tracing::debug!(%reason, "channel closed");
    shared.close(reason);
    stop.cancel();
}
