//! The server end over NATS: a [`Server`] whose connections are callers,
//! one per inbox, fed by a demultiplexer of the server's subscriptions.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures::stream::{SelectAll, StreamExt};
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::health::HealthReporter;
use crate::link::LinkListener;
use crate::server::{Server, ServerBuilder};
use crate::transport::PeerAddr;
use crate::wire::codec;
use crate::wire::frame::{code, flags, Message};

use super::held::Held;
use super::micro::Stats;
use super::server_link::{Outbox, Replies, ServerLink};
use super::subjects::{check, Subjects, DEFAULT_PREFIX};

/// Default number of a caller's messages that may wait for its session.
const DEFAULT_CALLER_QUEUE: usize = 1024;
/// Default time a caller's session lasts without calls.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// New sessions between two sweeps of the ended ones.
const SWEEP_EVERY: usize = 256;

/// How a server serves over NATS: the subjects, its name, its queue
/// groups.
///
/// ```
/// use rpc_runtime::nats::ServeOptions;
/// let options = ServeOptions::new()
///     .prefix("billing")
///     .instance("billing-eu-1")
///     .queue_group("example.KeyValue", "kv-eu");
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    prefix: String,
    instance: Option<String>,
    groups: HashMap<String, String>,
    caller_queue: usize,
    idle: Duration,
    version: String,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            instance: None,
            groups: HashMap::new(),
            caller_queue: DEFAULT_CALLER_QUEUE,
            idle: DEFAULT_IDLE,
            version: "0.0.0".to_owned(),
        }
    }
}

impl ServeOptions {
    /// The defaults: prefix `rpc`, a random instance name, each service in
    /// the queue group named after it.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The first token(s) of every subject (default `rpc`): servers and
    /// clients of one deployment agree on it.
    ///
    /// ```
    /// let options = rpc_runtime::nats::ServeOptions::new().prefix("staging.rpc");
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This server's name (default: a random one): its instance subject
    /// is `<prefix>.instance.<name>`, where targeted calls reach it. Two
    /// servers must not share a name.
    ///
    /// ```
    /// let options = rpc_runtime::nats::ServeOptions::new().instance("kv-1");
    /// ```
    #[must_use]
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// The queue group `service` is served in (default: the service's
    /// wire name). NATS hands each call to one server of the group;
    /// servers in different groups each get every call.
    ///
    /// ```
    /// let options = rpc_runtime::nats::ServeOptions::new().queue_group("example.KeyValue", "kv-eu");
    /// ```
    #[must_use]
    pub fn queue_group(mut self, service: impl Into<String>, group: impl Into<String>) -> Self {
        self.groups.insert(service.into(), group.into());
        self
    }

    /// The version NATS service discovery reports for this server's
    /// services (`$SRV.INFO`; a semantic version, default `0.0.0`).
    ///
    /// ```
    /// let options = rpc_runtime::nats::ServeOptions::new().version(env!("CARGO_PKG_VERSION"));
    /// ```
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// How many of one caller's messages may wait for its session (default
    /// 1024); a call beyond that is refused with
    /// [`RpcError::ServerBusy`](crate::RpcError::ServerBusy), unrun.
    ///
    /// ```
    /// let options = rpc_runtime::nats::ServeOptions::new().caller_queue(4096);
    /// ```
    #[must_use]
    pub fn caller_queue(mut self, messages: usize) -> Self {
        self.caller_queue = messages.max(1);
        self
    }

    /// How long a caller's session lasts without calls, where the server
    /// builder sets no idle timeout (default 60 s). Callers over NATS go
    /// away without a word; their sessions end so.
    ///
    /// ```
    /// let options = rpc_runtime::nats::ServeOptions::new().idle(std::time::Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }
}

/// Where a server over NATS is reached: its instance subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsAddr {
    /// The server's name.
    pub instance: String,
    /// Its instance subject.
    pub subject: String,
}

/// A server serving over NATS (see [`serve`]).
///
/// Dropping it leaves it serving; [`shutdown`](Self::shutdown) stops it
/// gracefully, [`abort`](Self::abort) at once.
pub struct NatsServer {
    server: Server<NatsAddr>,
    /// Cancelled to stop taking calls (shutdown).
    taking: CancellationToken,
    /// Cancelled to stop the demultiplexer.
    stop: CancellationToken,
    demux: JoinHandle<()>,
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("addr", &self.server.local_addr())
            .finish_non_exhaustive()
    }
}

/// Serves `builder`'s services over NATS through `client`: each service
/// on `<prefix>.call.<service>` in its queue group and on
/// `<prefix>.fanout.<service>`, and the server on its instance subject
/// `<prefix>.instance.<name>` (section 10 of `docs/PROTOCOL.md`).
/// Returns once NATS has the subscriptions, so a call made next finds it.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let nats = async_nats::connect("127.0.0.1:4222").await?;
/// let builder = rpc_runtime::Server::builder(); // .add_service(...)
/// let server = rpc_runtime::nats::serve(nats, builder, Default::default()).await?;
/// println!("serving as {}", server.instance());
/// # Ok(()) }
/// ```
///
/// # Errors
/// When a name cannot be part of a subject, two services share a name,
/// or NATS refuses a subscription.
pub async fn serve(
    client: Client,
    builder: ServerBuilder,
    options: ServeOptions,
) -> io::Result<NatsServer> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let subjects = Subjects::new(&options.prefix).map_err(invalid)?;
    let instance = match options.instance {
        Some(name) => name,
        None => random_name(&client),
    };
    check("the instance name", &instance).map_err(invalid)?;
    let from = subjects.instance(&instance);
    let max_payload = client.server_info().max_payload;
    let (links, accepted) = mpsc::channel(64);
    let listener = NatsListener {
        links: accepted,
        addr: NatsAddr {
            instance: instance.clone(),
            subject: from.clone(),
        },
    };
    let server = builder
        .idle_timeout_or(options.idle)
        .serve_links(listener)?;
    let names = server.service_names().to_vec();
    let stats = Arc::new(Stats::new(
        &instance,
        &options.version,
        &subjects,
        server.routes().methods(),
        |service| {
            options
                .groups
                .get(service)
                .cloned()
                .unwrap_or_else(|| service.to_owned())
        },
    ));
    let subscribed = async {
        let mut calls = SelectAll::new();
        for name in &names {
            check(format_args!("the service name"), name).map_err(invalid)?;
            let group = options.groups.get(name).unwrap_or(name);
            calls.push(
                client
                    .queue_subscribe(subjects.call(name), group.clone())
                    .await
                    .map_err(subscribe_error)?,
            );
            calls.push(
                client
                    .subscribe(subjects.fanout(name))
                    .await
                    .map_err(subscribe_error)?,
            );
        }
        let own = client
            .subscribe(from.clone())
            .await
            .map_err(subscribe_error)?;
        let mut discovery = SelectAll::new();
        for subject in stats.subjects() {
            discovery.push(client.subscribe(subject).await.map_err(subscribe_error)?);
        }
        client.flush().await.map_err(subscribe_error)?;
        Ok::<_, io::Error>((calls, own, discovery))
    };
    let (calls, own, discovery) = match subscribed.await {
        Ok(subscribed) => subscribed,
        Err(e) => {
            server.abort().await;
            return Err(e);
        }
    };
    let taking = CancellationToken::new();
    let stop = CancellationToken::new();
    let demux = Demux {
        client,
        from: Subject::from(from),
        max_payload,
        queue: options.caller_queue,
        links,
        callers: HashMap::new(),
        opened: 0,
        taking: taking.clone(),
        stats,
    };
    let demux = tokio::spawn(demux.run(calls, own, discovery, stop.clone()));
    tracing::debug!(%instance, services = ?names, "serving over NATS");
    Ok(NatsServer {
        server,
        taking,
        stop,
        demux,
    })
}

impl NatsServer {
    /// This server's name.
    #[must_use]
    pub fn instance(&self) -> String {
        self.server.local_addr().instance
    }

    /// Its name and instance subject.
    #[must_use]
    pub fn addr(&self) -> NatsAddr {
        self.server.local_addr()
    }

    /// What its health service reports.
    #[must_use]
    pub fn health(&self) -> HealthReporter {
        self.server.health()
    }

    /// Calls running now.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.server.in_flight()
    }

    /// Callers with a session open now.
    #[must_use]
    pub fn callers(&self) -> usize {
        self.server.connections()
    }

    /// Stops gracefully: it leaves its queue groups at once (NATS hands
    /// new calls to the other servers), answers calls that still reach it
    /// with [`RpcError::ShuttingDown`](crate::RpcError::ShuttingDown)
    /// unrun (callers send them again elsewhere), lets running calls
    /// finish as [`Server::shutdown`] does, then unsubscribes the rest.
    pub fn shutdown(self) -> impl Future<Output = ()> + Send + 'static {
        self.taking.cancel();
        let stopped = self.server.shutdown();
        let (stop, demux) = (self.stop, self.demux);
        async move {
            stopped.await;
            stop.cancel();
            let _ = demux.await;
        }
    }

    /// Stops at once, as a crash would: every running call is dropped and
    /// every subscription goes.
    pub fn abort(self) -> impl Future<Output = ()> + Send + 'static {
        self.stop.cancel();
        self.demux.abort();
        self.server.abort()
    }
}

/// A name of a few random characters.
fn random_name(client: &Client) -> String {
    let inbox = client.new_inbox();
    inbox
        .rsplit_once('.')
        .map_or(inbox.as_str(), |(_, id)| id)
        .to_owned()
}

fn subscribe_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("subscribing on NATS failed: {e}"))
}

/// The callers' sessions, as links for the server's accept loop.
struct NatsListener {
    links: mpsc::Receiver<(ServerLink, PeerAddr)>,
    addr: NatsAddr,
}

impl LinkListener for NatsListener {
    type Link = ServerLink;
    type Addr = NatsAddr;

    async fn accept(&mut self) -> io::Result<(ServerLink, PeerAddr)> {
        match self.links.recv().await {
            Some(link) => Ok(link),
            // The demultiplexer has stopped: nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<NatsAddr> {
        Ok(self.addr.clone())
    }
}

/// One caller's session, as the demultiplexer feeds it.
struct Caller {
    frames: mpsc::Sender<Bytes>,
    replies: Arc<Replies>,
    /// The link's unanswered calls (gone with the link).
    held: Weak<Held>,
}

impl Caller {
    /// Call `id` of `method` went to the session.
    fn took(&self, id: u64, method: u32, call_flags: u8) {
        if call_flags & flags::ONEWAY == 0 {
            if let Some(held) = self.held.upgrade() {
                // A call that sends a stream is claimed at once.
                held.arrived(id, method, call_flags & flags::STREAM_IN != 0);
            }
        }
    }
}

/// Hands each message to its caller's session, opening one for a caller
/// that has none.
struct Demux {
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
    async fn run(
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
        let async_nats::Message { reply, payload, .. } = message;
        let (kind, id, call_flags, is_request, method) = match codec::decode_message(&payload) {
            Ok((
                message @ Message::Request {
                    id, flags, method, ..
                },
                _,
            )) => {
                let method = u32::from_le_bytes(method);
                self.stats.request(method);
                (message.kind(), id, flags, true, method)
            }
            // A caller asking whether this server still has its calls: it
            // has them while their session lives.
            Ok((Message::Ping { nonce }, _)) => {
                let live = reply.as_deref().is_some_and(|reply| {
                    let key = reply.rsplit_once('.').map_or(reply, |(k, _)| k);
                    self.callers
                        .get(key)
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
            Ok((message, _)) => (message.kind(), message.call_id().unwrap_or(0), 0, false, 0),
            Err(_) => ("a frame that does not decode", 0, 0, false, 0),
        };
        // The caller's inbox: the reply subject without its last token.
        let key = reply
            .as_deref()
            .map_or("", |reply| reply.rsplit_once('.').map_or(reply, |(k, _)| k));
        // A reply subject that is not `<inbox>.<id>`: a plain NATS client's.
        let own_reply = match &reply {
            Some(reply) if is_request => reply
                .rsplit_once('.')
                .is_none_or(|(_, last)| last.parse() != Ok(id)),
            _ => false,
        };
        if let Some(caller) = self.callers.get(key) {
            if !caller.frames.is_closed() {
                if own_reply {
                    if let Some(reply) = &reply {
                        caller.replies.insert(id, reply.clone());
                    }
                }
                match caller.frames.try_send(payload) {
                    Ok(()) => {
                        if is_request {
                            caller.took(id, method, call_flags);
                        }
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if is_request {
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
                    Err(mpsc::error::TrySendError::Closed(payload)) => {
                        self.callers.remove(key);
                        return self
                            .open(
                                key,
                                reply.clone(),
                                payload,
                                (id, method, call_flags),
                                own_reply,
                            )
                            .await;
                    }
                }
                if call_flags & flags::STREAM_IN != 0 {
                    self.claim(reply.as_ref(), id).await;
                }
                return;
            }
            self.callers.remove(key);
        }
        if !is_request {
            tracing::debug!(
                caller = key,
                kind,
                "dropped a message for a call this server does not have"
            );
            return;
        }
        self.open(
            key,
            reply.clone(),
            payload,
            (id, method, call_flags),
            own_reply,
        )
        .await;
    }

    /// A new session for the caller `key`, with its first request.
    async fn open(
        &mut self,
        key: &str,
        reply: Option<Subject>,
        payload: Bytes,
        (id, method, call_flags): (u64, u32, u8),
        own_reply: bool,
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
        if own_reply {
            if let Some(reply) = &reply {
                outbox.replies().insert(id, reply.clone());
            }
        }
        let replies = Arc::clone(outbox.replies());
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
        let caller = Caller {
            frames,
            replies,
            held,
        };
        caller.took(id, method, call_flags);
        self.callers.insert(key.to_owned(), caller);
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
