//! [`NatsChannel`]: the client end over NATS, a carrier of calls for every
//! generated client.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::Client;
use bytes::Bytes;
use futures::future::Either;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::call::{Fanout, Invoke, RawCall, RawReply};
use crate::client::calls;
use crate::error::RpcError;
use crate::link::greeting;
use crate::link::negotiate::Offer;
use crate::link::Compression;
use crate::session::{
    self, current_of, CallDefaults, Channel, Connection, Picked, Redial, Routes, SessionConfig,
    Target, Waiting,
};
use crate::transport::PeerAddr;
use crate::wire::version::Extensions;

use super::client_link::{ClientLink, LinkParts};
use super::fanout::{fan_out, Fan};
use super::subjects::{check, Subjects, DEFAULT_PREFIX};
use super::NATS_VERSION;

/// Default number of calls one service's link keeps in flight.
const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
/// Frames that may wait for a link's writer.
const WRITE_QUEUE: usize = 1024;
/// Default time between two questions to the servers holding calls.
const DEFAULT_LIVENESS: Duration = Duration::from_secs(1);
/// The shortest: several times the time a server takes to claim a call.
const MIN_LIVENESS: Duration = Duration::from_millis(200);
/// Default time servers have to answer a fanout's ping.
const DEFAULT_FANOUT_WINDOW: Duration = Duration::from_millis(50);
/// How often the channel looks at the NATS connection's state.
const STATE_POLL: Duration = Duration::from_millis(20);

/// Settings for a [`NatsChannel`].
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let nats = async_nats::connect("127.0.0.1:4222").await?;
/// let channel = rpc_runtime::nats::NatsChannel::builder(nats)
///     .timeout(std::time::Duration::from_secs(5))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsChannelBuilder {
    client: Client,
    prefix: String,
    defaults: CallDefaults,
    max_in_flight: usize,
    liveness: Duration,
    fanout_window: Duration,
}

impl NatsChannelBuilder {
    /// The first token(s) of every subject (default `rpc`), as the servers
    /// were given it ([`ServeOptions::prefix`](super::ServeOptions::prefix)).
    ///
    /// ```no_run
    /// # fn f(nats: async_nats::Client) {
    /// let builder = rpc_runtime::nats::NatsChannel::builder(nats).prefix("staging.rpc");
    /// # }
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The deadline of a call whose options set none (default 30 s).
    ///
    /// ```no_run
    /// # fn f(nats: async_nats::Client) {
    /// let builder = rpc_runtime::nats::NatsChannel::builder(nats).timeout(std::time::Duration::from_secs(2));
    /// # }
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.defaults.timeout = timeout;
        self
    }

    /// How many times an idempotent call is sent again after the server
    /// that took it went away, or the NATS connection broke (default 2).
    ///
    /// ```no_run
    /// # fn f(nats: async_nats::Client) {
    /// let builder = rpc_runtime::nats::NatsChannel::builder(nats).idempotent_retries(5);
    /// # }
    /// ```
    #[must_use]
    pub fn idempotent_retries(mut self, retries: u32) -> Self {
        self.defaults.idempotent_retries = retries;
        self
    }

    /// How many calls to one service wait for answers at once, at most
    /// (default 4096); more wait for a place.
    ///
    /// ```no_run
    /// # fn f(nats: async_nats::Client) {
    /// let builder = rpc_runtime::nats::NatsChannel::builder(nats).max_in_flight(256);
    /// # }
    /// ```
    #[must_use]
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// How often the servers holding this channel's calls are asked
    /// whether they are still there (default 1 s). A server that does not
    /// answer within that time has gone: its calls fail with
    /// [`RpcError::ConnectionLost`] (idempotent ones go again, to another
    /// server); so does a call that no server claimed within that time.
    /// Servers claim a call they have held for 50 ms without answering, so
    /// keep this well above that and above the NATS round trip.
    ///
    /// ```no_run
    /// # fn f(nats: async_nats::Client) {
    /// let builder = rpc_runtime::nats::NatsChannel::builder(nats).liveness(std::time::Duration::from_millis(500));
    /// # }
    /// ```
    #[must_use]
    pub fn liveness(mut self, every: Duration) -> Self {
        self.liveness = every.max(MIN_LIVENESS);
        self
    }

    /// How long a fanout waits for the servers of the service to say they
    /// are there (`$SRV.PING`; default 50 ms): it then waits for the
    /// answer of each that did, up to the call's deadline.
    ///
    /// ```no_run
    /// # fn f(nats: async_nats::Client) {
    /// let builder = rpc_runtime::nats::NatsChannel::builder(nats).fanout_window(std::time::Duration::from_millis(200));
    /// # }
    /// ```
    #[must_use]
    pub fn fanout_window(mut self, window: Duration) -> Self {
        self.fanout_window = window;
        self
    }

    /// The channel.
    ///
    /// # Errors
    /// When the prefix cannot be part of a subject.
    pub fn build(self) -> Result<NatsChannel, RpcError> {
        let subjects =
            Subjects::new(&self.prefix).map_err(|message| RpcError::Unavailable { message })?;
        Ok(self.with_subjects(subjects))
    }

    /// The channel, over `subjects`.
    fn with_subjects(self, subjects: Subjects) -> NatsChannel {
        let lost = Arc::new(Mutex::new(CancellationToken::new()));
        let watcher = tokio::spawn(watch_state(self.client.clone(), Arc::downgrade(&lost)));
        let fanouts = Fanouts::new(&self.client, self.fanout_window);
        NatsChannel {
            inner: Arc::new(Inner {
                client: self.client,
                subjects,
                defaults: self.defaults,
                max_in_flight: self.max_in_flight,
                liveness: self.liveness,
                fanouts,
                instance: None,
                services: Mutex::new(HashMap::new()),
                first_open: tokio::sync::Mutex::new(()),
                lost,
                watcher: Arc::new(AbortOnDrop(watcher)),
            }),
        }
    }
}

/// A carrier of calls over NATS: `XClient::new(channel)` works for every
/// generated client, as over a [`Channel`].
///
/// Each call goes to its service's subject, where NATS hands it to one
/// server of the service's queue group; the call's later messages go to
/// the server that took it. [`instance`](Self::instance) makes a channel
/// whose calls all go to one named server.
///
/// **Failures.** No server for the service fails a call at once with
/// [`RpcError::Unavailable`]; a call larger than the NATS server's
/// `max_payload` with [`RpcError::FrameTooLarge`], unsent. While the NATS
/// connection is down, calls fail with [`RpcError::ConnectionLost`] (the
/// NATS client reconnects by itself, and calls go again once it has);
/// calls in flight when it broke fail so too, and only idempotent ones
/// are sent again. A server that shuts down answers calls that still
/// reach it unrun, and they go to another server.
#[derive(Clone)]
pub struct NatsChannel {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    subjects: Subjects,
    defaults: CallDefaults,
    max_in_flight: usize,
    liveness: Duration,
    fanouts: Arc<Fanouts>,
    /// The one server every call goes to, if any.
    instance: Option<String>,
    /// A channel per service (one link each).
    services: Mutex<HashMap<String, ServiceTarget>>,
    /// Held while a service's first link is being opened.
    first_open: tokio::sync::Mutex<()>,
    /// Cancelled when the NATS connection is lost: the links made before
    /// end, and new ones get a new token.
    lost: Arc<Mutex<CancellationToken>>,
    watcher: Arc<AbortOnDrop>,
}

/// A channel's fanouts: one inbox for all (so each server keeps one
/// session for them), a call id each.
struct Fanouts {
    inbox: String,
    next: AtomicU64,
    window: Duration,
}

impl Fanouts {
    fn new(client: &Client, window: Duration) -> Arc<Self> {
        Arc::new(Fanouts {
            inbox: client.new_inbox(),
            // Odd ids for the calls; the even one after each, its ping.
            next: AtomicU64::new(1),
            window,
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ends the links of a lost NATS connection.
async fn watch_state(client: Client, lost: std::sync::Weak<Mutex<CancellationToken>>) {
    let mut was_connected = client.connection_state() == State::Connected;
    let mut ticks = tokio::time::interval(STATE_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(lost) = lost.upgrade() else { return };
        let connected = client.connection_state() == State::Connected;
        if was_connected && !connected {
            tracing::debug!("the NATS connection was lost; failing the calls on it");
            let mut token = lost.lock().unwrap_or_else(PoisonError::into_inner);
            token.cancel();
            *token = CancellationToken::new();
        }
        was_connected = connected;
    }
}

impl std::fmt::Debug for NatsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsChannel")
            .field("subjects", &self.inner.subjects)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

impl NatsChannel {
    /// A channel with the default settings.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let nats = async_nats::connect("127.0.0.1:4222").await?;
    /// let channel = rpc_runtime::nats::NatsChannel::new(nats);
    /// // let kv = KeyValueClient::new(channel);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn new(client: Client) -> NatsChannel {
        Self::builder(client).with_subjects(Subjects::standard())
    }

    /// Starts configuring a channel over `client`.
    #[must_use]
    pub fn builder(client: Client) -> NatsChannelBuilder {
        NatsChannelBuilder {
            client,
            prefix: DEFAULT_PREFIX.to_owned(),
            defaults: CallDefaults::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            liveness: DEFAULT_LIVENESS,
            fanout_window: DEFAULT_FANOUT_WINDOW,
        }
    }

    /// A channel whose calls all go to the server named `instance` (its
    /// [`ServeOptions::instance`](super::ServeOptions::instance)), on its
    /// instance subject; with the same settings and NATS connection.
    ///
    /// # Errors
    /// When the name cannot be part of a subject.
    pub fn instance(&self, instance: &str) -> Result<NatsChannel, RpcError> {
        check("the instance name", instance)
            .map_err(|message| RpcError::Unavailable { message })?;
        let inner = &self.inner;
        Ok(NatsChannel {
            inner: Arc::new(Inner {
                client: inner.client.clone(),
                subjects: inner.subjects.clone(),
                defaults: inner.defaults,
                max_in_flight: inner.max_in_flight,
                liveness: inner.liveness,
                fanouts: Arc::clone(&inner.fanouts),
                instance: Some(instance.to_owned()),
                services: Mutex::new(HashMap::new()),
                first_open: tokio::sync::Mutex::new(()),
                lost: Arc::clone(&inner.lost),
                watcher: Arc::clone(&inner.watcher),
            }),
        })
    }

    /// The NATS connection it calls over.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The channel for `service`, if one was made.
    fn cached(&self, service: &str) -> Option<ServiceTarget> {
        self.inner
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .cloned()
    }

    /// The channel for `service`, made on first use.
    async fn target(&self, service: &str) -> Result<ServiceTarget, RpcError> {
        if let Some(target) = self.cached(service) {
            return Ok(target);
        }
        // The first calls to a service open its link between them.
        let _first = self.inner.first_open.lock().await;
        if let Some(target) = self.cached(service) {
            return Ok(target);
        }
        let opener = Opener {
            inner: Arc::clone(&self.inner),
            service: service.to_owned(),
            opening: tokio::sync::Mutex::new(()),
        };
        let connection = opener.open().await?;
        let label = match &self.inner.instance {
            Some(instance) => format!("nats:{instance}"),
            None => format!("nats:{service}"),
        };
        let channel = Channel::new(
            label,
            self.inner.defaults,
            connection,
            Some(Box::new(opener)),
        );
        let mut services = self
            .inner
            .services
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let target = ServiceTarget(channel);
        services.insert(service.to_owned(), target.clone());
        Ok(target)
    }
}

/// Opens one service's link and its session.
struct Opener {
    inner: Arc<Inner>,
    service: String,
    /// Held while a link is being opened, so that the calls that find
    /// the link ended open one between them, not one each.
    opening: tokio::sync::Mutex<()>,
}

impl Opener {
    async fn open(&self) -> Result<Arc<Connection>, RpcError> {
        let inner = &self.inner;
        if inner.client.connection_state() != State::Connected {
            return Err(RpcError::connection_lost(
                "not connected to the NATS server (the NATS client is reconnecting)",
            ));
        }
        let lost = inner
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let inbox = inner.client.new_inbox();
        let subscription = inner
            .client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| RpcError::connection_lost(format!("subscribing on NATS failed: {e}")))?;
        let to = match &inner.instance {
            Some(instance) => inner.subjects.instance(instance),
            None => inner.subjects.call(&self.service),
        };
        let max_payload = inner.client.server_info().max_payload;
        let (link, publisher) = ClientLink::new(LinkParts {
            client: inner.client.clone(),
            inbox,
            subscription,
            everyone: match &inner.instance {
                Some(_) => to.clone(),
                None => inner.subjects.fanout(&self.service),
            },
            to,
            service: self.service.clone(),
            max_payload,
            max_in_flight: inner.max_in_flight,
            lost: lost.cancelled_owned(),
            liveness: inner.liveness,
        });
        tokio::spawn(publisher);
        let offer = Offer::new(max_payload, 0, Extensions::none()).up_to(NATS_VERSION);
        let established = greeting::dial(link, offer, Compression::disabled())
            .await
            .map_err(|e| RpcError::connection_lost(format!("opening a NATS link failed: {e:?}")))?;
        let config = SessionConfig {
            write_queue: WRITE_QUEUE,
            // The NATS client keeps its connection alive.
            keepalive: None,
            sweep_idle: inner.defaults.timeout.max(Duration::from_millis(100)),
            services: Routes::default(),
            serve_in_flight: 0,
        };
        Ok(session::start(
            established,
            PeerAddr::Broker(self.service.clone()),
            &config,
        ))
    }
}

impl Redial for Opener {
    fn redial<'a>(
        &'a self,
        current: &'a Mutex<Arc<Connection>>,
        _deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Connection>, RpcError>> + Send + 'a>> {
        Box::pin(async move {
            let _opening = self.opening.lock().await;
            // Another call may have opened one while this one waited.
            let now = current_of(current);
            if !now.is_closed() {
                return Ok(now);
            }
            let fresh = self.open().await?;
            *current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
            Ok(fresh)
        })
    }
}

/// One service's channel, as a target that fails over: a call its server
/// did not run goes again at once, and NATS hands it to another server.
#[derive(Clone)]
struct ServiceTarget(Channel);

impl Target for ServiceTarget {
    type Ticket = ();
    const FAILOVER: bool = true;

    #[inline]
    fn defaults(&self) -> CallDefaults {
        self.0.defaults()
    }

    #[inline]
    fn ready(&self) -> Option<Picked<()>> {
        self.0.ready()
    }

    fn wait(&self, deadline: Instant) -> Waiting<'_, ()> {
        self.0.wait(deadline)
    }
}

impl Fanout for NatsChannel {
    /// The call, published once on the service's fanout subject: every
    /// server of the service gets it, and each answer is listed by the
    /// server's name (its instance name). Which servers there are is asked
    /// at the same time (`$SRV.PING`); the list is complete once each of
    /// them has answered, or at the call's deadline, where a server that
    /// said it was there but did not answer is listed with
    /// [`RpcError::DeadlineExceeded`]. A one-way call is listed as sent to
    /// each server there is, after the fanout window.
    async fn invoke_each(self, call: RawCall) -> Vec<(String, Result<RawReply, RpcError>)> {
        {
            let inner = &self.inner;
            let id = inner.fanouts.next.fetch_add(2, Ordering::Relaxed);
            let fan = Fan {
                client: &inner.client,
                subjects: &inner.subjects,
                defaults: inner.defaults,
                inbox: &inner.fanouts.inbox,
                id,
                window: inner.fanouts.window,
            };
            fan_out(fan, call).await
        }
    }
}

impl Invoke for NatsChannel {
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        match self.cached(call.service()) {
            Some(target) => Either::Left(calls::invoke(target, call)),
            None => Either::Right(Box::pin(async move {
                let target = self.target(call.service()).await?;
                calls::invoke(target, call).await
            })),
        }
    }

    fn invoke_unary(self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        match self.cached(call.service()) {
            Some(target) => Either::Left(calls::invoke_unary(target, call)),
            None => Either::Right(Box::pin(async move {
                let target = self.target(call.service()).await?;
                calls::invoke_unary(target, call).await
            })),
        }
    }
}
