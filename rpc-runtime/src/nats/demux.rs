//! The server's demultiplexer: every message of its subscriptions goes
//! to the session of the caller (inbox) it is from, a new one for a
//! caller's first call; pings are answered here, and NATS service
//! discovery too.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures::stream::{SelectAll, StreamExt};
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::telemetry::{self, Transport};
use crate::transport::PeerAddr;
use crate::wire::frame::{code, flags, Message};
use crate::wire::{codec, route};

use super::held::{Arrival, Held};
use super::micro::Stats;
use super::server_link::{Outbox, ServerLink};
use super::subjects::{inbox_of, reply_to};
use super::NATS_VERSION;
use crate::wire::version::{OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// What the demultiplexer reads of a message about a call.
#[derive(Default, Clone, Copy)]
struct Call {
    /// A request's method id.
    method: u32,
    /// A request's time left.
    timeout: Option<Duration>,
    /// A cancel.
    cancel: bool,
}

/// The header in which a request over NATS names its protocol version.
const VERSION_HEADER: &str = "Rpc-Version";

/// The protocol version of a request with `headers`: version 3 without
/// the header (section 10.5); the refusal's message when this server does
/// not speak it.
fn request_version(headers: Option<&async_nats::HeaderMap>) -> Result<u32, String> {
    let Some(value) = headers.and_then(|headers| headers.get(VERSION_HEADER)) else {
        return Ok(NATS_VERSION);
    };
    match value.as_str().trim().parse::<u32>() {
        Ok(version) if (OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) => {
            Ok(version)
        }
        _ => Err(format!(
            "unsupported protocol version {:?}; this server speaks {}",
            value.as_str(),
            crate::error::versions(OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION)
        )),
    }
}

/// New sessions between two sweeps of the ended ones.
const SWEEP_EVERY: usize = 256;

/// One caller's session, as the demultiplexer feeds it.
struct Caller {
    frames: mpsc::Sender<Bytes>,
    /// The link's unanswered calls (gone with the link).
    held: Weak<Held>,
}

impl Call {
    /// What the session's link keeps of request `call` with `call_flags`
    /// and its own reply subject `own`; nothing for a one-way call.
    fn arrival(&self, call_flags: u8, own: Option<Subject>) -> Option<Arrival> {
        (call_flags & flags::ONEWAY == 0).then(|| Arrival {
            method: self.method,
            timeout: self.timeout,
            // A call that sends a stream is claimed at once.
            known: call_flags & flags::STREAM_IN != 0,
            reply: own,
        })
    }
}

impl Caller {
    /// Request `id` goes to the session (recorded first: the session may
    /// answer it at once).
    fn took(&self, id: u64, arrival: Option<Arrival>) {
        if let (Some(arrival), Some(held)) = (arrival, self.held.upgrade()) {
            held.arrived(id, arrival);
        }
    }

    /// The caller cancelled call `id`.
    fn cancelled(&self, id: u64) {
        if let Some(held) = self.held.upgrade() {
            held.cancelled(id);
        }
    }
}

/// Hands each message to its caller's session, opening one for a caller
/// that has none.
pub(super) struct Demux {
    client: Client,
    from: Subject,
    max_payload: usize,
    queue: usize,
    links: mpsc::Sender<(ServerLink, PeerAddr)>,
    callers: HashMap<String, Caller>,
    opened: usize,
    taking: CancellationToken,
    stats: Arc<Stats>,
}

impl Demux {
    /// A demultiplexer publishing as `from` through `client`, handing new
    /// sessions to `links`; it stops opening them once `taking` fires.
    pub(super) fn new(
        client: Client,
        from: Subject,
        max_payload: usize,
        queue: usize,
        links: mpsc::Sender<(ServerLink, PeerAddr)>,
        taking: CancellationToken,
        stats: Arc<Stats>,
    ) -> Self {
        Demux {
            client,
            from,
            max_payload,
            queue,
            links,
            callers: HashMap::new(),
            opened: 0,
            taking,
            stats,
        }
    }

    /// Runs until `stop`: the calls' subscriptions, the server's own, and
    /// the discovery ones.
    pub(super) async fn run(
        mut self,
        mut calls: SelectAll<Subscriber>,
        mut own: Subscriber,
        mut discovery: SelectAll<Subscriber>,
        stop: CancellationToken,
    ) {
        let mut leaving = false;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = self.taking.cancelled(), if !leaving => {
                    leaving = true;
                    self.leave(&mut calls).await;
                }
                Some(message) = own.next() => self.message(message).await,
                Some(message) = calls.next(), if !calls.is_empty() => self.message(message).await,
                Some(message) = discovery.next(), if !discovery.is_empty() => self.discovery(message).await,
                else => break,
            }
        }
    }

    /// Leaves the queue groups and fanout subjects, drained: the calls NATS
    /// had already sent this way still arrive, and are answered "shutting
    /// down", unrun, so that their callers send them elsewhere.
    async fn leave(&mut self, calls: &mut SelectAll<Subscriber>) {
        for subscription in calls.iter_mut() {
            let _ = subscription.drain().await;
        }
        // Once NATS has answered this, every call it sent before the
        // drain is in the subscriptions.
        let _ = self.client.flush().await;
        while let Some(Some(message)) = calls.next().now_or_never() {
            self.message(message).await;
        }
        calls.clear();
    }

    /// Answers a NATS service discovery request.
    async fn discovery(&self, message: async_nats::Message) {
        let Some(reply) = message.reply else { return };
        for answer in self.stats.answer(&message.subject) {
            let _ = self.client.publish(reply.clone(), answer).await;
        }
    }

    async fn message(&mut self, message: async_nats::Message) {
        if message.status.is_some() {
            return;
        }
        let async_nats::Message {
            reply,
            payload,
            headers,
            ..
        } = message;
        telemetry::bytes(Transport::Nats)
            .1
            .increment(payload.len() as u64);
        let mut call = Call::default();
        let decoded = codec::decode_message(&payload);
        let undecodable = decoded.is_err();
        let (kind, id, call_flags, is_request) = match decoded {
            Ok((
                message @ Message::Request {
                    id,
                    flags,
                    method,
                    timeout,
                },
                _,
            )) => {
                call.method = u32::from_le_bytes(method);
                call.timeout = route::timeout_from_wire(timeout).map(Duration::from_micros);
                self.stats.request(call.method);
                if let Err(why) = request_version(headers.as_ref()) {
                    return self
                        .refuse(reply.as_ref(), id, flags, code::VERSION_MISMATCH, &why)
                        .await;
                }
                if reply.is_none() && flags & flags::ONEWAY == 0 {
                    // Nobody would read its answer: only one-way requests
                    // may come without a reply subject (section 10.1).
                    tracing::debug!(
                        id,
                        "dropped a request without a reply subject that is not one-way"
                    );
                    return;
                }
                (message.kind(), id, flags, true)
            }
            Ok((Message::Cancel { id }, _)) => {
                call.cancel = true;
                ("a cancel", id, 0, false)
            }
            // A caller asking whether this server still has its calls: it
            // has them while their session lives.
            Ok((Message::Ping { nonce }, _)) => {
                let live = reply.as_deref().is_some_and(|reply| {
                    self.callers
                        .get(inbox_of(reply))
                        .is_some_and(|caller| !caller.frames.is_closed())
                });
                if let (true, Some(reply)) = (live, reply) {
                    let pong = codec::encode_control(&Message::Pong { nonce });
                    let _ = self
                        .client
                        .publish_with_reply(reply, self.from.clone(), pong)
                        .await;
                }
                return;
            }
            Ok((message, _)) => (message.kind(), message.call_id().unwrap_or(0), 0, false),
            Err(_) => ("a frame that does not decode", 0, 0, false),
        };
        // The caller's inbox: the reply subject without its last token.
        let key = reply.as_deref().map_or("", inbox_of);
        // A reply subject that is not `<inbox>.<id>`: a plain NATS client's.
        let own = reply
            .as_ref()
            .filter(|reply| {
                is_request
                    && reply
                        .rsplit_once('.')
                        .is_none_or(|(_, last)| last.parse() != Ok(id))
            })
            .cloned();
        let payload = match self.callers.get(key) {
            Some(caller) if !caller.frames.is_closed() => {
                if is_request {
                    caller.took(id, call.arrival(call_flags, own.clone()));
                }
                match caller.frames.try_send(payload) {
                    Ok(()) => {
                        if call.cancel {
                            caller.cancelled(id);
                        }
                        if call_flags & flags::STREAM_IN != 0 {
                            self.claim(reply.as_ref(), id).await;
                        }
                        return;
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if is_request {
                            caller.cancelled(id);
                            self.refuse(
                                reply.as_ref(),
                                id,
                                call_flags,
                                code::SERVER_BUSY,
                                "too many of this caller's calls wait for the server",
                            )
                            .await;
                        }
                        return;
                    }
                    // Ended just now: a new session takes the call.
                    Err(mpsc::error::TrySendError::Closed(payload)) => payload,
                }
            }
            _ => payload,
        };
        self.callers.remove(key);
        if !is_request {
            if undecodable {
                // As over a connection, a frame that does not decode ends
                // the caller's session: it is told so (section 10.1).
                return self.protocol_error(reply.as_ref()).await;
            }
            tracing::debug!(
                caller = key,
                kind,
                "dropped a message for a call this server does not have"
            );
            return;
        }
        self.open(key, reply.clone(), payload, (id, call, call_flags), own)
            .await;
    }

    /// A new session for the caller `key`, with its first request.
    async fn open(
        &mut self,
        key: &str,
        reply: Option<Subject>,
        payload: Bytes,
        (id, call, call_flags): (u64, Call, u8),
        own: Option<Subject>,
    ) {
        if self.taking.is_cancelled() {
            return self
                .refuse(
                    reply.as_ref(),
                    id,
                    call_flags,
                    code::SHUTTING_DOWN,
                    "the server is shutting down",
                )
                .await;
        }
        let inbox = reply.as_ref().map(|_| Arc::<str>::from(key));
        let outbox = Outbox::new(
            self.client.clone(),
            inbox,
            self.from.clone(),
            Arc::clone(&self.stats),
        );
        if let Some(arrival) = call.arrival(call_flags, own) {
            outbox.held().arrived(id, arrival);
        }
        let held = Arc::downgrade(outbox.held());
        let (frames, queued) = mpsc::channel(self.queue);
        // A fresh queue has room for one.
        let _ = frames.try_send(payload);
        let link = ServerLink::new(queued, outbox, self.max_payload);
        if self
            .links
            .send((link, PeerAddr::Broker(key.to_owned())))
            .await
            .is_err()
        {
            return;
        }
        self.callers.insert(key.to_owned(), Caller { frames, held });
        if call_flags & flags::STREAM_IN != 0 {
            self.claim(reply.as_ref(), id).await;
        }
        self.opened += 1;
        if self.opened.is_multiple_of(SWEEP_EVERY) {
            self.callers.retain(|_, caller| !caller.frames.is_closed());
        }
    }

    /// Tells the caller this server has call `id` (a credit of no items),
    /// so that what it sends with the call (a stream) comes here.
    async fn claim(&self, reply: Option<&Subject>, id: u64) {
        if let Some(reply) = reply {
            let claim = codec::encode_control(&Message::Credit { id, items: 0 });
            let _ = self
                .client
                .publish_with_reply(reply.clone(), self.from.clone(), claim)
                .await;
        }
    }

    /// Tells the caller whose reply subject is `reply` that its last
    /// message did not decode: a goodbye with code 8 on `<inbox>.0`, as a
    /// session that read it says.
    async fn protocol_error(&self, reply: Option<&Subject>) {
        let Some(reply) = reply else {
            tracing::debug!("dropped a frame that does not decode, from nobody to tell");
            return;
        };
        tracing::info!(caller = %reply, "a caller sent a frame that does not decode");
        let goodbye = codec::encode_goodbye(code::PROTOCOL, "a frame did not decode");
        let _ = self
            .client
            .publish_with_reply(
                Subject::from(reply_to(inbox_of(reply), 0)),
                self.from.clone(),
                goodbye,
            )
            .await;
    }

    /// Answers request `id` with `code`, unrun (unless it is one-way).
    async fn refuse(
        &self,
        reply: Option<&Subject>,
        id: u64,
        call_flags: u8,
        code: u32,
        message: &str,
    ) {
        let Some(reply) = reply else { return };
        if call_flags & flags::ONEWAY != 0 {
            return;
        }
        let refusal = codec::encode_refusal(id, code, message, &[], self.max_payload);
        let _ = self
            .client
            .publish_with_reply(reply.clone(), self.from.clone(), refusal)
            .await;
    }
}
