//! The client side: a [`Channel`] is one multiplexed connection to a server,
//! re-established on demand when it breaks.

mod pending;
mod reader;
mod stream;

use pending::*;
pub(crate) use pending::{bench_pending, CallerHalf, Reply, StreamEvent};
use reader::*;
pub(crate) use stream::RemoteStream;
use stream::*;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::ToSocketAddrs;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::codec::{self, RequestHeader};
use crate::conn::{self, HandshakeError, Outgoing, DEFAULT_MAX_FRAME_LENGTH};
use crate::context;
use crate::frame::{code, flags, PROTOCOL_VERSION};
use crate::metadata::{Metadata, MetadataValue};
use crate::server::ServerState;
use crate::service::Service;
use crate::streaming::Streaming;
use crate::transport::{memory::MemoryAddr, Io, PeerAddr};
use crate::RpcError;

/// Default time allowed to dial and greet a server.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of encoded calls that may wait for the writer.
const DEFAULT_WRITE_QUEUE: usize = 1024;
/// Default deadline of a call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
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
/// Default number of times an idempotent call is sent again.
const DEFAULT_IDEMPOTENT_RETRIES: u32 = 2;

/// Per-call settings; generated clients keep one (see their `with_timeout`).
///
/// ```
/// use std::time::Duration;
/// let options = rpc_runtime::CallOptions::new().timeout(Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    idempotent: bool,
    metadata: Metadata,
}

impl CallOptions {
    /// The channel's defaults.
    #[must_use]
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// The call's deadline, measured from when the call starts; replaces the
    /// channel's default. A call made inside a handler also respects the
    /// handler's own deadline, whichever is sooner.
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().timeout(std::time::Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks the call safe to run more than once, so it is sent again (a
    /// bounded number of times, within its deadline) when the connection
    /// breaks before the answer arrives. Methods marked
    /// `#[rpc(idempotent)]` set this.
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().idempotent(true);
    /// ```
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Adds a metadata entry, sent with every call made with these options
    /// and readable in the handler through
    /// [`CallContext::metadata`](crate::CallContext::metadata).
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().metadata("authorization", "Bearer s3cr3t");
    /// ```
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata = self.metadata.with(key, value);
        self
    }

    /// The metadata calls made with these options carry.
    #[must_use]
    pub fn get_metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The timeout set with [`timeout`](Self::timeout), if any.
    #[must_use]
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// A connection to a server, shared by every client built on it; it
/// reconnects by itself when the connection breaks.
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
/// **Failures.** Every call has a deadline (default 30 s, see
/// [`ChannelBuilder::timeout`]) and fails with [`RpcError::DeadlineExceeded`]
/// when it passes; dropping a call's future cancels it on the server. When the
/// connection breaks, every pending call fails at once with
/// [`RpcError::ConnectionLost`]: it is never sent again by itself, because
/// the server may already have run it (at-most-once). The next call
/// reconnects, with exponential backoff between failed attempts. Only calls
/// marked idempotent are re-sent after a broken connection.
///
/// The connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<ChannelInner>,
}

struct ChannelInner {
    config: ChannelBuilder,
    peer: String,
    /// How to open a new connection; `None` for streams handed in by the user.
    connector: Option<Connector>,
    current: Mutex<Arc<Connection>>,
    /// Held while reconnecting, so one call reconnects and the rest wait.
    reconnecting: tokio::sync::Mutex<Backoff>,
    /// `Backoff::failures`, readable without waiting for the lock.
    reconnect_failures: AtomicU64,
}

type Connector = Box<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<Connection>, RpcError>> + Send>>
        + Send
        + Sync,
>;

/// One transport connection and its two tasks (reader and writer).
struct Connection {
    queue: mpsc::Sender<Outgoing>,
    control: mpsc::UnboundedSender<Bytes>,
    shared: Arc<Shared>,
    /// The next request id: odd numbers counting up from 1 on a dialer's
    /// connection, even from 2 on a listener's (callbacks), so an id says
    /// whose call it is.
    next_id: AtomicU64,
    peer_max_frame: usize,
    /// One permit per call the server said it runs at once: calls beyond
    /// that wait here, so the server never has to stop reading (and always
    /// sees cancels and pings).
    slots: Arc<tokio::sync::Semaphore>,
    /// Stops the reader and the writer when the connection is dropped.
    _stop: DropGuard,
}

/// Reconnect pacing: exponential backoff with jitter after failed attempts.
struct Backoff {
    initial: Duration,
    max: Duration,
    next_delay: Duration,
    /// No attempt before this.
    not_before: Option<Instant>,
    last_error: Option<RpcError>,
    /// Failed attempts so far; lets a waiting call see that the attempt it
    /// waited on failed.
    failures: u64,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next_delay: initial,
            not_before: None,
            last_error: None,
            failures: 0,
        }
    }

    fn succeeded(&mut self) {
        self.next_delay = self.initial;
        self.not_before = None;
        self.last_error = None;
    }

    fn failed(&mut self, error: RpcError) {
        // "Equal jitter": half the delay, plus up to the other half at random,
        // so many clients that lost the same server do not return in step.
        let half = self.next_delay / 2;
        let jitter = half.mul_f64(random_fraction());
        self.not_before = Instant::now().checked_add(half.saturating_add(jitter));
        self.next_delay = self.next_delay.saturating_mul(2).min(self.max);
        self.last_error = Some(error);
        self.failures += 1;
    }
}

/// A number in [0, 1) from the standard library's per-process random keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    #[allow(clippy::cast_precision_loss)]
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}

impl Connection {
    fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl Channel {
    /// Connects over TCP with the default settings; see [`Channel::builder`].
    ///
    /// # Errors
    /// [`RpcError::Connect`] when nothing listens there,
    /// [`RpcError::NotAServer`] when the peer is not a server of this protocol,
    /// [`RpcError::VersionMismatch`], [`RpcError::ServerBusy`], or
    /// [`RpcError::ConnectTimeout`].
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

    /// Whether the current connection has ended. A closed channel that can
    /// reconnect does so on the next call.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.current().is_closed()
    }

    fn current(&self) -> Arc<Connection> {
        Arc::clone(
            &self
                .inner
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Calls `service.method` with `args` and decodes the answer as `R`, with
    /// the channel's default options.
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
        self.call_with(&CallOptions::default(), service, method, args)
    }

    /// [`call`](Self::call) with per-call options.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn call_with<'a, A, R>(
        &'a self,
        options: &CallOptions,
        service: &'a str,
        method: &'a str,
        args: &A,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + 'a,
    {
        let body = codec::encode_args(args, service, method, options.metadata.encoded());
        let (deadline, timeout) = self.deadline(options);
        // `idempotent_retries(u32::MAX)`: retry until the deadline.
        let resends = self.inner.config.idempotent_retries.saturating_add(1);
        let attempts = if options.idempotent { resends } else { 1 };
        // A call the server promised it did not run may be sent again
        // whatever the method.
        let not_run_attempts = resends.max(2);
        async move {
            let mut body = body?;
            let mut attempt = 1;
            loop {
                // The time left, as measured when the deadline was set: good
                // for a first attempt that does not wait on the way.
                let left = (attempt == 1).then_some(timeout);
                let result = self
                    .round_trip(service, method, &mut body, deadline, timeout, left)
                    .await;
                match result {
                    Err(error) | Ok(Reply::Failed(error))
                        if attempt < attempts && error.is_retryable() =>
                    {
                        tracing::debug!(%error, attempt, service, method, "sending an idempotent call again");
                        attempt += 1;
                    }
                    Ok(Reply::NotRun(error)) if attempt < not_run_attempts => {
                        tracing::debug!(%error, attempt, service, method, "sending again a call the server did not run");
                        attempt += 1;
                    }
                    Err(error) => return Err(error),
                    Ok(reply) => return reply.into_result(timeout, service, method),
                }
            }
        }
    }

    /// Sends a one-way call: returns once the request has been written to
    /// the connection; the server runs it and sends no answer, so its
    /// outcome is never known here. Never retried.
    ///
    /// # Errors
    /// When the request cannot be encoded or written (the connection is gone,
    /// or the deadline passed first).
    pub fn call_oneway_with<'a, A>(
        &'a self,
        options: &CallOptions,
        service: &'a str,
        method: &'a str,
        args: &A,
    ) -> impl Future<Output = Result<(), RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
    {
        let body = codec::encode_args(args, service, method, options.metadata.encoded());
        let (deadline, timeout) = self.deadline(options);
        async move {
            let mut body = body?;
            let send = async {
                let connection = self.connection(deadline).await?;
                let header = RequestHeader {
                    id: connection.next_id.fetch_add(2, Ordering::Relaxed),
                    service,
                    method,
                    timeout_micros: micros_until(deadline),
                    flags: flags::ONEWAY,
                };
                let frame = body.frame(&header, connection.peer_max_frame)?;
                let (written, done) = oneshot::channel();
                let outgoing = Outgoing {
                    frame,
                    written: Some(written),
                };
                if connection.queue.send(outgoing).await.is_err() {
                    return Err(connection.shared.closed_reason());
                }
                done.await.map_err(|_| connection.shared.closed_reason())
            };
            tokio::time::timeout_at(deadline, send)
                .await
                .unwrap_or(Err(RpcError::DeadlineExceeded { timeout }))
        }
    }

    /// Starts a call whose answer is a stream (see [`Streaming`]): returns
    /// once the request is queued for writing, without waiting for the
    /// server; the stream yields the items as they arrive, and any failure
    /// of the call (an unknown method, the deadline, a lost connection) as
    /// its last item. Never sent again.
    ///
    /// # Errors
    /// When the request cannot be encoded or sent: no connection, or the
    /// deadline passed while waiting for one or for room in the window.
    pub fn call_streaming_with<'a, A, R>(
        &'a self,
        options: &CallOptions,
        service: &'a str,
        method: &'a str,
        args: &A,
    ) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let body = codec::encode_args(args, service, method, options.metadata.encoded());
        let (deadline, timeout) = self.deadline(options);
        async move {
            let opened = self
                .open(body?, service, method, deadline, timeout, flags::STREAM_OUT)
                .await?;
            let (events, swept) = opened
                .connection
                .shared
                .register_stream(opened.id, deadline, None)?;
            let mut stream = opened.into_stream(events, swept, deadline, timeout, service, method);
            enqueue(&stream.connection, stream.request.take(), deadline, timeout).await?;
            Ok(Streaming::remote(stream))
        }
    }

    /// Starts a call that sends `items` as a stream with its arguments
    /// (a client stream) and waits for its one answer. The items are taken
    /// from `items` as the server's credit allows; the server can stop the
    /// stream early (then `items` is dropped). Never sent again.
    ///
    /// # Errors
    /// As [`call_with`](Self::call_with); an error item of `items` reaches
    /// the server's handler as the last item of its stream.
    pub fn call_with_stream<'a, A, S, R>(
        &'a self,
        options: &CallOptions,
        service: &'a str,
        method: &'a str,
        args: &A,
        items: Streaming<S>,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        S: Serialize + Send + 'static,
        R: DeserializeOwned + 'a,
    {
        let body = codec::encode_args(args, service, method, options.metadata.encoded());
        let (deadline, timeout) = self.deadline(options);
        async move {
            let opened = self
                .open(body?, service, method, deadline, timeout, flags::STREAM_IN)
                .await?;
            let Opened {
                connection,
                slot: _slot,
                id,
                frame,
            } = opened;
            let sending = Sending::new();
            let (reply, swept) =
                connection
                    .shared
                    .register_sending(id, deadline, Some(sending.clone()))?;
            let mut guard = PendingSlot {
                connection: &connection,
                id,
                armed: true,
            };
            enqueue(&connection, frame, deadline, timeout).await?;
            tokio::spawn(send_stream(
                id,
                items,
                sending,
                connection.queue.clone(),
                connection.peer_max_frame,
            ));
            let reply = wait_reply(&connection, reply, swept, deadline).await?;
            guard.armed = false;
            reply.into_result(timeout, service, method)
        }
    }

    /// Starts a call that sends `items` as a stream and answers with a
    /// stream (both ways at once): [`call_with_stream`](Self::call_with_stream)
    /// and [`call_streaming_with`](Self::call_streaming_with) together.
    /// Dropping the returned stream cancels the call, and with it `items`.
    ///
    /// # Errors
    /// As [`call_streaming_with`](Self::call_streaming_with).
    pub fn call_streaming_with_stream<'a, A, S, R>(
        &'a self,
        options: &CallOptions,
        service: &'a str,
        method: &'a str,
        args: &A,
        items: Streaming<S>,
    ) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        S: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let body = codec::encode_args(args, service, method, options.metadata.encoded());
        let (deadline, timeout) = self.deadline(options);
        async move {
            let flags = flags::STREAM_IN | flags::STREAM_OUT;
            let opened = self
                .open(body?, service, method, deadline, timeout, flags)
                .await?;
            let sending = Sending::new();
            let (events, swept) = opened.connection.shared.register_stream(
                opened.id,
                deadline,
                Some(sending.clone()),
            )?;
            let mut stream = opened.into_stream(events, swept, deadline, timeout, service, method);
            enqueue(&stream.connection, stream.request.take(), deadline, timeout).await?;
            tokio::spawn(send_stream(
                stream.id,
                items,
                sending,
                stream.connection.queue.clone(),
                stream.connection.peer_max_frame,
            ));
            Ok(Streaming::remote(stream))
        }
    }

    /// The first steps of a streaming call: a live connection, a place in
    /// the server's window (held for the whole call), an id and the
    /// request frame.
    async fn open(
        &self,
        mut body: codec::RequestBody,
        service: &str,
        method: &str,
        deadline: Instant,
        timeout: Duration,
        flags: u8,
    ) -> Result<Opened, RpcError> {
        let expired = || RpcError::DeadlineExceeded { timeout };
        let current = self.current();
        let connection = if current.is_closed() {
            tokio::time::timeout_at(deadline, self.connection(deadline))
                .await
                .map_err(|_| expired())??
        } else {
            current
        };
        let slots = Arc::clone(&connection.slots);
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(connection.shared.closed_reason())
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                tokio::time::timeout_at(deadline, slots.acquire_owned())
                    .await
                    .map_err(|_| expired())?
                    .map_err(|_| connection.shared.closed_reason())?
            }
        };
        let id = connection.next_id.fetch_add(2, Ordering::Relaxed);
        let header = RequestHeader {
            id,
            service,
            method,
            timeout_micros: micros_until(deadline),
            flags,
        };
        let frame = body.frame(&header, connection.peer_max_frame)?;
        Ok(Opened {
            connection,
            slot,
            id,
            frame,
        })
    }

    /// The deadline of a call starting now, and the timeout it came from.
    fn deadline(&self, options: &CallOptions) -> (Instant, Duration) {
        let now = Instant::now();
        let own = options.timeout.unwrap_or(self.inner.config.timeout);
        let mut deadline = now
            .checked_add(own)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        if let Some(inherited) = context::inherited_deadline() {
            deadline = deadline.min(inherited);
        }
        (deadline, deadline.saturating_duration_since(now))
    }

    /// One attempt: a live connection, a request, its answer, all before
    /// `deadline` (a wait past it ends in [`Reply::Expired`]).
    ///
    /// Each step that can wait is first tried without waiting, and only a
    /// step that must wait sets a timer; the wait for the answer is timed by
    /// the connection's reader (see [`Shared::expire`]). So a call that
    /// finds a live connection and a free slot costs no timer at all.
    async fn round_trip(
        &self,
        service: &str,
        method: &str,
        body: &mut codec::RequestBody,
        deadline: Instant,
        timeout: Duration,
        mut left: Option<Duration>,
    ) -> Result<Reply, RpcError> {
        let current = self.current();
        let connection = if current.is_closed() {
            left = None;
            match tokio::time::timeout_at(deadline, self.connection(deadline)).await {
                Ok(connection) => connection?,
                Err(_) => return Ok(Reply::Expired),
            }
        } else {
            current
        };
        // Waits here while the server's window is full; the time left is
        // measured after that wait.
        let _slot = match connection.slots.try_acquire() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(connection.shared.closed_reason())
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                left = None;
                match tokio::time::timeout_at(deadline, connection.slots.acquire()).await {
                    Ok(slot) => slot.map_err(|_| connection.shared.closed_reason())?,
                    Err(_) => return Ok(Reply::Expired),
                }
            }
        };
        let id = connection.next_id.fetch_add(2, Ordering::Relaxed);
        let header = RequestHeader {
            id,
            service,
            method,
            // Read the clock again only after a wait.
            timeout_micros: match left {
                Some(left) => Some(u64::try_from(left.as_micros()).unwrap_or(u64::MAX)),
                None => micros_until(deadline),
            },
            flags: 0,
        };
        let frame = body.frame(&header, connection.peer_max_frame)?;
        let (reply, swept) = connection.shared.register(id, deadline)?;
        let mut slot = PendingSlot {
            connection: &connection,
            id,
            armed: true,
        };
        enqueue(&connection, frame, deadline, timeout).await?;
        let reply = wait_reply(&connection, reply, swept, deadline).await?;
        slot.armed = false;
        Ok(reply)
    }

    /// The live connection, reconnecting first if the last one ended.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, RpcError> {
        let current = self.current();
        if !current.is_closed() {
            return Ok(current);
        }
        let Some(connector) = &self.inner.connector else {
            return Err(current.shared.closed_reason());
        };
        if !self.inner.config.reconnect {
            return Err(current.shared.closed_reason());
        }
        let failures_seen = self.inner.reconnect_failures.load(Ordering::Acquire);
        let mut backoff = self.inner.reconnecting.lock().await;
        // Another call may have reconnected while this one waited, or tried
        // and failed: then this call fails the same way instead of dialing
        // again at once.
        let current = self.current();
        if !current.is_closed() {
            return Ok(current);
        }
        if backoff.failures != failures_seen {
            if let Some(error) = &backoff.last_error {
                return Err(error.clone());
            }
        }
        if let Some(not_before) = backoff.not_before {
            // The server is known to be unreachable until then: a call that
            // cannot wait that long fails now, with the reason.
            if not_before > deadline {
                if let Some(error) = &backoff.last_error {
                    return Err(error.clone());
                }
            }
            tokio::time::sleep_until(not_before).await;
        }
        match connector().await {
            Ok(connection) => {
                tracing::debug!(peer = %self.inner.peer, "reconnected");
                backoff.succeeded();
                *self
                    .inner
                    .current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&connection);
                Ok(connection)
            }
            Err(error) => {
                tracing::debug!(peer = %self.inner.peer, %error, "reconnecting failed");
                backoff.failed(error.clone());
                self.inner
                    .reconnect_failures
                    .store(backoff.failures, Ordering::Release);
                Err(error)
            }
        }
    }
}

fn micros_until(deadline: Instant) -> Option<u64> {
    let left = deadline.saturating_duration_since(Instant::now());
    Some(u64::try_from(left.as_micros()).unwrap_or(u64::MAX))
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        let state = current.shared.lock();
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
///     .timeout(Duration::from_secs(5))
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
    timeout: Duration,
    keepalive_interval: Option<Duration>,
    keepalive_timeout: Duration,
    reconnect: bool,
    backoff_initial: Duration,
    backoff_max: Duration,
    idempotent_retries: u32,
    /// Services this side offers the server on the connection.
    services: Services,
    /// Calls of those services run at once per connection.
    serve_in_flight: usize,
    /// TLS for every connection, and the name to verify.
    #[cfg(feature = "tls")]
    tls: Option<ClientTls>,
}

/// A client's TLS settings.
#[cfg(feature = "tls")]
#[derive(Clone)]
struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Services by name.
#[derive(Clone, Default)]
struct Services(HashMap<String, Arc<dyn Service>>);

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Default for ChannelBuilder {
    fn default() -> Self {
        ChannelBuilder {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            write_queue: DEFAULT_WRITE_QUEUE,
            timeout: DEFAULT_TIMEOUT,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            reconnect: true,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            idempotent_retries: DEFAULT_IDEMPOTENT_RETRIES,
            services: Services::default(),
            serve_in_flight: DEFAULT_SERVE_IN_FLIGHT,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ChannelBuilder {
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
        let name = service.name().to_owned();
        self.services.0.insert(name, Arc::new(service));
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
    /// noticed, and pending calls fail with [`RpcError::ConnectionLost`],
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

    /// Connects over TCP (with `TCP_NODELAY`), trying each resolved address.
    /// Reconnects go to the same resolved addresses.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect(self, addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(addr).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(connect_error("(unresolved address)", e)),
        };
        let label = addrs
            .first()
            .map_or_else(|| "(no address)".to_owned(), ToString::to_string);
        let builder = self.clone();
        let addrs = Arc::new(addrs);
        let connector: Connector = Box::new(move || {
            let builder = builder.clone();
            let addrs = Arc::clone(&addrs);
            Box::pin(async move { builder.dial_tcp(&addrs).await })
        });
        self.open(label, connector).await
    }

    async fn dial_tcp(&self, addrs: &[SocketAddr]) -> Result<Arc<Connection>, RpcError> {
        let mut label = addrs.first().map_or_else(String::new, ToString::to_string);
        let attempt = async {
            let mut last =
                io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
            for addr in addrs {
                label = addr.to_string();
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream
                            .set_nodelay(true)
                            .map_err(|e| connect_error(&label, e))?;
                        return self.handshake(stream, &label).await;
                    }
                    Err(e) => last = e,
                }
            }
            Err(connect_error(&label, last))
        };
        with_timeout(
            self.connect_timeout,
            addrs.first().map_or_else(String::new, ToString::to_string),
            attempt,
        )
        .await
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
        let path = Arc::new(path.as_ref().to_path_buf());
        let label = path.display().to_string();
        let builder = self.clone();
        let connector: Connector = Box::new(move || {
            let builder = builder.clone();
            let path = Arc::clone(&path);
            Box::pin(async move {
                let label = path.display().to_string();
                let attempt = async {
                    let stream = tokio::net::UnixStream::connect(path.as_path())
                        .await
                        .map_err(|e| connect_error(&label, e))?;
                    builder.handshake(stream, &label).await
                };
                with_timeout(builder.connect_timeout, label.clone(), attempt).await
            })
        });
        self.open(label, connector).await
    }

    /// Connects to an in-memory listener (see [`transport::memory`](crate::transport::memory));
    /// reconnects like a TCP channel.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_memory(self, addr: &MemoryAddr) -> Result<Channel, RpcError> {
        let builder = self.clone();
        let addr = addr.clone();
        let connector: Connector = Box::new(move || {
            let builder = builder.clone();
            let addr = addr.clone();
            Box::pin(async move {
                let attempt = async {
                    let stream = addr.connect().map_err(|e| connect_error("memory", e))?;
                    builder.handshake(stream, "memory").await
                };
                with_timeout(builder.connect_timeout, "memory".to_owned(), attempt).await
            })
        });
        self.open("memory".to_owned(), connector).await
    }

    /// Runs the protocol over a stream you opened yourself (a TLS stream, a
    /// socket from elsewhere). `label` names the peer in errors. Such a
    /// channel cannot reconnect: once the stream breaks, calls fail.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_io<T: Io>(
        self,
        io: T,
        label: impl Into<String>,
    ) -> Result<Channel, RpcError> {
        let label = label.into();
        let connection = with_timeout(
            self.connect_timeout,
            label.clone(),
            self.handshake(io, &label),
        )
        .await?;
        Ok(self.channel(label, None, connection))
    }

    async fn open(self, label: String, connector: Connector) -> Result<Channel, RpcError> {
        let connection = connector().await?;
        Ok(self.channel(label, Some(connector), connection))
    }

    fn channel(
        self,
        peer: String,
        connector: Option<Connector>,
        connection: Arc<Connection>,
    ) -> Channel {
        let backoff = Backoff::new(self.backoff_initial, self.backoff_max);
        Channel {
            inner: Arc::new(ChannelInner {
                config: self,
                peer,
                connector,
                current: Mutex::new(connection),
                reconnecting: tokio::sync::Mutex::new(backoff),
                reconnect_failures: AtomicU64::new(0),
            }),
        }
    }

    async fn handshake<T: Io>(&self, io: T, peer: &str) -> Result<Arc<Connection>, RpcError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let stream = tls
                .connector
                .connect(tls.name.clone(), io)
                .await
                .map_err(|e| RpcError::Tls {
                    addr: peer.to_owned(),
                    message: e.to_string(),
                })?;
            return self.greet(stream, peer).await;
        }
        self.greet(io, peer).await
    }

    /// The greeting, on a connection ready for it.
    async fn greet<T: Io>(&self, io: T, peer: &str) -> Result<Arc<Connection>, RpcError> {
        let serving = if self.services.0.is_empty() {
            0
        } else {
            self.serve_in_flight
        };
        let established = conn::dial(io, self.max_frame_length, serving)
            .await
            .map_err(|e| match e {
                // A TLS alert after the handshake: a server that wants a
                // client certificate refuses this one (TLS 1.3 says so only
                // once the client has finished its side).
                #[cfg(feature = "tls")]
                HandshakeError::Io(e)
                    if e.get_ref()
                        .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>()) =>
                {
                    RpcError::Tls {
                        addr: peer.to_owned(),
                        message: e.to_string(),
                    }
                }
                HandshakeError::Io(e) => RpcError::NotAServer {
                    addr: peer.to_owned(),
                    reason: format!("the greeting failed: {e}"),
                },
                HandshakeError::Closed => RpcError::NotAServer {
                    addr: peer.to_owned(),
                    reason: "it closed the connection without greeting (a server that requires TLS does that to a client without it)".to_owned(),
                },
                HandshakeError::NotProtocol(reason) => RpcError::NotAServer {
                    addr: peer.to_owned(),
                    reason,
                },
                HandshakeError::Version { remote } => RpcError::VersionMismatch {
                    local: PROTOCOL_VERSION,
                    remote,
                },
                HandshakeError::Refused { code, message } => goodbye_error(code, &message),
            })?;
        Ok(self.start(established, PeerAddr::Dialed(peer.to_owned())))
    }

    fn start<T: Io>(&self, established: conn::Established<T>, peer: PeerAddr) -> Arc<Connection> {
        let conn::Established {
            reader,
            writer,
            peer_max_frame,
            peer_max_in_flight,
        } = established;
        let shared = Arc::new(Shared::new(Instant::now()));
        let stop = CancellationToken::new();
        let (queue, queue_rx) = mpsc::channel(self.write_queue);
        let (control, control_rx) = mpsc::unbounded_channel();

        let writer_shared = Arc::clone(&shared);
        let writer_stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) =
                conn::write_loop(writer, queue_rx, control_rx, writer_stop.clone()).await
            {
                writer_shared.close(
                    RpcError::connection_lost(format!("writing to the server failed: {e}")),
                    false,
                );
                writer_stop.cancel();
            }
        });
        let keepalive = self
            .keepalive_interval
            .map(|interval| (interval, self.keepalive_timeout));
        let serving = (!self.services.0.is_empty()).then(|| Serving {
            state: ServerState::for_channel(
                self.services.0.clone(),
                self.serve_in_flight,
                stop.clone(),
            ),
            peer,
            queue: queue.clone(),
            peer_max_frame,
        });
        tokio::spawn(read_loop(
            reader,
            Arc::clone(&shared),
            control.clone(),
            stop.clone(),
            keepalive,
            serving,
            // With nothing pending the reader sweeps once per default
            // timeout (at most ten times a second), so a call with the
            // default timeout is always covered by a sweep.
            self.timeout.max(Duration::from_millis(100)),
        ));

        Arc::new(Connection {
            queue,
            control,
            shared,
            next_id: AtomicU64::new(1),
            peer_max_frame,
            slots: Arc::new(tokio::sync::Semaphore::new(
                peer_max_in_flight.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            )),
            _stop: stop.drop_guard(),
        })
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    label: String,
    attempt: impl Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(RpcError::ConnectTimeout {
            addr: label,
            timeout,
        }),
    }
}

fn connect_error(addr: &str, source: io::Error) -> RpcError {
    RpcError::Connect {
        addr: addr.to_owned(),
        source: Arc::new(source),
    }
}

/// The error a server's goodbye means for the calls pending on it.
fn goodbye_error(code: u32, message: &str) -> RpcError {
    match code {
        code::SHUTTING_DOWN => RpcError::ShuttingDown,
        code::SERVER_BUSY => RpcError::ServerBusy {
            message: message.to_owned(),
        },
        _ => RpcError::connection_lost(format!("the server closed the connection: {message}")),
    }
}

/// A channel for calls from a server's handlers back to the client, on the
/// client's own connection: the server's connection loop writes what
/// `queue` and `control` carry and hands frames about these calls to
/// `caller`.
pub(crate) struct Reverse {
    pub channel: Channel,
    pub caller: CallerHalf,
    pub queue: mpsc::Receiver<Outgoing>,
    pub control: mpsc::UnboundedReceiver<Bytes>,
}

impl Reverse {
    pub(crate) fn new(peer: String, peer_max_frame: usize, peer_max_in_flight: usize) -> Self {
        // No reader sweeps this table: every call keeps its own deadline.
        let never = Instant::now() + Duration::from_secs(86_400 * 365 * 30);
        let shared = Arc::new(Shared::new(never));
        let config = ChannelBuilder::default();
        let (queue, queue_rx) = mpsc::channel(config.write_queue);
        let (control, control_rx) = mpsc::unbounded_channel();
        let connection = Arc::new(Connection {
            queue,
            control: control.clone(),
            shared: Arc::clone(&shared),
            next_id: AtomicU64::new(2),
            peer_max_frame,
            slots: Arc::new(tokio::sync::Semaphore::new(
                peer_max_in_flight.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            )),
            _stop: CancellationToken::new().drop_guard(),
        });
        Reverse {
            channel: config.channel(peer, None, connection),
            caller: CallerHalf { shared, control },
            queue: queue_rx,
            control: control_rx,
        }
    }
}
