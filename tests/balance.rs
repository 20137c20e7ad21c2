//! A balanced channel over several real servers: calls spread by load,
//! failover that respects what each call may do, servers that die, drain
//! and come back, targeted calls, and every kind of call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::balance::{BalancedChannel, Discover};
use rpc_runtime::{rpc_service, CallContext, Channel, RpcError, Server, Streaming};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Bound on every wait in these tests: far above any loopback round trip
/// or backoff pause they configure.
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
    /// The server's number, `n` times.
    async fn numbers(&self, n: u32) -> Streaming<u32>;
    /// The sum of the items, and the server's number.
    async fn total(&self, items: Streaming<u64>) -> (u64, u32);
    /// The metadata entry `key`, as the handler saw it.
    async fn header(&self, key: String) -> Option<String>;
}

/// What the test sees of one server's handlers.
#[derive(Default)]
struct Seen {
    number: u32,
    /// Runs of `hit` and `note`, by call id.
    hits: Mutex<Vec<u64>>,
    fetches: AtomicUsize,
    /// Every handler sleeps this long first.
    delay_ms: AtomicU64,
    /// While set, every call that starts here never finishes.
    hold: AtomicBool,
    held_hits: AtomicUsize,
    held_fetches: AtomicUsize,
    /// Told whenever a call is held.
    holding: Notify,
}

impl Seen {
    fn new(number: u32) -> Arc<Self> {
        Arc::new(Seen {
            number,
            ..Seen::default()
        })
    }

    fn calls(&self) -> usize {
        self.hits.lock().unwrap().len() + self.fetches.load(Ordering::SeqCst)
    }

    async fn handle(&self, held: &AtomicUsize) {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.hold.load(Ordering::SeqCst) {
            held.fetch_add(1, Ordering::SeqCst);
            self.holding.notify_waiters();
            std::future::pending::<()>().await;
        }
    }
}

struct ReplicaImpl(Arc<Seen>);

impl Replica for ReplicaImpl {
    async fn hit(&self, id: u64) -> u32 {
        self.0.hits.lock().unwrap().push(id);
        self.0.handle(&self.0.held_hits).await;
        self.0.number
    }

    async fn fetch(&self, _id: u64) -> u32 {
        self.0.fetches.fetch_add(1, Ordering::SeqCst);
        self.0.handle(&self.0.held_fetches).await;
        self.0.number
    }

    async fn note(&self, id: u64) {
        self.0.hits.lock().unwrap().push(id);
    }

    async fn numbers(&self, n: u32) -> Streaming<u32> {
        Streaming::from_stream(futures::stream::iter(vec![self.0.number; n as usize]))
    }

    async fn total(&self, items: Streaming<u64>) -> (u64, u32) {
        let sum = items
            .fold(0, |sum, item| async move { sum + item.unwrap_or(0) })
            .await;
        (sum, self.0.number)
    }

    async fn header(&self, key: String) -> Option<String> {
        let context = CallContext::current()?;
        context
            .metadata()
            .get(&key)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    }
}

async fn serve(addr: SocketAddr, seen: &Arc<Seen>) -> Server {
    Server::builder()
        .add_service(ReplicaServer::new(ReplicaImpl(Arc::clone(seen))))
        .shutdown_grace(PROMPT)
        .bind(addr)
        .await
        .expect("bind a loopback port")
}

/// `n` servers on free loopback ports.
async fn replicas(n: u32) -> (Vec<Server>, Vec<Arc<Seen>>) {
    let mut servers = Vec::new();
    let mut seen = Vec::new();
    for number in 0..n {
        let s = Seen::new(number);
        servers.push(serve("127.0.0.1:0".parse().unwrap(), &s).await);
        seen.push(s);
    }
    (servers, seen)
}

fn balanced(servers: &[Server]) -> BalancedChannel {
    balanced_over(servers.iter().map(|s| s.local_addr().to_string()))
}

fn balanced_over(addrs: impl IntoIterator<Item = String>) -> BalancedChannel {
    Channel::builder()
        .timeout(PROMPT)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .balance(Discover::fixed(addrs))
}

/// `calls` calls of `hit` from `workers` tasks at once; the server each
/// answered from, counted.
async fn spread(client: &ReplicaClient<BalancedChannel>, calls: u64, workers: u64) -> Vec<usize> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut answered = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::SeqCst);
                if id >= calls {
                    return answered;
                }
                answered.push(client.hit(id).await.expect("every call succeeds"));
            }
        });
    }
    let mut shares = vec![0; 8];
    while let Some(answered) = tasks.join_next().await {
        for number in answered.unwrap() {
            shares[number as usize] += 1;
        }
    }
    shares
}

#[tokio::test]
async fn three_servers_each_take_a_share_of_3000_calls() {
    let (servers, _seen) = replicas(3).await;
    let client = ReplicaClient::new(balanced(&servers));
    let shares = spread(&client, 3000, 8).await;
    println!(
        "shares of 3000 calls over three servers: {:?}",
        &shares[..3]
    );
    assert_eq!(shares.iter().sum::<usize>(), 3000);
    for share in &shares[..3] {
        assert!(*share >= 300, "every server takes a share: {shares:?}");
    }
}

#[tokio::test]
async fn a_slow_server_takes_markedly_fewer_calls() {
    let (servers, seen) = replicas(3).await;
    seen[2].delay_ms.store(5, Ordering::SeqCst);
    let client = ReplicaClient::new(balanced(&servers));
    let shares = spread(&client, 3000, 8).await;
    let fastest = shares[0].max(shares[1]);
    println!(
        "shares with server 2 sleeping 5 ms per call: {:?} (slow ÷ fast = {:.3})",
        &shares[..3],
        shares[2] as f64 / fastest as f64
    );
    assert!(
        shares[2] * 5 < shares[0].min(shares[1]),
        "the slow server takes far fewer calls: {shares:?}"
    );
}

#[tokio::test]
async fn a_server_killed_mid_stream_loses_no_idempotent_call_and_runs_none_twice() {
    let (mut servers, seen) = replicas(3).await;
    let addr = servers[1].local_addr();
    let channel = balanced(&servers);
    let client = ReplicaClient::new(channel.clone());
    for s in &seen {
        s.delay_ms.store(1, Ordering::SeqCst);
    }

    // A steady stream of calls, half of them idempotent.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (client, stop, next) = (client.clone(), Arc::clone(&stop), Arc::clone(&next));
        tasks.spawn(async move {
            let mut hits = Vec::new();
            let mut fetch_failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst);
                if id % 2 == 0 {
                    hits.push((id, client.hit(id).await));
                } else if let Err(error) = client.fetch(id).await {
                    fetch_failures.push(error);
                }
            }
            (hits, fetch_failures)
        });
    }

    // Server 1 holds every call that reaches it from now on; once it holds
    // calls of both kinds, it dies.
    seen[1].hold.store(true, Ordering::SeqCst);
    tokio::time::timeout(PROMPT, async {
        loop {
            let notified = seen[1].holding.notified();
            if seen[1].held_hits.load(Ordering::SeqCst) > 0
                && seen[1].held_fetches.load(Ordering::SeqCst) > 0
            {
                break;
            }
            notified.await;
        }
    })
    .await
    .expect("server 1 gets calls of both kinds");
    let killed = servers.remove(1);
    killed.abort().await;
    let held_hits = seen[1].held_hits.load(Ordering::SeqCst);
    let held_fetches = seen[1].held_fetches.load(Ordering::SeqCst);

    // The others go on answering.
    let after = next.load(Ordering::SeqCst);
    tokio::time::timeout(PROMPT, async {
        while next.load(Ordering::SeqCst) < after + 400 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("calls go on after the kill");
    stop.store(true, Ordering::SeqCst);

    let mut lost = Vec::new();
    let mut succeeded_hits = 0;
    let mut answered_by_dead = 0;
    while let Some(result) = tasks.join_next().await {
        let (hits, fetch_failures) = result.unwrap();
        assert!(
            fetch_failures.is_empty(),
            "no idempotent call fails: {fetch_failures:?}"
        );
        for (id, result) in hits {
            match result {
                Ok(number) => {
                    succeeded_hits += 1;
                    answered_by_dead += usize::from(number == 1);
                }
                Err(RpcError::ConnectionLost { .. }) => lost.push(id),
                Err(other) => panic!("call {id} failed with {other:?}"),
            }
        }
    }
    println!(
        "kill: {held_hits} calls of `hit` and {held_fetches} of `fetch` in flight on the dead server; \
         {} `hit` lost, {succeeded_hits} succeeded; every `fetch` succeeded",
        lost.len()
    );
    assert!(!lost.is_empty());

    // No call ran twice; every call that ran on the dead server and never
    // answered is lost, and no lost call ran anywhere else (some may not
    // have run at all: written, but never read by the dying server).
    let mut runs: HashMap<u64, usize> = HashMap::new();
    for s in &seen {
        for id in s.hits.lock().unwrap().iter() {
            *runs.entry(*id).or_default() += 1;
        }
    }
    assert!(runs.values().all(|&n| n == 1), "a call ran twice");
    let dead: Vec<u64> = seen[1].hits.lock().unwrap().clone();
    for id in &lost {
        assert!(
            runs.get(id).is_none_or(|_| dead.contains(id)),
            "{id} ran elsewhere"
        );
    }
    assert!(lost.len() >= dead.len() - answered_by_dead);

    // Back on the same address, it takes calls again.
    let revived = Seen::new(1);
    let server = serve(addr, &revived).await;
    let targeted = ReplicaClient::new(channel.endpoint(&addr.to_string()));
    assert_eq!(targeted.hit(u64::MAX).await.unwrap(), 1);
    let shares = spread(&client, 600, 4).await;
    assert!(
        shares[1] > 0,
        "the revived server is re-admitted: {shares:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_shut_down_under_load_fails_no_call() {
    let (mut servers, seen) = replicas(3).await;
    for s in &seen {
        s.delay_ms.store(1, Ordering::SeqCst);
    }
    let client = ReplicaClient::new(balanced(&servers));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (client, stop, next) = (client.clone(), Arc::clone(&stop), Arc::clone(&next));
        tasks.spawn(async move {
            let mut made = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst);
                client
                    .hit(id)
                    .await
                    .unwrap_or_else(|e| panic!("call {id} failed: {e:?}"));
                made += 1;
            }
            made
        });
    }
    // Once every server has answered, one drains.
    tokio::time::timeout(PROMPT, async {
        while seen.iter().any(|s| s.calls() < 20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let drained = servers.remove(1);
    tokio::time::timeout(PROMPT, drained.shutdown())
        .await
        .expect("the drain ends");
    let after = next.load(Ordering::SeqCst);
    tokio::time::timeout(PROMPT, async {
        while next.load(Ordering::SeqCst) < after + 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut made = 0;
    while let Some(n) = tasks.join_next().await {
        made += n.unwrap();
    }
    let ran: usize = seen.iter().map(|s| s.hits.lock().unwrap().len()).sum();
    println!(
        "drain: {made} calls, all succeeded; the drained server ran {}",
        seen[1].calls()
    );
    assert_eq!(ran as u64, made, "every call ran exactly once");
}

/// An address nothing listens on.
async fn dead_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn with_every_server_down_calls_fail_clearly_within_their_deadline_and_recover() {
    let (a, b) = (dead_addr().await, dead_addr().await);
    let channel = balanced_over([a.to_string(), b.to_string()]);
    let client = ReplicaClient::new(channel.clone()).with_timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    let error = client.hit(1).await.unwrap_err();
    assert!(started.elapsed() < PROMPT);
    let RpcError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message.contains(&a.to_string()) && message.contains(&b.to_string()),
        "{message}"
    );

    // One comes back: the first call after it succeeds.
    let seen = Seen::new(7);
    let server = serve(b, &seen).await;
    let client = client.with_timeout(PROMPT);
    assert_eq!(client.hit(2).await.unwrap(), 7);
    server.shutdown().await;
}

#[tokio::test]
async fn endpoints_that_cannot_be_ready_before_the_deadline_fail_the_call_at_once() {
    let addr = dead_addr().await;
    let channel = Channel::builder()
        .reconnect_backoff(Duration::from_secs(30), Duration::from_secs(60))
        .balance(Discover::fixed([addr.to_string()]));
    let client = ReplicaClient::new(channel.clone()).with_timeout(Duration::from_secs(10));
    // The first attempt to connect fails; the next is 15 s or more away.
    let _ = client.hit(1).await;
    let started = tokio::time::Instant::now();
    let error = client.hit(2).await.unwrap_err();
    assert!(matches!(error, RpcError::Unavailable { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "failed at once");
    assert!(matches!(
        channel.endpoints().as_slice(),
        [(_, rpc_runtime::balance::EndpointState::Failing { .. })]
    ));
}

#[tokio::test]
async fn a_targeted_call_reaches_only_its_endpoint() {
    let (servers, seen) = replicas(3).await;
    let channel = balanced(&servers);
    let target = servers[2].local_addr().to_string();
    let client = ReplicaClient::new(channel.endpoint(&target));
    for id in 0..50 {
        assert_eq!(client.hit(id).await.unwrap(), 2);
    }
    assert_eq!(seen[2].calls(), 50);
    let nowhere = ReplicaClient::new(channel.endpoint("127.0.0.1:1"));
    let error = nowhere.hit(0).await.unwrap_err();
    assert!(matches!(error, RpcError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn every_kind_of_call_works_over_a_balanced_channel() {
    let (servers, seen) = replicas(2).await;
    let client = ReplicaClient::new(balanced(&servers));

    let items: Vec<u32> = client
        .numbers(3)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|n| *n == items[0]));

    let sent = Streaming::from_stream(futures::stream::iter([1u64, 2, 3]));
    assert_eq!(client.total(sent).await.unwrap().0, 6);

    let tagged = client.with_metadata("tenant", "blue");
    assert_eq!(
        tagged.header("tenant".into()).await.unwrap().as_deref(),
        Some("blue")
    );

    for id in 0..20 {
        client.note(id).await.unwrap();
    }
    // One-way calls are answered by nothing; a call after them on every
    // server shows they have run (calls on one connection are in order).
    let targeted: Vec<_> = servers
        .iter()
        .map(|s| ReplicaClient::new(client.channel().endpoint(&s.local_addr().to_string())))
        .collect();
    for t in &targeted {
        t.fetch(0).await.unwrap();
    }
    let noted: usize = seen.iter().map(|s| s.hits.lock().unwrap().len()).sum();
    assert_eq!(noted, 20);

    let quick = client.with_timeout(Duration::from_millis(50));
    seen[0].delay_ms.store(1_000, Ordering::SeqCst);
    seen[1].delay_ms.store(1_000, Ordering::SeqCst);
    let error = quick.fetch(1).await.unwrap_err();
    assert!(
        matches!(error, RpcError::DeadlineExceeded { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_fanout_reaches_every_ready_endpoint_and_reports_a_down_one_in_its_slot() {
    let (servers, seen) = replicas(3).await;
    let down = dead_addr().await;
    let mut addrs: Vec<String> = servers.iter().map(|s| s.local_addr().to_string()).collect();
    addrs.push(down.to_string());
    let channel = balanced_over(addrs.clone());
    let client = ReplicaClient::new(channel.clone());
    // Once the three are ready (the fourth cannot be).
    spread(&client, 30, 3).await;
    for s in &servers {
        let key = s.local_addr().to_string();
        ReplicaClient::new(channel.endpoint(&key))
            .fetch(0)
            .await
            .unwrap();
    }

    let mut replies = client.fanout().fetch(9).await;
    replies.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(replies.len(), 4, "{replies:?}");
    for (endpoint, reply) in &replies {
        match servers
            .iter()
            .position(|s| s.local_addr().to_string() == *endpoint)
        {
            Some(i) => assert_eq!(reply.as_ref().unwrap(), &(i as u32)),
            None => {
                assert_eq!(endpoint, &down.to_string());
                assert!(
                    matches!(reply, Err(RpcError::Unavailable { .. })),
                    "{reply:?}"
                );
            }
        }
    }

    // A one-way cast to every server.
    let before: Vec<usize> = seen.iter().map(|s| s.hits.lock().unwrap().len()).collect();
    let sent = client.fanout().note(42).await;
    assert_eq!(sent.iter().filter(|(_, r)| r.is_ok()).count(), 3);
    // A call after it on each server's connection shows it has run.
    client.fanout().fetch(0).await;
    for (s, before) in seen.iter().zip(before) {
        let hits = s.hits.lock().unwrap();
        assert_eq!(hits.len(), before + 1);
        assert_eq!(hits.last(), Some(&42));
    }
}

/// What a client of the balanced channel serves back to the servers.
#[rpc_service]
trait Doubler {
    /// `n` doubled.
    async fn double(&self, n: u64) -> u64;
}

struct DoublerImpl;

impl Doubler for DoublerImpl {
    async fn double(&self, n: u64) -> u64 {
        n * 2
    }
}

/// What the servers offer: a call that calls its caller back.
#[rpc_service]
trait Asker {
    /// The caller's `double(n)`, and the server's number.
    async fn ask(&self, n: u64) -> Result<(u64, u32), String>;
}

struct AskerImpl(u32);

impl Asker for AskerImpl {
    async fn ask(&self, n: u64) -> Result<(u64, u32), String> {
        let caller = DoublerClient::caller().ok_or("no way back to the caller")?;
        let doubled = caller.double(n).await.map_err(|e| e.to_string())?;
        Ok((doubled, self.0))
    }
}

#[tokio::test]
async fn every_endpoint_serves_callbacks_over_its_own_connection() {
    let mut servers = Vec::new();
    for number in 0..2 {
        servers.push(
            Server::builder()
                .add_service(AskerServer::new(AskerImpl(number)))
                .bind("127.0.0.1:0")
                .await
                .unwrap(),
        );
    }
    let channel = Channel::builder()
        .timeout(PROMPT)
        .serve(DoublerServer::new(DoublerImpl))
        .balance(Discover::fixed(
            servers.iter().map(|s| s.local_addr().to_string()),
        ));
    let client = AskerClient::new(channel.clone());
    for (number, server) in servers.iter().enumerate() {
        let one = AskerClient::new(channel.endpoint(&server.local_addr().to_string()));
        assert_eq!(one.ask(1).await.unwrap(), Ok((2, number as u32)));
    }
    let mut replies = client.fanout().ask(21).await;
    replies.sort_by_key(|(_, r)| r.as_ref().map(|r| r.as_ref().map(|(_, n)| *n).ok()).ok());
    let answers: Vec<_> = replies.into_iter().map(|(_, r)| r.unwrap()).collect();
    assert_eq!(answers, vec![Ok((42, 0)), Ok((42, 1))]);
    for n in 0..20 {
        assert_eq!(client.ask(n).await.unwrap().unwrap().0, n * 2);
    }
}

#[tokio::test]
async fn dropping_the_last_clone_closes_every_connection() {
    let (servers, _seen) = replicas(2).await;
    let channel = balanced(&servers);
    let client = ReplicaClient::new(channel.clone());
    for s in &servers {
        let key = s.local_addr().to_string();
        ReplicaClient::new(channel.endpoint(&key))
            .fetch(0)
            .await
            .unwrap();
    }
    assert!(servers.iter().all(|s| s.connections() == 1));
    drop((client, channel));
    tokio::time::timeout(PROMPT, async {
        while servers.iter().any(|s| s.connections() > 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the servers see their connections close");
}
