//! The dispatch loop's state for one connection: the calls the peer makes,
//! run inline or as tasks, with their streams, credits and cancels.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

use super::service::ServiceFuture;
use crate::error::RpcError;
use crate::link::FrameWrite;
use crate::telemetry::Observed;
use crate::wire::body::Body;
use crate::wire::codec;
use crate::wire::frame::{code, Message};
use crate::wire::metadata::Metadata;
use crate::wire::route;

use super::caller::CallerHalf;
use super::context::{CallContext, Peer};
use super::flow::add_credit;
use super::inbox::InboxEvent;
use super::serving::Serving;
use super::writer::Outgoing;

/// What the dispatch loop does after a frame.
pub(super) enum Next {
    Continue,
    /// Stop reading and close; send this goodbye (if any) first.
    Stop(Option<Bytes>),
}

/// Where a dispatch loop's frames go.
pub(super) trait Out: Send {
    /// Adds a frame; waits while the way out is full.
    fn feed(&mut self, frame: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// [`feed`](Self::feed), with a frame just encoded that nobody shares.
    fn feed_encoded(&mut self, frame: BytesMut) -> impl Future<Output = io::Result<()>> + Send {
        self.feed(frame.freeze())
    }
}

impl<W: FrameWrite> Out for W {
    fn feed(&mut self, frame: Bytes) -> impl Future<Output = io::Result<()>> + Send {
        SinkExt::feed(self, frame)
    }

    /// A small frame is copied into the writer's buffer from where it was
    /// encoded, when the writer copies it anyway.
    async fn feed_encoded(&mut self, frame: BytesMut) -> io::Result<()> {
        if !self.copies(frame.len()) {
            return SinkExt::feed(self, frame.freeze()).await;
        }
        futures::future::poll_fn(|cx| self.poll_ready_unpin(cx)).await?;
        std::pin::Pin::new(self).start_send_copy(&frame)
    }
}

/// A client's writer task, for the calls a client serves.
pub(super) struct QueueOut(mpsc::Sender<Outgoing>);

impl Out for QueueOut {
    async fn feed(&mut self, frame: Bytes) -> io::Result<()> {
        self.0
            .send(Outgoing::frame(frame))
            .await
            .map_err(|_| io::Error::other("the connection's writer is gone"))
    }
}

/// What one connection's dispatch loop keeps: the calls the peer makes.
pub(super) struct Dispatch<'a, O: Out> {
    pub(super) state: &'a Serving,
    /// Who the peer is, shared with the context of each of its calls.
    pub(super) peer: Arc<Peer>,
    pub(super) peer_max_frame: usize,
    /// The way out. On a server, the connection's write half, written by
    /// this task alone: answers to calls that finished inline go straight
    /// into its buffer, and it is flushed when there is nothing left to
    /// read, so one write system call carries the answers to everything one
    /// read brought in.
    pub(super) writer: O,
    /// Something was written to `writer` since its last flush.
    pub(super) unflushed: bool,
    /// Writing failed: the connection is gone.
    pub(super) write_failed: Option<io::Error>,
    /// Answers of calls that run as their own tasks.
    pub(super) responses: mpsc::Sender<Bytes>,
    /// Credits and cancels from handlers that read their caller's stream.
    pub(super) control: mpsc::UnboundedSender<Bytes>,
    /// Call id → the stream its caller sends, while the call runs.
    pub(super) inboxes: HashMap<u64, Inbox>,
    /// Every call running on this connection, each ending with its id and
    /// whether it is one-way; dropping it aborts them.
    pub(super) calls: JoinSet<(u64, bool)>,
    /// How many of `calls` are one-way.
    pub(super) oneway_running: usize,
    /// One-way requests read while every one-way slot was taken, in order,
    /// and their size in bytes. Reading goes on while they wait (the peer
    /// cannot see one-way calls end, so it cannot keep them within a
    /// window); only a full queue stops it.
    pub(super) waiting: VecDeque<Parked>,
    pub(super) waiting_bytes: usize,
    /// Request id → its task, for cancels and credits.
    pub(super) running: HashMap<u64, Running>,
    /// Shutting down: answer new requests with `ShuttingDown`.
    pub(super) draining: bool,
    /// A request read while every slot was taken, waiting for one. While it
    /// waits the connection is not read: that is the backpressure. A client
    /// that keeps within the window announced in the greeting only gets
    /// here for a moment (a slot it freed by cancelling is not yet reaped),
    /// so it never stops the server from seeing its cancels and pings.
    pub(super) parked: Option<Parked>,
    pub(super) max_in_flight: usize,
    /// Ids of calls this side makes have this parity (0 on a server, whose
    /// calls back to the client have even ids; 1 on a client).
    pub(super) own_parity: u64,
    /// Frames about the calls this side makes go here (a server's calls
    /// back to a client that serves).
    pub(super) caller: Option<CallerHalf>,
}

/// A request's header, as decoded.
pub(super) struct RequestHead {
    pub id: u64,
    /// The method's id.
    pub method: u32,
    pub timeout_micros: Option<u64>,
    pub flags: u8,
}

/// What becomes of a request.
pub(super) enum Admitted {
    /// Nothing more now: it was queued, or dropped.
    Done,
    /// Send this frame (its refusal).
    Send(Bytes),
    /// Run it now.
    Run(Parked),
}

/// A request waiting for a slot.
pub(super) struct Parked {
    pub(super) id: u64,
    pub(super) oneway: bool,
    /// The caller wants the answer as a stream.
    pub(super) stream: bool,
    /// The caller waits to hear whether the stream was accepted.
    pub(super) accept: bool,
    /// The call's context: its deadline, metadata, the stream its caller
    /// sends, ...
    pub(super) context: CallContext,
    pub(super) call: Result<ServiceFuture, RpcError>,
    /// The request frame's size.
    pub(super) size: usize,
    /// The call's span and metrics.
    pub(super) observed: Observed,
}

/// The connection's end of a stream a caller sends.
pub(super) struct Inbox {
    pub(super) events: mpsc::UnboundedSender<InboxEvent>,
    /// Items the caller may still send; the handler's side adds to it.
    pub(super) credit: Arc<AtomicU32>,
    /// Counts the items received.
    pub(super) received: &'static metrics::Counter,
}

/// A call running as its own task.
pub(super) struct Running {
    pub(super) task: AbortHandle,
    /// For a call that answers with a stream: the caller's credit.
    pub(super) credit: Option<Arc<Semaphore>>,
}

/// The most bytes of one-way requests that wait for a slot before the
/// connection stops being read.
const ONEWAY_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// One-way requests that may wait for a slot before the connection stops
/// being read, at least (or the window, if larger).
const ONEWAY_QUEUE_MIN: usize = 64;

impl<'a, O: Out> Dispatch<'a, O> {
    /// A connection's dispatch state with no call yet, no caller half, no
    /// way back to the peer and no identity; `own_parity` is that of this
    /// side's call ids.
    pub(super) fn new(
        state: &'a Serving,
        peer: Arc<Peer>,
        peer_max_frame: usize,
        writer: O,
        responses: mpsc::Sender<Bytes>,
        control: mpsc::UnboundedSender<Bytes>,
        own_parity: u64,
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
            oneway_running: 0,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            running: HashMap::new(),
            draining: false,
            parked: None,
            max_in_flight: state.max_in_flight,
            own_parity,
            caller: None,
        }
    }

    /// Handles one frame from the peer.
    pub(super) async fn frame(&mut self, payload: Bytes) -> Next {
        let (message, used) = match codec::decode_message(&payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::info!(peer = %self.peer.addr, error = %e, "closing a connection after an undecodable frame");
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
                // Like a cancel or a credit for a call that has ended.
                (None, Message::Cancel { .. } | Message::Credit { .. }) => Ok(()),
                (None, _) => Err(RpcError::Protocol {
                    message: format!(
                        "the peer sent {} for call {id}, but this side makes no calls on this connection",
                        message.kind()
                    ),
                }),
            };
            return match outcome {
                Ok(()) => Next::Continue,
                Err(error) => {
                    tracing::info!(peer = %self.peer.addr, %error, "closing a connection that broke the protocol");
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
                method,
                timeout,
                flags,
            } => {
                let header = RequestHead {
                    id,
                    method: u32::from_le_bytes(method),
                    timeout_micros: route::timeout_from_wire(timeout),
                    flags,
                };
                match self.request(header, &payload, used) {
                    Admitted::Done => {}
                    Admitted::Send(frame) => self.send(frame).await,
                    Admitted::Run(call) => self.spawn(call).await,
                }
                Next::Continue
            }
            Message::Cancel { id } => {
                self.inboxes.remove(&id);
                if let Some(running) = self.running.remove(&id) {
                    tracing::debug!(peer = %self.peer.addr, id, "call cancelled by the client");
                    running.task.abort();
                }
                Next::Continue
            }
            Message::Credit { id, items } => {
                // Credit for a call that already ended is no news.
                if let Some(credit) = self.running.get(&id).and_then(|r| r.credit.as_ref()) {
                    add_credit(credit, items);
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
                    tracing::info!(peer = %self.peer.addr, id, "closing a connection that sent stream items beyond its credit");
                    let message = format!("call {id}: a stream item beyond the credit granted");
                    return Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)));
                }
                inbox.credit.fetch_sub(1, Ordering::AcqRel);
                inbox.received.increment(1);
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
                        crate::wire::frame::Status::Ok => Ok(()),
                        crate::wire::frame::Status::Error { code, message } => {
                            let details = payload.slice(used.min(payload.len())..);
                            Err(codec::error_from_wire(code, message, details, "", ""))
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
                tracing::debug!(peer = %self.peer.addr, code, message, "the client said goodbye");
                Next::Stop(None)
            }
            Message::Response { id, .. } | Message::Head { id } => {
                tracing::info!(peer = %self.peer.addr, id, "closing a connection that sent a response to a call never made");
                let message = format!(
                    "the peer sent a response for call {id}, an id of its own calls: no call of this side has it"
                );
                Next::Stop(Some(codec::encode_goodbye(code::PROTOCOL, &message)))
            }
        }
    }

    /// Starts the parked request if a slot is free (or refuses it, when
    /// shutting down).
    pub(super) async fn unpark(&mut self) {
        // One-way requests read before a shutdown began are run all the same.
        while self.has_room(true) {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_bytes = self.waiting_bytes.saturating_sub(next.size);
            self.spawn(next).await;
        }
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
        } else if self
            .parked
            .as_ref()
            .is_some_and(|parked| self.has_room(parked.oneway))
        {
            if let Some(parked) = self.parked.take() {
                self.spawn(parked).await;
            }
        }
    }

    /// Whether another call of this kind may start now. Calls that are
    /// answered count against the window the peer was told in the greeting
    /// (and keeps to, so reading never stops for them); one-way calls,
    /// whose end the peer cannot see, have a window of the same size of
    /// their own, so they never take the room of the calls it counts.
    pub(super) fn has_room(&self, oneway: bool) -> bool {
        if oneway {
            self.oneway_running < self.max_in_flight
        } else {
            self.calls.len().saturating_sub(self.oneway_running) < self.max_in_flight
        }
    }

    /// Whether the connection may be read: no request waits for a slot
    /// (the peer overran its window), and the one-way queue has room.
    pub(super) fn may_read(&self) -> bool {
        self.parked.is_none()
            && self.waiting.len() < self.max_in_flight.max(ONEWAY_QUEUE_MIN)
            && self.waiting_bytes < ONEWAY_QUEUE_BYTES
    }

    /// Whether no call of the peer's runs or waits to run.
    pub(super) fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.waiting.is_empty()
    }

    /// Whether a call of the peer's with this id is running (or waits for
    /// room, or still sends its stream).
    pub(super) fn in_flight(&self, id: u64) -> bool {
        self.running.contains_key(&id)
            || self.inboxes.contains_key(&id)
            || self.parked.as_ref().is_some_and(|parked| parked.id == id)
    }

    /// Sends the answer to a call that finished on the connection's task.
    pub(super) async fn answer(
        &mut self,
        id: u64,
        oneway: bool,
        result: Result<Body, RpcError>,
        reply: Option<&Mutex<Metadata>>,
    ) {
        if oneway {
            if let Err(error) = result {
                tracing::info!(id, %error, "a one-way call failed");
            }
            return;
        }
        let frame = encode_answer(
            id,
            result,
            self.peer_max_frame,
            reply,
            self.state.max_metadata,
        );
        if self.write_failed.is_some() {
            return;
        }
        let fed = timed(Out::feed_encoded(&mut self.writer, frame), self.state).await;
        self.fed(fed);
    }

    /// At the end of a shutdown's grace period, before the connection
    /// closes: ends each answer stream still open with `ShuttingDown` (the
    /// items already sent stand), so its caller learns why it ended. Calls
    /// that answer with one value are cut off with the connection: their
    /// callers see it lost, since they may have run. Writes only what fits
    /// without waiting; the caller flushes.
    pub(super) fn cut_off(&mut self) {
        self.calls.abort_all();
        let streams: Vec<u64> = self
            .running
            .iter()
            .filter(|(_, running)| running.credit.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in streams {
            let frame =
                codec::encode_response(id, Err(RpcError::ShuttingDown), self.peer_max_frame);
            if self.write_failed.is_some() {
                return;
            }
            match futures::FutureExt::now_or_never(Out::feed(&mut self.writer, frame)) {
                Some(Ok(())) => self.unflushed = true,
                Some(Err(_)) | None => return,
            }
        }
    }

    /// Adds a frame to the write buffer. When the buffer is full and the
    /// socket takes no more (the client is not reading its answers) this
    /// waits, and the connection is not read meanwhile: that is the
    /// backpressure that keeps a client which sends without reading from
    /// growing the server's memory.
    pub(super) async fn send(&mut self, frame: Bytes) {
        if self.write_failed.is_some() {
            return;
        }
        let fed = timed(Out::feed(&mut self.writer, frame), self.state).await;
        self.fed(fed);
    }

    /// Notes how handing a frame to the writer went.
    fn fed(&mut self, fed: io::Result<()>) {
        match fed {
            Ok(()) => self.unflushed = true,
            Err(e) => self.write_failed = Some(e),
        }
    }

    /// The peer closed its side: stops every call that would be answered
    /// (one-way calls run on), and the streams it was sending.
    pub(super) fn caller_gone(&mut self) {
        for (id, running) in self.running.drain() {
            tracing::debug!(peer = %self.peer.addr, id, "call stopped: its caller hung up");
            running.task.abort();
        }
        self.inboxes.clear();
    }

    /// Forgets a finished call.
    pub(super) fn finished(
        &mut self,
        done: Result<(tokio::task::Id, (u64, bool)), tokio::task::JoinError>,
    ) {
        match done {
            Ok((_, (_, true))) => self.oneway_running = self.oneway_running.saturating_sub(1),
            Ok((task, (id, false))) => {
                if self
                    .running
                    .get(&id)
                    .is_some_and(|running| running.task.id() == task)
                {
                    self.running.remove(&id);
                    self.inboxes.remove(&id);
                }
            }
            // Only tasks in `running` are aborted, and every task catches
            // its panics: a failed task is never a one-way call.
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

impl<'a> Dispatch<'a, QueueOut> {
    /// The calls a server makes to a client that serves, dispatched by the
    /// client's reader: answers go to the client's writer task.
    pub(super) fn for_channel(
        state: &'a Serving,
        peer: Arc<Peer>,
        peer_max_frame: usize,
        writer: mpsc::Sender<Outgoing>,
        responses: mpsc::Sender<Bytes>,
        control: mpsc::UnboundedSender<Bytes>,
    ) -> Self {
        Dispatch::new(
            state,
            peer,
            peer_max_frame,
            QueueOut(writer),
            responses,
            control,
            1,
        )
    }

    /// Handles a frame about a call the server made; `Err` with a goodbye
    /// when the connection must close.
    pub(super) async fn peer_frame(&mut self, payload: Bytes) -> Result<(), Option<Bytes>> {
        match self.frame(payload).await {
            Next::Continue => Ok(()),
            Next::Stop(goodbye) => Err(goodbye),
        }
    }

    /// Waits for one of the calls to finish, and forgets it.
    pub(super) async fn reap(&mut self) {
        if let Some(done) = self.calls.join_next_with_id().await {
            self.finished(done);
            self.unpark().await;
        }
    }

    /// Whether a call is running.
    pub(super) fn busy(&self) -> bool {
        !self.calls.is_empty()
    }

    /// Whether the connection may be read (see [`Dispatch::may_read`]).
    pub(super) fn reading(&self) -> bool {
        self.may_read()
    }

    /// Sends the answer of a call that ran as its own task.
    pub(super) async fn answer_from_task(&mut self, frame: Bytes) -> Result<(), io::Error> {
        self.send(frame).await;
        match self.write_failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The response frame of call `id`: with the metadata its handler attached
/// when the caller reads it (`reply`).
pub(super) fn encode_answer(
    id: u64,
    result: Result<Body, RpcError>,
    limit: usize,
    reply: Option<&Mutex<Metadata>>,
    max_metadata: usize,
) -> BytesMut {
    match reply {
        // Code 3 says the call does not fit the method (its arguments did
        // not decode, or its streams are not the method's), which is
        // nearly always found before the handler runs: like every error
        // sent then, it carries no metadata (section 5.1).
        None => codec::response_frame(id, result, limit),
        Some(_) if matches!(result, Err(RpcError::BadRequest { .. })) => {
            codec::response_frame(id, result, limit)
        }
        Some(reply) => {
            let metadata = reply
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            codec::encode_response_with(id, result, limit, &metadata, max_metadata)
        }
    }
}

/// `feed`, within `state`'s write timeout. Nearly always there is room in
/// the buffer; only a write that has to wait for the peer to read is timed.
async fn timed(feed: impl Future<Output = io::Result<()>>, state: &Serving) -> io::Result<()> {
    tokio::pin!(feed);
    if let Some(fed) = futures::FutureExt::now_or_never(&mut feed) {
        return fed;
    }
    let limit = state.write_timeout;
    tokio::select! {
        fed = &mut feed => fed,
        () = tokio::time::sleep(limit) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer read nothing for {limit:?} while answers waited"),
        )),
        () = state.kill.cancelled() => Err(io::Error::other("the server was stopped")),
    }
}
