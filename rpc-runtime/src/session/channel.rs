//! [`Channel`]: the handle calls go through, over one session at a time.
//! Both ends make them: a client over the connection it dialed, a server's
//! handler over the connection a call came on (a callback).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::RpcError;
use crate::wire::body::BodyStream;
use crate::wire::frame::flags;
use crate::wire::metadata::ReplyMetadata;
use crate::wire::request::{RequestBody, RequestHeader};

use super::pending::{PendingSlot, Sending};
use super::reply::Reply;
use super::stream::{enqueue, send_stream, wait_reply, Opened, RemoteStream};
use super::writer::{OutFrame, Outgoing};
use super::Connection;

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
    /// The server's address, or a label for it.
    peer: String,
    defaults: CallDefaults,
    current: Mutex<Arc<Connection>>,
    /// How to open a new connection when the current one has ended;
    /// `None` for a connection that cannot be dialed again (a stream
    /// handed in by the user, a callback's way back).
    redial: Option<Box<dyn Redial>>,
}

/// What calls get when their options do not say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallDefaults {
    /// A call's deadline.
    pub timeout: Duration,
    /// How many times an idempotent call is sent again.
    pub idempotent_retries: u32,
}

/// Default deadline of a call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of times an idempotent call is sent again.
const DEFAULT_IDEMPOTENT_RETRIES: u32 = 2;

impl Default for CallDefaults {
    fn default() -> Self {
        CallDefaults {
            timeout: DEFAULT_TIMEOUT,
            idempotent_retries: DEFAULT_IDEMPOTENT_RETRIES,
        }
    }
}

/// Opens a new connection for a channel whose connection has ended.
pub(crate) trait Redial: Send + Sync + 'static {
    /// A live connection, by `deadline`: `current`'s own if another call
    /// already replaced it, else a new one, installed in `current`.
    fn redial<'a>(
        &'a self,
        current: &'a Mutex<Arc<Connection>>,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Connection>, RpcError>> + Send + 'a>>;
}

/// The connection in `slot` now.
pub(crate) fn current_of(slot: &Mutex<Arc<Connection>>) -> Arc<Connection> {
    Arc::clone(&slot.lock().unwrap_or_else(PoisonError::into_inner))
}

impl Channel {
    /// A channel over `connection`, opening new ones with `redial`.
    pub(crate) fn new(
        peer: String,
        defaults: CallDefaults,
        connection: Arc<Connection>,
        redial: Option<Box<dyn Redial>>,
    ) -> Channel {
        Channel {
            inner: Arc::new(ChannelInner {
                peer,
                defaults,
                current: Mutex::new(connection),
                redial,
            }),
        }
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
        current_of(&self.inner.current)
    }

    /// A call that answers with one value, sent again while that is safe.
    ///
    /// The future owns the channel and the call's parts, and borrows them
    /// for each attempt. An `async` block, not an `async fn`: an `async
    /// fn` keeps its arguments twice, and a call's future is copied whole
    /// each time it moves.
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
    pub(crate) fn unary(
        self,
        mut body: RequestBody,
        idempotent: bool,
        service: Cow<'static, str>,
        method: Cow<'static, str>,
        deadline: Instant,
        timeout: Duration,
        reply: Option<ReplyMetadata>,
    ) -> impl Future<Output = Result<Bytes, RpcError>> + Send + 'static {
        async move {
            let flags = if reply.is_some() {
                flags::REPLY_METADATA
            } else {
                0
            };
            expired(timeout)?;
            let (service, method) = (&*service, &*method);
            // `idempotent_retries(u32::MAX)`: retry until the deadline.
            let resends = self.inner.defaults.idempotent_retries.saturating_add(1);
            let attempts = if idempotent { resends } else { 1 };
            // A call the server promised it did not run may be sent again
            // whatever the method.
            let not_run_attempts = resends.max(2);
            let mut attempt = 1;
            loop {
                // The time left, as measured when the deadline was set: good
                // for a first attempt that does not wait on the way.
                let left = (attempt == 1).then_some(timeout);
                let result = self
                    .round_trip(service, method, &mut body, deadline, timeout, left, flags)
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
                    Ok(answer) => {
                        return answer
                            .with_reply_metadata(reply.as_ref())
                            .into_result(timeout, service, method)
                    }
                }
            }
        }
    }

    /// A one-way call: done once written.
    pub(crate) async fn oneway(
        &self,
        mut body: RequestBody,
        service: &str,
        method: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), RpcError> {
        expired(timeout)?;
        let send = async {
            let connection = self.connection(deadline).await?;
            let header = RequestHeader {
                id: connection.next_id.fetch_add(2, Ordering::Relaxed),
                service,
                method,
                timeout_micros: micros_until(deadline),
                flags: flags::ONEWAY,
            };
            let frame = OutFrame::of(body.frame(&header, connection.peer_max_frame)?);
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

    /// A call that answers with a stream, sending `items` too if given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn streaming(
        &self,
        body: RequestBody,
        items: Option<BodyStream>,
        accept: bool,
        service: &str,
        method: &str,
        deadline: Instant,
        timeout: Duration,
        reply: Option<ReplyMetadata>,
    ) -> Result<RemoteStream, RpcError> {
        expired(timeout)?;
        let mut flags = match items {
            Some(_) => flags::STREAM_IN | flags::STREAM_OUT,
            None => flags::STREAM_OUT,
        };
        if accept {
            flags |= flags::ACCEPT;
        }
        if reply.is_some() {
            flags |= flags::REPLY_METADATA;
        }
        let opened = self
            .open(body, service, method, deadline, timeout, flags)
            .await?;
        let sending = items.as_ref().map(|_| Sending::new());
        let (events, swept) =
            opened
                .connection
                .shared
                .register_stream(opened.id, deadline, sending.clone())?;
        let mut stream = opened.into_stream(events, swept, deadline, timeout, service, method);
        stream.reply = reply;
        enqueue(
            &stream.connection,
            OutFrame::Shared(stream.request.take()),
            deadline,
            timeout,
        )
        .await?;
        if let (Some(items), Some(sending)) = (items, sending) {
            tokio::spawn(send_stream(
                stream.id,
                items,
                sending,
                stream.connection.queue.clone(),
                stream.connection.peer_max_frame,
            ));
        }
        Ok(stream)
    }

    /// A call that sends `items` and answers with one value.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sending(
        &self,
        body: RequestBody,
        items: BodyStream,
        service: &str,
        method: &str,
        deadline: Instant,
        timeout: Duration,
        reply: Option<ReplyMetadata>,
    ) -> Result<Bytes, RpcError> {
        expired(timeout)?;
        let flags = match reply {
            Some(_) => flags::STREAM_IN | flags::REPLY_METADATA,
            None => flags::STREAM_IN,
        };
        let opened = self
            .open(body, service, method, deadline, timeout, flags)
            .await?;
        let Opened {
            connection,
            slot: _slot,
            id,
            frame,
        } = opened;
        let sending = Sending::new();
        let swept = connection
            .shared
            .register_sending(id, deadline, Some(sending.clone()))?;
        let mut guard = PendingSlot {
            connection: &connection,
            id,
            armed: true,
        };
        enqueue(&connection, OutFrame::Shared(frame), deadline, timeout).await?;
        tokio::spawn(send_stream(
            id,
            items,
            sending,
            connection.queue.clone(),
            connection.peer_max_frame,
        ));
        let answer = wait_reply(&connection, id, swept, deadline).await;
        guard.armed = false;
        answer
            .with_reply_metadata(reply.as_ref())
            .into_result(timeout, service, method)
    }
    /// The first steps of a streaming call: a live connection, a place in
    /// the server's window (held for the whole call), an id and the
    /// request frame.
    async fn open(
        &self,
        mut body: RequestBody,
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
        let frame = body.frame(&header, connection.peer_max_frame)?.to_bytes();
        Ok(Opened {
            connection,
            slot,
            id,
            frame,
        })
    }

    /// The deadline of a call starting now, and the timeout it came from.
    #[inline]
    pub(crate) fn deadline(
        &self,
        timeout: Option<Duration>,
        inherited: Option<Instant>,
    ) -> (Instant, Duration) {
        let now = Instant::now();
        let own = timeout.unwrap_or(self.inner.defaults.timeout).min(FOREVER);
        let mut deadline = now
            .checked_add(own)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        if let Some(inherited) = inherited {
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
    #[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
    #[allow(clippy::too_many_arguments)]
    fn round_trip<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        body: &'a mut RequestBody,
        deadline: Instant,
        timeout: Duration,
        mut left: Option<Duration>,
        flags: u8,
    ) -> impl Future<Output = Result<Reply, RpcError>> + Send + 'a {
        // An `async` block, for the reason given at `unary`.
        async move {
            let current = self.current();
            let connection = if current.is_closed() {
                left = None;
                // Waits are boxed here and below: the future of every call
                // keeps room for its largest wait, and is copied whole each
                // time it moves; a call that must wait pays an allocation.
                match Box::pin(tokio::time::timeout_at(deadline, self.connection(deadline))).await {
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
                    match Box::pin(tokio::time::timeout_at(
                        deadline,
                        connection.slots.acquire(),
                    ))
                    .await
                    {
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
                    Some(left) => wire_timeout(left),
                    None => micros_until(deadline),
                },
                flags,
            };
            let frame = OutFrame::of(body.frame(&header, connection.peer_max_frame)?);
            let swept = connection.shared.register(id, deadline)?;
            let mut slot = PendingSlot {
                connection: &connection,
                id,
                armed: true,
            };
            enqueue(&connection, frame, deadline, timeout).await?;
            let reply = wait_reply(&connection, id, swept, deadline).await;
            slot.armed = false;
            Ok(reply)
        }
    }

    /// The live connection, reconnecting first if the last one ended.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, RpcError> {
        let current = self.current();
        if !current.is_closed() {
            return Ok(current);
        }
        match &self.inner.redial {
            Some(redial) => redial.redial(&self.inner.current, deadline).await,
            None => Err(current.closed_reason()),
        }
    }
}

/// A call with no time left fails at once, unsent.
fn expired(timeout: Duration) -> Result<(), RpcError> {
    if timeout.is_zero() {
        Err(RpcError::DeadlineExceeded { timeout })
    } else {
        Ok(())
    }
}

fn micros_until(deadline: Instant) -> Option<u64> {
    wire_timeout(deadline.saturating_duration_since(Instant::now()))
}

/// How long a call without a deadline ([`CallOptions::no_deadline`]) waits:
/// for ever, in effect, but as an instant that can be compared and added to.
///
/// [`CallOptions::no_deadline`]: crate::CallOptions::no_deadline
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The time left as a request says it: none at all for a call without a
/// deadline (more than half of [`FOREVER`] left).
fn wire_timeout(left: Duration) -> Option<u64> {
    (left <= FOREVER / 2).then(|| u64::try_from(left.as_micros()).unwrap_or(u64::MAX))
}
impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("Channel")
            .field("peer", &self.inner.peer)
            .field("pending", &current.pending())
            .field("closed", &current.is_closed())
            .finish()
    }
}
