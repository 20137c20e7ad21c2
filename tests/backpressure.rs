//! Limits: calls in flight per connection, connections per server, idle
//! connections.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use rpc_runtime::{rpc_service, Channel, RpcError, Server};

#[rpc_service]
trait Slow {
    /// Takes about a millisecond; records how many run at once.
    async fn work(&self, x: u32) -> u32;
}

#[derive(Clone, Default)]
struct SlowImpl {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Slow for SlowImpl {
    async fn work(&self, x: u32) -> u32 {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        x.wrapping_mul(3)
    }
}

/// Polls `condition` (a counter, say) until it holds; for states that have no
/// event to await.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(3), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// 100,000 calls at once on one connection against a slow handler: the
/// server never runs more than its limit at once (it stops reading instead),
/// and every call completes with its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_calls_is_held_to_the_in_flight_limit() {
    const LIMIT: usize = 128;
    const CALLS: u32 = 100_000;
    let imp = SlowImpl::default();
    let server = Server::builder()
        .add_service(SlowServer::new(imp.clone()))
        .max_in_flight(LIMIT)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let channel = Channel::builder()
        .write_queue(256)
        .timeout(Duration::from_secs(120))
        .connect(server.local_addr())
        .await
        .unwrap();
    let client = SlowClient::new(channel);

    let mut calls: FuturesUnordered<_> = (0..CALLS)
        .map(|i| {
            let client = client.clone();
            async move { (i, client.work(i).await) }
        })
        .collect();
    let mut done = 0u32;
    while let Some((i, answer)) = calls.next().await {
        assert_eq!(answer.unwrap(), i.wrapping_mul(3), "call {i}");
        done += 1;
        assert!(
            server.in_flight() <= LIMIT,
            "{} calls in flight",
            server.in_flight()
        );
    }
    assert_eq!(done, CALLS);
    let peak = imp.peak.load(Ordering::SeqCst);
    assert!(
        peak <= LIMIT,
        "{peak} handlers ran at once, over the limit of {LIMIT}"
    );
    assert!(peak > 1, "calls did not run concurrently (peak {peak})");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_get_a_busy_error() {
    let server = Server::builder()
        .add_service(SlowServer::new(SlowImpl::default()))
        .max_connections(2)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let first = SlowClient::connect(server.local_addr()).await.unwrap();
    let second = SlowClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(first.work(1).await.unwrap(), 3);
    assert_eq!(server.connections(), 2);

    let third = tokio::time::timeout(
        Duration::from_secs(1),
        Channel::connect(server.local_addr()),
    )
    .await
    .expect("a refused connect hung");
    match third {
        Err(e @ RpcError::ServerBusy { .. }) => {
            assert!(e.to_string().contains("limit of 2"), "{e}")
        }
        other => panic!("expected ServerBusy, got {other:?}"),
    }
    // The first two are unaffected; once one leaves, a newcomer gets in.
    assert_eq!(second.work(2).await.unwrap(), 6);
    drop(first);
    eventually("a connection slot is free", || server.connections() < 2).await;
    let fourth = SlowClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(fourth.work(3).await.unwrap(), 9);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_clients_reconnect() {
    let server = Server::builder()
        .add_service(SlowServer::new(SlowImpl::default()))
        .idle_timeout(Some(Duration::from_millis(50)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = SlowClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(client.work(1).await.unwrap(), 3);
    eventually("the idle connection is closed", || {
        client.channel().is_closed()
    })
    .await;
    assert_eq!(server.connections(), 0);
    // The next call opens a new connection by itself.
    assert_eq!(client.work(2).await.unwrap(), 6);
    assert!(!client.channel().is_closed());
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_with_a_running_call_is_not_idle() {
    #[rpc_service]
    trait Sleeper {
        async fn sleep(&self, ms: u64) -> u64;
    }
    struct S;
    impl Sleeper for S {
        async fn sleep(&self, ms: u64) -> u64 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
    }
    let server = Server::builder()
        .add_service(SleeperServer::new(S))
        .idle_timeout(Some(Duration::from_millis(30)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = SleeperClient::connect(server.local_addr()).await.unwrap();
    // Runs for longer than the idle timeout, and still gets its answer.
    assert_eq!(client.sleep(150).await.unwrap(), 150);
    server.shutdown().await;
}

/// A server that greets and then never reads: the client's writes stall
/// once the socket buffers and its bounded queue are full, and callers wait
/// (here, until their deadline) instead of queueing without limit.
#[tokio::test]
async fn a_client_whose_server_stops_reading_makes_callers_wait() {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, hold) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        common::wire::read_frame(&mut stream).await.unwrap();
        stream
            .write_all(&common::wire::SERVER_HELLO_RANGED)
            .await
            .unwrap();
        // Never reads again; keeps the connection open until the test ends.
        let _ = hold.await;
    });
    // Sent as they are: compressed, the megabyte would be a few bytes.
    let channel = Channel::builder()
        .write_queue(4)
        .compression(rpc_runtime::Compression::disabled())
        .timeout(Duration::from_millis(200))
        .connect(addr)
        .await
        .unwrap();
    let payload = vec![7u8; 1 << 20];
    let mut written = 0;
    let stalled = loop {
        let sent = channel
            .call_oneway_with(
                &rpc_runtime::CallOptions::new(),
                "Sink",
                "put",
                &(&payload,),
            )
            .await;
        match sent {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(
            written < 200,
            "200 MiB were accepted by a peer that reads nothing"
        );
    };
    assert!(
        matches!(stalled, RpcError::DeadlineExceeded { .. }),
        "{stalled:?}"
    );
    assert!(written >= 1, "not even one frame was written");
    drop(release);
}

/// The server announces how many calls it runs at once, and the client keeps
/// no more outstanding: so the server never has to stop reading, and a
/// cancel reaches it even when every slot is taken.
#[tokio::test]
async fn the_client_keeps_within_the_servers_window_so_cancels_get_through() {
    use tokio::sync::Semaphore;

    #[rpc_service]
    trait Held {
        async fn hold(&self, n: u32) -> u32;
    }
    struct Dropped(Arc<Semaphore>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.add_permits(1);
        }
    }
    #[derive(Clone)]
    struct HeldImpl {
        started: Arc<Semaphore>,
        dropped: Arc<Semaphore>,
    }
    impl Held for HeldImpl {
        async fn hold(&self, n: u32) -> u32 {
            let _dropped = Dropped(self.dropped.clone());
            self.started.add_permits(1);
            if n == 0 {
                std::future::pending::<()>().await;
            }
            n
        }
    }
    let imp = HeldImpl {
        started: Arc::new(Semaphore::new(0)),
        dropped: Arc::new(Semaphore::new(0)),
    };
    let server = Server::builder()
        .add_service(HeldServer::new(imp.clone()))
        .max_in_flight(2)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = HeldClient::connect(server.local_addr()).await.unwrap();
    // Two calls that never end fill the server's window.
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.hold(0).await }
    });
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.hold(0).await }
    });
    imp.started.acquire_many(2).await.unwrap().forget();
    // A third waits in the client for a slot.
    let third = tokio::spawn({
        let client = client.clone();
        async move { client.hold(3).await }
    });
    // Cancelling the first frees a slot: the server reads the cancel, drops
    // the handler, and the third call runs.
    first.abort();
    let answer = tokio::time::timeout(Duration::from_secs(2), third)
        .await
        .expect("the cancel did not get through to a full server")
        .unwrap();
    assert_eq!(answer.unwrap(), 3);
    imp.dropped.acquire_many(2).await.unwrap().forget();
    second.abort();
    server.shutdown().await;
}
