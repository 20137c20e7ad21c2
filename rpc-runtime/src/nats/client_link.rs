//! A caller's link for one service over NATS: its requests go to the
//! service's subject (or one server's), every later message of a call to
//! the server that took it, and everything comes back on the link's inbox.
//!
//! Each call's reply subject is `<inbox>.<id>`, so that the NATS server's
//! "no responders" status names the call it is about. Every message from
//! a server carries the server's instance subject as its reply subject:
//! the link learns there where a call's later messages (cancel, credit,
//! the items of the stream it sends) go. Until it knows, a cancel goes to
//! every server of the service, and the rest waits.
//!
//! Like the server's link, it answers the session's greeting itself.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_nats::{Client, StatusCode, Subject, Subscriber};
use bytes::Bytes;
use futures::{Future, Stream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::link::negotiate::Offer;
use crate::link::{FrameRead, Link};
use crate::wire::codec;
use crate::wire::frame::{code, flags, Message, ROLE_LISTENER};
use crate::wire::version::Extensions;

use super::publish::{publish_error, Publisher};
use super::subjects::{reply_to, split_reply};
use super::NATS_VERSION;
use crate::telemetry::{self, Transport};

/// Messages of calls whose server is not known yet, kept per call at
/// most (a stream's window and its end fit well within).
const MAX_WAITING: usize = 256;

/// Messages the reader skips in one poll before it lets others run.
const SKIP_BUDGET: usize = 64;

/// What a link's halves share: where each call's messages go.
pub(super) struct Routes {
    inbox: String,
    /// Where requests go: the service's subject, or one server's.
    to: Subject,
    /// Where a cancel goes while a call's server is not known.
    everyone: Subject,
    /// The service, for errors.
    service: String,
    calls: Mutex<HashMap<u64, Route>>,
    client: Client,
    /// Pings out, by nonce (even numbers: call ids are odd), and the
    /// server each asks.
    probes: Mutex<HashMap<u64, Subject>>,
    next_nonce: AtomicU64,
    /// Answers the link makes up for the session: the calls of a server
    /// that went away.
    made_up: mpsc::UnboundedSender<Bytes>,
    max_in: usize,
}

/// Where one call's messages go.
struct Route {
    server: Option<Subject>,
    /// Messages for the server, in order, while it is unknown or while
    /// earlier ones are still being sent.
    waiting: Vec<Bytes>,
    /// Whether a task is sending what waited.
    flushing: bool,
    sent: Instant,
}

/// One message to publish.
pub(super) struct Publish {
    subject: Subject,
    reply: Subject,
    frame: Bytes,
}

impl Routes {
    fn reply(&self, id: u64) -> Subject {
        Subject::from(reply_to(&self.inbox, id))
    }

    /// Where `frame` goes, or `None` when it waits for its call's server
    /// (or goes nowhere).
    fn route(&self, frame: Bytes) -> Option<Publish> {
        let message = match codec::decode_message(&frame) {
            Ok((message, _)) => message,
            Err(_) => return None,
        };
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let subject = match message {
            Message::Request { id, flags: f, .. } => {
                if f & flags::ONEWAY == 0 {
                    let route = Route {
                        server: None,
                        waiting: Vec::new(),
                        flushing: false,
                        sent: Instant::now(),
                    };
                    calls.insert(id, route);
                }
                self.to.clone()
            }
            Message::Cancel { id } => match calls.remove(&id) {
                Some(Route {
                    server: Some(server),
                    ..
                }) => server,
                _ => self.everyone.clone(),
            },
            Message::Credit { id, .. } | Message::Item { id } | Message::End { id, .. } => {
                match calls.get_mut(&id) {
                    Some(Route {
                        server: Some(server),
                        waiting,
                        flushing: false,
                        ..
                    }) if waiting.is_empty() => server.clone(),
                    Some(route) => {
                        if route.waiting.len() < MAX_WAITING {
                            route.waiting.push(frame);
                        }
                        return None;
                    }
                    None => return None,
                }
            }
            // Keepalive and goodbyes are the NATS connection's business.
            _ => return None,
        };
        let id = message.call_id().unwrap_or(0);
        drop(calls);
        Some(Publish {
            subject,
            reply: self.reply(id),
            frame,
        })
    }

    /// A message about call `id` came from `server`; the call is over
    /// after it when `last`.
    fn heard(self: &Arc<Self>, id: u64, server: Option<Subject>, last: bool) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if last {
            calls.remove(&id);
            return;
        }
        let (Some(route), Some(server)) = (calls.get_mut(&id), server) else {
            return;
        };
        if route.server.is_none() {
            route.server = Some(server);
            if !route.waiting.is_empty() {
                route.flushing = true;
                tokio::spawn(flush(Arc::clone(self), id));
            }
        }
    }

    /// What waits for call `id`'s server, and the server; `None` (and the
    /// flush is over) once nothing waits.
    fn take_waiting(&self, id: u64) -> Option<(Subject, Vec<Bytes>)> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let route = calls.get_mut(&id)?;
        let server = route.server.clone()?;
        if route.waiting.is_empty() {
            route.flushing = false;
            return None;
        }
        Some((server, std::mem::take(&mut route.waiting)))
    }

    /// Fails every call `server` has: it went away.
    fn lost(&self, server: &Subject) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let text = format!(
            "the server that took the call ({server}) went away before answering; the call may have run"
        );
        self.give_up(
            &mut calls,
            |route| route.server.as_ref() == Some(server),
            &text,
        );
    }

    /// Forgets the calls `gone` picks, answering each with [`code::LOST`]
    /// and `text` for the session.
    fn give_up(&self, calls: &mut HashMap<u64, Route>, gone: impl Fn(&Route) -> bool, text: &str) {
        calls.retain(|id, route| {
            if !gone(route) {
                return true;
            }
            let frame = codec::encode_refusal(*id, code::LOST, text, &[], self.max_in);
            let _ = self.made_up.send(frame);
            false
        });
    }

    /// The ping `nonce` was answered.
    fn ponged(&self, nonce: u64) {
        self.probes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&nonce);
    }

    /// The ping `nonce` found nobody: its server is gone.
    fn unreachable(&self, nonce: u64) {
        let server = self
            .probes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&nonce);
        if let Some(server) = server {
            self.lost(&server);
        }
    }

    /// One round of the liveness check, `every` apart: servers whose last
    /// ping went unanswered have gone, and so have calls no server claimed
    /// within a round; the servers still holding calls are asked again
    /// (the pings to send, by nonce).
    fn probe(&self, every: std::time::Duration) -> Vec<(u64, Subject)> {
        let silent: Vec<Subject> = self
            .probes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, server)| server)
            .collect();
        for server in &silent {
            self.lost(server);
        }
        let now = Instant::now();
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let text = format!(
            "no server claimed the call within {every:?} (the one that took it went away, or NATS lost it); the call may have run"
        );
        self.give_up(
            &mut calls,
            |route| route.server.is_none() && now.duration_since(route.sent) >= every,
            &text,
        );
        let mut servers: Vec<Subject> = calls.values().filter_map(|r| r.server.clone()).collect();
        drop(calls);
        servers.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        servers.dedup();
        let mut probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        servers
            .into_iter()
            .map(|server| {
                let nonce = self.next_nonce.fetch_add(2, Ordering::Relaxed);
                probes.insert(nonce, server.clone());
                (nonce, server)
            })
            .collect()
    }

    /// Forgets call `id` (its answer came, or never will).
    fn forget(&self, id: u64) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// How a link is made.
pub(super) struct LinkParts {
    pub client: Client,
    pub inbox: String,
    pub subscription: Subscriber,
    /// Where requests go, and cancels of calls whose server is unknown.
    pub to: String,
    pub everyone: String,
    pub service: String,
    pub max_payload: usize,
    /// Calls the link keeps in flight at most.
    pub max_in_flight: usize,
    /// Ends the link: the NATS connection was lost.
    pub lost: WaitForCancellationFutureOwned,
    /// How often the servers holding calls are asked whether they are
    /// still there.
    pub liveness: std::time::Duration,
}

/// A caller's link for one service.
pub(super) struct ClientLink {
    reader: ClientReader,
    writer: Publisher,
    max_payload: usize,
    max_in_flight: usize,
    greeted: bool,
}

impl ClientLink {
    /// The link, and the task that publishes its messages in order.
    pub(super) fn new(parts: LinkParts) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (made_up, made_up_rx) = mpsc::unbounded_channel();
        let routes = Arc::new(Routes {
            inbox: parts.inbox,
            to: Subject::from(parts.to),
            everyone: Subject::from(parts.everyone),
            service: parts.service,
            calls: Mutex::new(HashMap::new()),
            client: parts.client.clone(),
            probes: Mutex::new(HashMap::new()),
            next_nonce: AtomicU64::new(2),
            made_up,
            max_in: parts.max_payload,
        });
        let liveness = liveness_loop(parts.client, Arc::downgrade(&routes), parts.liveness);
        let writer = Publisher::new(
            Arc::clone(&routes),
            |routes: Arc<Routes>, frame| async move {
                if let Some(publish) = routes.route(frame) {
                    telemetry::bytes(Transport::Nats)
                        .0
                        .increment(publish.frame.len() as u64);
                    routes
                        .client
                        .publish_with_reply(publish.subject, publish.reply, publish.frame)
                        .await
                        .map_err(publish_error)?;
                }
                Ok(routes)
            },
        );
        let link = ClientLink {
            reader: ClientReader {
                subscription: parts.subscription,
                routes,
                lost: Box::pin(parts.lost),
                made_up: made_up_rx,
                max_in: parts.max_payload,
            },
            writer,
            max_payload: parts.max_payload,
            max_in_flight: parts.max_in_flight,
            greeted: false,
        };
        (link, liveness)
    }
}

/// Sends, in order, what waited for call `id`'s server, including what
/// is added meanwhile.
async fn flush(routes: Arc<Routes>, id: u64) {
    while let Some((server, waiting)) = routes.take_waiting(id) {
        for frame in waiting {
            let reply = routes.reply(id);
            if routes
                .client
                .publish_with_reply(server.clone(), reply, frame)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Asks the servers holding calls of the link whether they are still
/// there, every `every`, until the link is gone.
async fn liveness_loop(
    client: Client,
    routes: std::sync::Weak<Routes>,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(routes) = routes.upgrade() else {
            return;
        };
        for (nonce, server) in routes.probe(every) {
            let ping = codec::encode_control(&Message::Ping { nonce });
            let reply = routes.reply(nonce);
            if client
                .publish_with_reply(server, reply, ping)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

impl Link for ClientLink {
    type Read = ClientReader;
    type Write = Publisher;

    async fn send(&mut self, _frame: Bytes) -> io::Result<()> {
        // The session's greeting: no server needs it.
        Ok(())
    }

    async fn recv(&mut self, _limit: usize) -> io::Result<Option<Bytes>> {
        if self.greeted {
            return Ok(None);
        }
        self.greeted = true;
        // What the servers' greeting would say (section 10 of
        // docs/PROTOCOL.md): requests without a version header are of
        // version 3, and frames over NATS are not compressed.
        Ok(Some(
            Offer::new(self.max_payload, self.max_in_flight, Extensions::none())
                .up_to(NATS_VERSION)
                .greeting(ROLE_LISTENER),
        ))
    }

    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn split(self, max_in: usize, _max_out: usize) -> (ClientReader, Publisher) {
        let mut reader = self.reader;
        reader.max_in = reader.max_in.min(max_in);
        (reader, self.writer)
    }
}

/// The reading half: the link's inbox.
pub(super) struct ClientReader {
    subscription: Subscriber,
    routes: Arc<Routes>,
    lost: Pin<Box<WaitForCancellationFutureOwned>>,
    made_up: mpsc::UnboundedReceiver<Bytes>,
    max_in: usize,
}

impl ClientReader {
    /// The frame `message` stands for, if any.
    fn frame(&self, message: async_nats::Message) -> Option<io::Result<Bytes>> {
        if let Some(status) = message.status {
            if status != StatusCode::NO_RESPONDERS {
                return None;
            }
            let (_, id) = split_reply(&message.subject)?;
            if id % 2 == 0 {
                // A ping's: the server it asked is gone.
                self.routes.unreachable(id);
                return None;
            }
            self.routes.forget(id);
            let routes = &self.routes;
            let text = format!(
                "no server serves `{}`: nothing subscribes to `{}`",
                routes.service, routes.to
            );
            return Some(Ok(codec::encode_refusal(
                id,
                code::UNAVAILABLE,
                &text,
                &[],
                self.max_in,
            )));
        }
        let frame = message.payload;
        telemetry::bytes(Transport::Nats)
            .1
            .increment(frame.len() as u64);
        if frame.len() > self.max_in {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message of {} bytes", frame.len()),
            )));
        }
        match codec::decode_message(&frame) {
            // A server saying it took the call: nothing for the session.
            Ok((Message::Credit { id, items: 0 }, _)) => {
                self.routes.heard(id, message.reply, false);
                None
            }
            Ok((Message::Pong { nonce }, _)) => {
                self.routes.ponged(nonce);
                None
            }
            // A server's goodbye is about its own calls, not the link
            // (which other servers share): those it still had are lost.
            Ok((Message::Goodbye { .. }, _)) => {
                if let Some(server) = &message.reply {
                    self.routes.lost(server);
                }
                None
            }
            Ok((message_header, _)) => {
                let id = message_header.call_id()?;
                let last = matches!(message_header, Message::Response { .. });
                self.routes.heard(id, message.reply, last);
                Some(Ok(frame))
            }
            // The session says what is wrong with it.
            Err(_) => Some(Ok(frame)),
        }
    }
}

impl Stream for ClientReader {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.lost.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection to the NATS server was lost",
            ))));
        }
        if let Poll::Ready(Some(frame)) = self.made_up.poll_recv(cx) {
            return Poll::Ready(Some(Ok(frame)));
        }
        // Messages that stand for no frame are skipped, a bounded number
        // per poll.
        for _ in 0..SKIP_BUDGET {
            match Pin::new(&mut self.subscription).poll_next(cx) {
                Poll::Ready(Some(message)) => {
                    if let Some(frame) = self.frame(message) {
                        return Poll::Ready(Some(frame));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl FrameRead for ClientReader {}
