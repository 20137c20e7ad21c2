//! The call paths: how each kind of call is made over a [`Target`],
//! attempt by attempt, and when an attempt is made again.
//!
//! **When a call goes again.** An attempt that never reached its
//! connection (no connection, a closed one, or a goodbye that promises the
//! call did not run) goes to another connection at once if the target
//! fails over, whatever the call. A call the peer promised it did not run
//! is sent again once more on a target that does not. An idempotent call
//! whose connection broke with it in flight is sent again up to the
//! target's `idempotent_retries`. Nothing else is sent twice: a call that
//! may have run fails. The deadline bounds every attempt and every wait.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Span;

use crate::error::RpcError;
use crate::telemetry::{self, Observed};
use crate::wire::body::BodyStream;
use crate::wire::frame::flags;
use crate::wire::metadata::ReplyMetadata;
use crate::wire::request::{RequestBody, RequestHeader};

use super::pending::{PendingSlot, Sending};
use super::reply::Reply;
use super::stream::{enqueue, send_stream, wait_reply, Opened, RemoteStream};
use super::target::{Outcome, Picked, Target, Ticket, FOREVER};
use super::writer::{OutFrame, Outgoing};
use super::Connection;

/// A call's service and method, and its span if a subscriber sees it
/// (each attempt is noted on it).
pub(crate) type Named<'a> = (&'a str, &'a str, Option<&'a Span>);

/// Notes on the call's span the connection an attempt went to, and its id.
#[inline]
fn noted(span: Option<&Span>, connection: &Connection, id: u64) {
    if let Some(span) = span {
        telemetry::Observed::attempt(span, connection.peer(), id);
    }
}

/// Attempts that never reached a connection, made again elsewhere, at
/// most (a target over a set has somewhere else to go; the deadline bounds
/// them too).
const MAX_FAILOVERS: u32 = 8;

/// How many times a call has gone, and whether it goes again.
struct Attempts {
    attempt: u32,
    /// Attempts allowed after a broken connection (1 unless idempotent).
    attempts: u32,
    /// Attempts allowed for a call the peer did not run.
    not_run_attempts: u32,
    failovers: u32,
}

impl Attempts {
    #[inline]
    fn new(idempotent_retries: u32, idempotent: bool) -> Self {
        // `idempotent_retries(u32::MAX)`: retry until the deadline.
        let resends = idempotent_retries.saturating_add(1);
        Attempts {
            attempt: 1,
            attempts: if idempotent { resends } else { 1 },
            // A call the server promised it did not run may be sent again
            // whatever the method.
            not_run_attempts: resends.max(2),
            failovers: 0,
        }
    }

    /// Whether this is the first attempt.
    #[inline]
    fn first(&self) -> bool {
        self.attempt == 1 && self.failovers == 0
    }

    /// Whether a call that never reached a connection goes elsewhere.
    fn fails_over(&mut self, failover: bool, error: &RpcError) -> bool {
        let again = failover && self.failovers < MAX_FAILOVERS && error.is_retryable();
        self.failovers += u32::from(again);
        again
    }

    /// After an attempt's `result` (`Err`: it never reached a connection):
    /// `Err` with the reason when the call goes again, else the result.
    #[inline]
    fn after(
        &mut self,
        result: Result<Reply, RpcError>,
        failover: bool,
    ) -> Result<Result<Reply, RpcError>, RpcError> {
        match result {
            Err(error) if self.fails_over(failover, &error) => Err(error),
            Ok(Reply::NotRun(error)) if self.fails_over(failover, &error) => Err(error),
            // A server that is shutting down answers with this, unrun.
            Ok(reply)
                if reply.is_shutting_down()
                    && self.fails_over(failover, &RpcError::ShuttingDown) =>
            {
                Err(RpcError::ShuttingDown)
            }
            Err(error) | Ok(Reply::Failed(error))
                if self.attempt < self.attempts && error.is_retryable() =>
            {
                self.attempt += 1;
                Err(error)
            }
            Ok(Reply::NotRun(error)) if self.attempt < self.not_run_attempts => {
                self.attempt += 1;
                Err(error)
            }
            done => Ok(done),
        }
    }
}

/// How an attempt's result reads to its target.
#[inline]
fn outcome(result: &Result<Reply, RpcError>) -> Outcome {
    match result {
        Ok(reply) if matches!(reply, Reply::NotRun(_)) || reply.is_shutting_down() => {
            Outcome::Failed
        }
        Ok(Reply::Ok(_) | Reply::Remote { .. } | Reply::Expired) => Outcome::Answered,
        Ok(Reply::Failed(error)) | Err(error) if error.is_connection_error() => Outcome::Failed,
        Err(error) if error.is_retryable() => Outcome::Failed,
        _ => Outcome::Other,
    }
}

/// A call that answers with one value, sent again while that is safe.
///
/// The future owns the target and the call's parts, and borrows them for
/// each attempt. An `async` block, not an `async fn`: an `async fn` keeps
/// its arguments twice, and a call's future is copied whole each time it
/// moves.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
pub(crate) fn unary<T: Target>(
    target: T,
    mut body: RequestBody,
    idempotent: bool,
    service: Cow<'static, str>,
    method: Cow<'static, str>,
    deadline: Instant,
    timeout: Duration,
    reply: Option<ReplyMetadata>,
    observed: Observed,
) -> impl Future<Output = Result<Bytes, RpcError>> + Send + 'static {
    async move {
        let flags = if reply.is_some() {
            flags::REPLY_METADATA
        } else {
            0
        };
        expired(timeout)?;
        let (service, method) = (&*service, &*method);
        let mut attempts = Attempts::new(target.defaults().idempotent_retries, idempotent);
        loop {
            // The time left, as measured when the deadline was set: good
            // for a first attempt that does not wait on the way.
            let left = attempts.first().then_some(timeout);
            let result = round_trip(
                &target,
                (service, method, observed.enabled_span()),
                &mut body,
                deadline,
                timeout,
                left,
                flags,
            )
            .await;
            let failovers = attempts.failovers;
            match attempts.after(result, T::FAILOVER) {
                Err(error) => {
                    tracing::debug!(%error, service, method, "sending a call again");
                    telemetry::resent((service, method), attempts.failovers > failovers);
                }
                Ok(Err(error)) => return Err(error),
                Ok(Ok(answer)) => {
                    return answer
                        .with_reply_metadata(reply.as_ref())
                        .into_result(timeout, service, method)
                }
            }
        }
    }
}

/// One attempt: a connection, a request, its answer, all before
/// `deadline` (a wait past it ends in [`Reply::Expired`]). `Err` when the
/// attempt never reached a connection.
///
/// Each step that can wait is first tried without waiting, and only a
/// step that must wait sets a timer; the wait for the answer is timed by
/// the connection's reader. So a call that finds a live connection and a
/// free slot costs no timer at all.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
#[allow(clippy::too_many_arguments)]
fn round_trip<'a, T: Target>(
    target: &'a T,
    (service, method, span): Named<'a>,
    body: &'a mut RequestBody,
    deadline: Instant,
    timeout: Duration,
    mut left: Option<Duration>,
    flags: u8,
) -> impl Future<Output = Result<Reply, RpcError>> + Send + 'a {
    // An `async` block, for the reason given at `unary`.
    async move {
        let (connection, ticket) = match target.ready() {
            Some(picked) => picked,
            None => {
                left = None;
                // Waits are boxed here and below: the future of every call
                // keeps room for its largest wait, and is copied whole each
                // time it moves; a call that must wait pays an allocation.
                match Box::pin(tokio::time::timeout_at(deadline, target.wait(deadline))).await {
                    Ok(picked) => picked?,
                    Err(_) => return Ok(Reply::Expired),
                }
            }
        };
        // One block, not a function of its own: a call's future keeps one
        // state machine for the attempt, as before there were targets.
        let connection = &*connection;
        let result = 'attempt: {
            // Waits here while the peer's window is full; the time left is
            // measured after that wait.
            let _slot = match connection.slots.try_acquire() {
                Ok(slot) => slot,
                Err(tokio::sync::TryAcquireError::Closed) => {
                    break 'attempt Err(connection.shared.closed_reason())
                }
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    left = None;
                    match Box::pin(tokio::time::timeout_at(
                        deadline,
                        connection.slots.acquire(),
                    ))
                    .await
                    {
                        Ok(Ok(slot)) => slot,
                        Ok(Err(_)) => break 'attempt Err(connection.shared.closed_reason()),
                        Err(_) => break 'attempt Ok(Reply::Expired),
                    }
                }
            };
            let id = connection.next_id();
            noted(span, connection, id);
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
            let frame = match body.frame(&header, connection.peer_max_frame()) {
                Ok(frame) => OutFrame::of(frame),
                Err(error) => break 'attempt Err(error),
            };
            let swept = match connection.shared.register(id, deadline) {
                Ok(swept) => swept,
                Err(error) => break 'attempt Err(error),
            };
            let mut slot = PendingSlot {
                connection,
                id,
                armed: true,
            };
            if let Err(error) = enqueue(connection, frame, deadline, timeout).await {
                break 'attempt Err(error);
            }
            let reply = wait_reply(connection, id, swept, deadline).await;
            slot.armed = false;
            Ok(reply)
        };
        ticket.ended(outcome(&result));
        result
    }
}

/// A connection for an attempt that is not a unary call's, by `deadline`.
async fn connection_for<T: Target>(
    target: &T,
    deadline: Instant,
    timeout: Duration,
) -> Result<Picked<T::Ticket>, RpcError> {
    match target.ready() {
        Some(picked) => Ok(picked),
        None => tokio::time::timeout_at(deadline, target.wait(deadline))
            .await
            .map_err(|_| RpcError::DeadlineExceeded { timeout })?,
    }
}

/// A one-way call: done once written. Sent elsewhere if its connection
/// was gone before it took the call.
pub(crate) async fn oneway<T: Target>(
    target: &T,
    mut body: RequestBody,
    (service, method, span): Named<'_>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), RpcError> {
    expired(timeout)?;
    let mut attempts = Attempts::new(0, false);
    let send = async {
        loop {
            let (connection, ticket) = connection_for(target, deadline, timeout).await?;
            let id = connection.next_id();
            noted(span, &connection, id);
            let header = RequestHeader {
                id,
                service,
                method,
                timeout_micros: micros_until(deadline),
                flags: flags::ONEWAY,
            };
            let frame = OutFrame::of(body.frame(&header, connection.peer_max_frame())?);
            let (written, done) = oneshot::channel();
            let outgoing = Outgoing {
                frame,
                written: Some(written),
            };
            if connection.queue.send(outgoing).await.is_err() {
                ticket.ended(Outcome::Failed);
                let error = connection.shared.closed_reason();
                if attempts.fails_over(T::FAILOVER, &error) {
                    telemetry::resent((service, method), true);
                    continue;
                }
                return Err(error);
            }
            ticket.ended(Outcome::Other);
            return done.await.map_err(|_| connection.shared.closed_reason());
        }
    };
    tokio::time::timeout_at(deadline, send)
        .await
        .unwrap_or(Err(RpcError::DeadlineExceeded { timeout }))
}

/// A call that answers with a stream, sending `items` too if given.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn streaming<T: Target>(
    target: &T,
    mut body: RequestBody,
    items: Option<BodyStream>,
    accept: bool,
    (service, method, span): Named<'_>,
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
    let names = (service, method, span);
    let opened = open(target, &mut body, names, deadline, timeout, flags).await?;
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
            stream.connection.peer_max_frame(),
        ));
    }
    Ok(stream)
}

/// A call that sends `items` and answers with one value.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn sending<T: Target>(
    target: &T,
    mut body: RequestBody,
    items: BodyStream,
    (service, method, span): Named<'_>,
    deadline: Instant,
    timeout: Duration,
    reply: Option<ReplyMetadata>,
) -> Result<Bytes, RpcError> {
    expired(timeout)?;
    let flags = match reply {
        Some(_) => flags::STREAM_IN | flags::REPLY_METADATA,
        None => flags::STREAM_IN,
    };
    let opened = open(
        target,
        &mut body,
        (service, method, span),
        deadline,
        timeout,
        flags,
    )
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
        connection.peer_max_frame(),
    ));
    let answer = wait_reply(&connection, id, swept, deadline).await;
    guard.armed = false;
    answer
        .with_reply_metadata(reply.as_ref())
        .into_result(timeout, service, method)
}

/// The first steps of a streaming call: a live connection, a place in
/// the peer's window (held for the whole call), an id and the request
/// frame; on another connection if the first was gone.
async fn open<T: Target>(
    target: &T,
    body: &mut RequestBody,
    (service, method, span): Named<'_>,
    deadline: Instant,
    timeout: Duration,
    flags: u8,
) -> Result<Opened, RpcError> {
    let mut attempts = Attempts::new(0, false);
    loop {
        let (connection, ticket) = connection_for(target, deadline, timeout).await?;
        match slot_in(connection, deadline, timeout).await {
            Ok((connection, slot)) => {
                ticket.ended(Outcome::Other);
                let id = connection.next_id();
                noted(span, &connection, id);
                let header = RequestHeader {
                    id,
                    service,
                    method,
                    timeout_micros: micros_until(deadline),
                    flags,
                };
                let frame = body.frame(&header, connection.peer_max_frame())?.to_bytes();
                return Ok(Opened {
                    connection,
                    slot,
                    id,
                    frame,
                });
            }
            Err(error) => {
                ticket.ended(Outcome::Failed);
                if !attempts.fails_over(T::FAILOVER, &error) {
                    return Err(error);
                }
                telemetry::resent((service, method), true);
            }
        }
    }
}

/// A place in `connection`'s window, held for a whole streaming call.
async fn slot_in(
    connection: Arc<Connection>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(Arc<Connection>, tokio::sync::OwnedSemaphorePermit), RpcError> {
    if connection.is_closed() {
        return Err(connection.closed_reason());
    }
    let slots = Arc::clone(&connection.slots);
    let slot = match Arc::clone(&slots).try_acquire_owned() {
        Ok(slot) => slot,
        Err(tokio::sync::TryAcquireError::Closed) => return Err(connection.shared.closed_reason()),
        Err(tokio::sync::TryAcquireError::NoPermits) => {
            tokio::time::timeout_at(deadline, slots.acquire_owned())
                .await
                .map_err(|_| RpcError::DeadlineExceeded { timeout })?
                .map_err(|_| connection.shared.closed_reason())?
        }
    };
    Ok((connection, slot))
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

/// The time left as a request says it: none at all for a call without a
/// deadline (more than half of [`FOREVER`] left).
pub(crate) fn wire_timeout(left: Duration) -> Option<u64> {
    (left <= FOREVER / 2).then(|| u64::try_from(left.as_micros()).unwrap_or(u64::MAX))
}
