//! The two ends of streams on the calling side: sending a call's stream,
//! and consuming its answer stream.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::RpcError;
use crate::telemetry::Observed;
use crate::wire::codec::{self};
use crate::wire::frame::Message;

use super::flow::{produce, Produced, Taken};
use super::pending::Sending;
use super::reply::{Reply, StreamEvent};
use super::writer::{OutFrame, Outgoing};
use super::Connection;
use crate::wire::body::BodyStream;

/// A streaming call whose request is ready to go.
pub(super) struct Opened {
    pub(super) connection: Arc<Connection>,
    pub(super) slot: tokio::sync::OwnedSemaphorePermit,
    pub(super) id: u64,
    pub(super) frame: Bytes,
}

impl Opened {
    /// The consuming end of the call's answer stream; it holds the request
    /// until it is queued, and cancels the call if dropped.
    pub(super) fn into_stream(
        self,
        events: mpsc::UnboundedReceiver<StreamEvent>,
        swept: bool,
        deadline: Instant,
        timeout: Duration,
        service: &str,
        method: &str,
    ) -> RemoteStream {
        RemoteStream {
            connection: self.connection,
            id: self.id,
            events,
            timer: (!swept).then(|| Box::pin(tokio::time::sleep_until(deadline))),
            timeout,
            taken: Taken::default(),
            done: false,
            service: service.into(),
            method: method.into(),
            request: Request(Some(self.frame)),
            _slot: self.slot,
            reply: None,
            observed: Observed::none(),
        }
    }
}

/// A request frame not yet queued.
pub(super) struct Request(Option<Bytes>);

impl Request {
    pub(super) fn take(&mut self) -> Bytes {
        self.0.take().unwrap_or_default()
    }
}

/// Queues a request frame, waiting for room in the write queue no later
/// than `deadline`.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
pub(super) fn enqueue(
    connection: &Connection,
    frame: OutFrame,
    deadline: Instant,
    timeout: Duration,
) -> impl Future<Output = Result<(), RpcError>> + Send + '_ {
    // An `async` block, not an `async fn`, which would keep its arguments
    // twice in every call's future (see `Channel::unary`).
    async move {
        let outgoing = Outgoing {
            frame,
            written: None,
        };
        match connection.queue.try_send(outgoing) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(connection.shared.closed_reason()),
            Err(mpsc::error::TrySendError::Full(frame)) => {
                // Boxed: see `Channel::round_trip`.
                Box::pin(tokio::time::timeout_at(
                    deadline,
                    connection.queue.send(frame),
                ))
                .await
                .map_err(|_| RpcError::DeadlineExceeded { timeout })?
                .map_err(|_| connection.shared.closed_reason())
            }
        }
    }
}

/// The answer to a call, once the reader hands it over: the reader always
/// answers or drops the sender (closing fails every pending call), so this
/// cannot wait forever on a dead connection; and it fails the call when its
/// deadline passes, unless the call is due before the reader's next sweep
/// (`swept` false), in which case this keeps the time itself.
#[allow(clippy::manual_async_fn)] // an `async fn` keeps its arguments twice
pub(super) fn wait_reply(
    connection: &Connection,
    id: u64,
    swept: bool,
    deadline: Instant,
) -> impl Future<Output = Reply> + Send + '_ {
    // An `async` block: see `enqueue`.
    async move {
        let reply = std::future::poll_fn(|cx| connection.shared.poll_reply(id, cx));
        if swept {
            reply.await
        } else {
            match tokio::time::timeout_at(deadline, reply).await {
                Ok(reply) => reply,
                Err(_) => Reply::Expired,
            }
        }
    }
}

/// Sends the stream a call carries: each item as the server's credit
/// allows, then the end. Stops (dropping `items`) as soon as the call ends
/// or the server cancels the stream.
pub(super) async fn send_stream(
    id: u64,
    mut items: BodyStream,
    sending: Sending,
    queue: mpsc::Sender<Outgoing>,
    limit: usize,
) {
    let send = |frame| {
        let queue = &queue;
        async move { queue.send(Outgoing::frame(frame)).await.is_ok() }
    };
    let produced = tokio::select! {
        produced = produce(id, &mut items, &sending.credit, limit, send) => produced,
        () = sending.stop.cancelled() => return,
    };
    let end = match produced {
        Produced::Done => Ok(()),
        Produced::Failed(error) => Err(error),
        Produced::Gone => return,
    };
    let _ = queue
        .send(Outgoing::frame(codec::encode_end(id, end, limit)))
        .await;
}

/// The consuming end of a streaming call: its encoded items (inside a
/// [`RawStream`](crate::call::RawStream), then a [`Streaming`]).
pub(crate) struct RemoteStream {
    pub(super) connection: Arc<Connection>,
    pub(super) id: u64,
    pub(super) events: mpsc::UnboundedReceiver<StreamEvent>,
    /// The call's own deadline timer, when the reader's sweeps do not cover
    /// it (see [`Shared::register`]).
    pub(super) timer: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) timeout: Duration,
    /// Items taken since credit was last granted.
    pub(super) taken: Taken,
    /// The end was seen (or made): nothing more comes.
    pub(super) done: bool,
    pub(super) service: Box<str>,
    pub(super) method: Box<str>,
    /// The request, until it is queued.
    pub(super) request: Request,
    /// The call's place in the server's window, for as long as it streams.
    pub(super) _slot: tokio::sync::OwnedSemaphorePermit,
    /// Where the metadata of the stream's end goes, if the caller reads it.
    pub(super) reply: Option<crate::wire::metadata::ReplyMetadata>,
    /// The call's span and metrics, ended with the stream.
    pub(super) observed: Observed,
}

impl RemoteStream {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Ends `observed` with the stream (see [`RawStream::observe`](crate::call::RawStream)).
    pub(crate) fn observe(&mut self, observed: Observed) {
        self.observed = observed;
    }

    #[inline]
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, RpcError>>> {
        let polled = self.poll_item(cx);
        if let std::task::Poll::Ready(item) = &polled {
            self.observed.saw(item.as_ref().map(Result::as_ref));
        }
        polled
    }

    fn poll_item(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, RpcError>>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(timer) = &mut self.timer {
            if timer.as_mut().poll(cx).is_ready() {
                self.stop();
                return Poll::Ready(Some(Err(RpcError::DeadlineExceeded {
                    timeout: self.timeout,
                })));
            }
        }
        let mut event = match self.events.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(event) => event,
        };
        // An acceptance the caller did not wait for says nothing more.
        while matches!(event, Some(StreamEvent::Head)) {
            event = match self.events.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(event) => event,
            };
        }
        match event {
            Some(StreamEvent::Head) => Poll::Pending,
            Some(StreamEvent::Item(body)) => {
                if let Some(items) = self.taken.one() {
                    // Room for as many as were taken.
                    self.connection.shared.grant(self.id, items);
                    let credit = Message::Credit { id: self.id, items };
                    // Fails only when the connection is gone; the reader
                    // then ends this stream.
                    let _ = self.connection.control.send(codec::encode_control(&credit));
                }
                Poll::Ready(Some(Ok(body)))
            }
            Some(StreamEvent::End(reply)) => {
                self.done = true;
                // A normal end (`Ok`), or the error the call ended with.
                let reply = reply.with_reply_metadata(self.reply.as_ref());
                let end = reply.into_result(self.timeout, &self.service, &self.method);
                Poll::Ready(end.err().map(Err))
            }
            None => {
                self.done = true;
                Poll::Ready(Some(Err(self.connection.shared.closed_reason())))
            }
        }
    }

    /// For a call that asked to hear whether its stream was accepted
    /// ([`flags::ACCEPT`](crate::wire::frame::flags::ACCEPT)): waits for the
    /// answer, within the call's deadline. `Ok(None)`: accepted, the items
    /// follow; `Ok(Some(value))`: refused with that encoded value; `Err`:
    /// the call failed (refused with a status, or for any other reason).
    pub(crate) async fn accepted(&mut self) -> Result<Option<Bytes>, RpcError> {
        std::future::poll_fn(|cx| {
            use std::task::Poll;
            if let Some(timer) = &mut self.timer {
                if timer.as_mut().poll(cx).is_ready() {
                    self.stop();
                    return Poll::Ready(Err(RpcError::DeadlineExceeded {
                        timeout: self.timeout,
                    }));
                }
            }
            let event = match self.events.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(event) => event,
            };
            Poll::Ready(match event {
                Some(StreamEvent::Head) => Ok(None),
                Some(StreamEvent::End(reply)) => {
                    self.done = true;
                    reply
                        .with_reply_metadata(self.reply.as_ref())
                        .into_result(self.timeout, &self.service, &self.method)
                        .map(Some)
                }
                Some(StreamEvent::Item(_)) => {
                    self.stop();
                    Err(RpcError::Protocol {
                        message: "the server sent a stream item before accepting the call"
                            .to_owned(),
                    })
                }
                None => {
                    self.done = true;
                    Err(self.connection.shared.closed_reason())
                }
            })
        })
        .await
    }

    /// Ends the stream from this side: the server is told to stop the call.
    pub(crate) fn stop(&mut self) {
        self.done = true;
        self.connection.abandon(self.id);
    }
}

impl Drop for RemoteStream {
    fn drop(&mut self) {
        if !self.done {
            self.stop();
        }
    }
}
