//! The NATS transport against a real `nats-server`: queue groups that
//! share calls, every kind of call, deadlines and cancels that reach the
//! handler, the errors NATS itself reports, and targeted calls.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::nats::NatsProcess;
use futures::StreamExt;
use rpc_runtime::nats::{self, NatsChannel, NatsServer, ServeOptions};
use rpc_runtime::{rpc_service, CallContext, RpcError, Server, Streaming};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Bound on every wait in these tests.
const PROMPT: Duration = Duration::from_secs(5);

#[rpc_service]
trait Replica {
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
}

/// What the test sees of one server's handlers.
#[derive(Default)]
struct Seen {
    number: u32,
    hits: Mutex<Vec<u64>>,
    fetches: AtomicUsize,
    stalled: AtomicUsize,
    stopped: AtomicUsize,
    changed: Notify,
    /// Items of `count` produced so far.
    produced: AtomicU64,
}

struct ReplicaImpl(Arc<Seen>);

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
        self.0.number
    }

    async fn fetch(&self, _id: u64) -> u32 {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
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
}

async fn connect(nats: &NatsProcess) -> async_nats::Client {
    async_nats::connect(nats.url())
        .await
        .expect("connect to the test's nats-server")
}

async fn serve_one(nats: &NatsProcess, number: u32) -> (NatsServer, Arc<Seen>) {
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

async fn replicas(nats: &NatsProcess, n: u32) -> (Vec<NatsServer>, Vec<Arc<Seen>>) {
    let mut servers = Vec::new();
    let mut seen = Vec::new();
    for number in 0..n {
        let (server, s) = serve_one(nats, number).await;
        servers.push(server);
        seen.push(s);
    }
    (servers, seen)
}

async fn client(nats: &NatsProcess) -> ReplicaClient<NatsChannel> {
    let channel = NatsChannel::builder(connect(nats).await)
        .timeout(PROMPT)
        .build()
        .expect("a channel");
    ReplicaClient::new(channel)
}

/// Waits until `done` holds, woken by the handlers.
async fn until(seen: &Seen, done: impl Fn() -> bool) {
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

#[tokio::test]
async fn three_servers_in_a_queue_group_share_3000_calls() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 3).await;
    let client = client(&nats).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut answered = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::SeqCst);
                if id >= 3000 {
                    return answered;
                }
                answered.push(client.hit(id).await.expect("every call succeeds"));
            }
        });
    }
    let mut shares = [0usize; 3];
    while let Some(answered) = tasks.join_next().await {
        for number in answered.unwrap() {
            shares[number as usize] += 1;
        }
    }
    println!("shares of 3000 calls over three servers: {shares:?}");
    assert_eq!(shares.iter().sum::<usize>(), 3000);
    for (number, share) in shares.iter().enumerate() {
        assert!(*share > 0, "server {number} took no call: {shares:?}");
        assert_eq!(seen[number].hits.lock().unwrap().len(), *share);
    }
    // Every call ran exactly once.
    let ran: HashSet<u64> = seen
        .iter()
        .flat_map(|s| s.hits.lock().unwrap().clone())
        .collect();
    assert_eq!(ran.len(), 3000);
}

#[tokio::test]
async fn no_server_for_the_service_fails_at_once_with_its_own_error() {
    let nats = NatsProcess::start();
    let client = client(&nats).await;
    let started = std::time::Instant::now();
    let error = client.hit(1).await.expect_err("nobody serves it");
    assert!(
        matches!(&error, RpcError::Unavailable { message } if message.contains("Replica")),
        "{error:?}"
    );
    // Not the call's deadline (PROMPT): NATS says so at once.
    assert!(started.elapsed() < PROMPT / 2, "{:?}", started.elapsed());
    // Idempotent calls too: nothing to retry on.
    let error = client.fetch(1).await.expect_err("nobody serves it");
    assert!(matches!(error, RpcError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn every_kind_of_call_works_over_nats() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;

    assert_eq!(client.hit(7).await.unwrap(), 0);
    assert_eq!(client.fetch(8).await.unwrap(), 0);

    client.note(9).await.unwrap();
    until(&seen[0], || seen[0].hits.lock().unwrap().contains(&9)).await;

    let items: Vec<u32> = client
        .count(100)
        .await
        .unwrap()
        .map(|item| item.unwrap())
        .collect()
        .await;
    assert_eq!(items, (0..100).collect::<Vec<_>>());

    let sent = Streaming::from_stream(futures::stream::iter(1..=100u64));
    assert_eq!(client.total(sent).await.unwrap(), (5050, 0));

    let sent = Streaming::from_stream(futures::stream::iter(1..=50u64));
    let doubled: Vec<u64> = client
        .double(sent)
        .await
        .unwrap()
        .map(|item| item.unwrap())
        .collect()
        .await;
    assert_eq!(doubled, (1..=50u64).map(|i| i * 2).collect::<Vec<_>>());

    let value = client
        .with_metadata("tenant", "blue")
        .header("tenant".to_owned())
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_deadline_stops_the_handler_and_fails_the_call() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let quick = client.with_timeout(Duration::from_millis(200));
    let error = quick.stall().await.expect_err("never answers");
    assert!(
        matches!(error, RpcError::DeadlineExceeded { .. }),
        "{error:?}"
    );
    until(&seen[0], || seen[0].stopped.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test]
async fn dropping_a_call_stops_its_handler() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.stall().await }
    });
    until(&seen[0], || seen[0].stalled.load(Ordering::SeqCst) == 1).await;
    call.abort();
    until(&seen[0], || seen[0].stopped.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test]
async fn a_call_over_max_payload_fails_alone_and_unsent() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    // nats-server's default max_payload is 1 MiB.
    let error = client
        .echo(vec![7; 2 * 1024 * 1024])
        .await
        .expect_err("too large for NATS");
    assert!(matches!(error, RpcError::FrameTooLarge { .. }), "{error:?}");
    // The channel goes on.
    assert_eq!(client.echo(vec![7; 1000]).await.unwrap(), 1000);
}

#[tokio::test]
async fn a_targeted_call_reaches_the_named_server() {
    let nats = NatsProcess::start();
    let (servers, seen) = replicas(&nats, 3).await;
    let client = client(&nats).await;
    let instance = servers[2].instance();
    assert_eq!(instance, "replica-2");
    let channel = NatsChannel::builder(connect(&nats).await)
        .timeout(PROMPT)
        .build()
        .unwrap()
        .instance(&instance)
        .unwrap();
    let targeted = ReplicaClient::new(channel);
    for id in 0..50 {
        assert_eq!(targeted.hit(id).await.unwrap(), 2);
    }
    assert_eq!(seen[2].hits.lock().unwrap().len(), 50);
    // A stream, pinned to it as well.
    let items = targeted.count(20).await.unwrap().count().await;
    assert_eq!(items, 20);
    drop(client);
    // A server by a name nobody has.
    let nobody = ReplicaClient::new(
        NatsChannel::new(connect(&nats).await)
            .instance("replica-9")
            .unwrap(),
    );
    let error = nobody.hit(1).await.expect_err("no such server");
    assert!(matches!(error, RpcError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_slow_consumer_holds_the_server_stream_within_its_window() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let mut stream = client.count(1000).await.unwrap();
    // Take a few, then stop reading: the server produces no more than the
    // stream's window ahead.
    for expected in 0..5 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let produced = seen[0].produced.load(Ordering::SeqCst);
    assert!(
        produced <= 5 + 16 + 16,
        "the server ran ahead of its credit: {produced} items produced"
    );
    // Reading on, everything arrives.
    let rest = stream.count().await;
    assert_eq!(rest, 995);
}
