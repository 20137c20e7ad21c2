//! The test service of the NATS tests, its servers and clients.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::nats::{self, NatsChannel, NatsServer, ServeOptions};
use rpc_runtime::{rpc_service, CallContext, Server, Streaming};
use tokio::sync::Notify;

use crate::common::nats::NatsProcess;

/// Bound on every wait in these tests.
pub const PROMPT: Duration = Duration::from_secs(5);

#[rpc_service]
pub trait Replica {
    /// Not idempotent: every run is recorded by its id. Returns the
    /// server's number.
    async fn hit(&self, id: u64) -> u32;
    /// Safe to run twice. Returns the server's number.
    #[rpc(idempotent)]
    async fn fetch(&self, id: u64) -> u32;
    /// One-way: recorded like `hit`.
    #[rpc(oneway)]
    async fn note(&self, id: u64);
    /// `n` items counting up from 0, each as soon as the caller takes it.
    async fn count(&self, n: u32) -> Streaming<u32>;
    /// The sum of the items, and the server's number.
    async fn total(&self, items: Streaming<u64>) -> (u64, u32);
    /// The items, doubled, as they come.
    async fn double(&self, items: Streaming<u64>) -> Streaming<u64>;
    /// The metadata entry `key`, as the handler saw it.
    async fn header(&self, key: String) -> Option<String>;
    /// Never answers; counts the runs that were stopped.
    async fn stall(&self) -> u32;
    /// Echoes `bytes` back.
    async fn echo(&self, bytes: Vec<u8>) -> usize;
    /// `n`, or the application's own error for an odd `n`.
    async fn even(&self, n: u32) -> Result<u32, OddNumber>;
    /// Where the call came from, and whether the handler could call back.
    async fn origin(&self) -> (String, bool);
    /// `0..n`, refused with the value `n` when `n` is odd.
    async fn evens(&self, n: u32) -> Result<Streaming<u32>, u32>;
}

/// An application error, typed.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OddNumber(pub u32);

/// What the test sees of one server's handlers.
#[derive(Default)]
pub struct Seen {
    pub number: u32,
    pub hits: Mutex<Vec<u64>>,
    pub fetches: AtomicUsize,
    pub stalled: AtomicUsize,
    pub stopped: AtomicUsize,
    pub changed: Notify,
    /// Items of `count` produced so far.
    pub produced: AtomicU64,
    /// `hit` and `fetch` sleep this long before they answer.
    pub delay_ms: AtomicU64,
    /// Runs of `hit` and `fetch` begun.
    pub started: AtomicUsize,
}

impl Seen {
    async fn begin(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}

pub struct ReplicaImpl(pub Arc<Seen>);

/// Counts a stopped handler when dropped before it is disarmed.
struct Stopped<'a>(&'a Seen);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.stopped.fetch_add(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

impl Replica for ReplicaImpl {
    async fn hit(&self, id: u64) -> u32 {
        self.0.hits.lock().unwrap().push(id);
        self.0.begin().await;
        self.0.number
    }

    async fn fetch(&self, _id: u64) -> u32 {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        self.0.begin().await;
        self.0.number
    }

    async fn note(&self, id: u64) {
        self.0.hits.lock().unwrap().push(id);
        self.0.changed.notify_waiters();
    }

    async fn count(&self, n: u32) -> Streaming<u32> {
        let seen = Arc::clone(&self.0);
        Streaming::from_stream(futures::stream::iter(0..n).map(move |i| {
            seen.produced.fetch_add(1, Ordering::SeqCst);
            i
        }))
    }

    async fn total(&self, items: Streaming<u64>) -> (u64, u32) {
        let sum = items
            .fold(0, |sum, item| async move { sum + item.unwrap_or(0) })
            .await;
        (sum, self.0.number)
    }

    async fn double(&self, items: Streaming<u64>) -> Streaming<u64> {
        Streaming::from_stream(items.map(|item| item.unwrap_or(0) * 2))
    }

    async fn header(&self, key: String) -> Option<String> {
        let context = CallContext::current()?;
        context
            .metadata()
            .get(&key)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    }

    async fn stall(&self) -> u32 {
        let _stopped = Stopped(&self.0);
        self.0.stalled.fetch_add(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
        std::future::pending::<()>().await;
        self.0.number
    }

    async fn echo(&self, bytes: Vec<u8>) -> usize {
        bytes.len()
    }

    async fn even(&self, n: u32) -> Result<u32, OddNumber> {
        if n.is_multiple_of(2) {
            Ok(n)
        } else {
            Err(OddNumber(n))
        }
    }

    async fn origin(&self) -> (String, bool) {
        let context = CallContext::current().expect("inside a handler");
        (context.peer_addr().to_string(), context.channel().is_some())
    }

    async fn evens(&self, n: u32) -> Result<Streaming<u32>, u32> {
        if n % 2 == 1 {
            return Err(n);
        }
        Ok(Streaming::from_iter(0..n))
    }
}

pub async fn connect(nats: &NatsProcess) -> async_nats::Client {
    async_nats::connect(nats.url())
        .await
        .expect("connect to the test's nats-server")
}

pub async fn serve_one(nats: &NatsProcess, number: u32) -> (NatsServer, Arc<Seen>) {
    let seen = Arc::new(Seen {
        number,
        ..Seen::default()
    });
    let builder = Server::builder()
        .add_service(ReplicaServer::new(ReplicaImpl(Arc::clone(&seen))))
        .shutdown_grace(PROMPT);
    let options = ServeOptions::new().instance(format!("replica-{number}"));
    let server = nats::serve(connect(nats).await, builder, options)
        .await
        .expect("serve over NATS");
    (server, seen)
}

pub async fn replicas(nats: &NatsProcess, n: u32) -> (Vec<NatsServer>, Vec<Arc<Seen>>) {
    let mut servers = Vec::new();
    let mut seen = Vec::new();
    for number in 0..n {
        let (server, s) = serve_one(nats, number).await;
        servers.push(server);
        seen.push(s);
    }
    (servers, seen)
}

pub async fn client(nats: &NatsProcess) -> ReplicaClient<NatsChannel> {
    ReplicaClient::new(channel(connect(nats).await))
}

/// A channel over `nats` that notices a server gone within 200 ms.
pub fn channel(nats: async_nats::Client) -> NatsChannel {
    NatsChannel::builder(nats)
        .timeout(PROMPT)
        .liveness(Duration::from_millis(200))
        .build()
        .expect("a channel")
}

/// Waits until `done` holds, woken by the handlers.
pub async fn until(seen: &Seen, done: impl Fn() -> bool) {
    tokio::time::timeout(PROMPT, async {
        loop {
            let changed = seen.changed.notified();
            if done() {
                return;
            }
            changed.await;
        }
    })
    .await
    .expect("the handlers got there in time");
}
