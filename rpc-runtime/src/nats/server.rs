//! The server end over NATS: a [`Server`] whose connections are callers,
//! one per inbox, fed by a demultiplexer of the server's subscriptions.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Subject};
use futures::stream::SelectAll;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::health::HealthReporter;
use crate::link::LinkListener;
use crate::server::{Server, ServerBuilder};
use crate::transport::PeerAddr;

use super::demux::Demux;
use super::micro::Stats;
use super::server_link::ServerLink;
use super::subjects::{check, Subjects, DEFAULT_PREFIX};

/// Default number of a caller's messages that may wait for its session.
const DEFAULT_CALLER_QUEUE: usize = 1024;
/// Default time a caller's session lasts without calls.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

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
    let (max_frame_length, max_in_flight) = builder.limits();
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
    let stats = Arc::new(
        Stats::new(
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
        )
        .with_limits(max_frame_length.min(max_payload), max_in_flight),
    );
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
    let demux = Demux::new(
        client,
        Subject::from(from),
        max_payload,
        options.caller_queue,
        links,
        taking.clone(),
        stats,
    );
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
