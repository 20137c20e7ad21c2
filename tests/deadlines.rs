//! Deadlines: every call has one, it travels to the server as time remaining,
//! the server stops the handler when it passes, and handlers pass it on.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rpc_runtime::{rpc_service, CallContext, Channel, RpcError, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Signals when dropped: proves a handler was stopped.
struct DropSignal(Arc<Semaphore>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

#[rpc_service]
trait Clock {
    /// Never finishes on its own; sets `finished` if it ever does.
    async fn forever(&self) -> u8;
    /// What the handler sees of its call.
    async fn context(&self) -> (Option<u64>, u64, String);
    /// Calls `Clock.context` on `downstream` and returns what it saw.
    async fn relay(&self) -> Option<u64>;
    /// `relay`, with the downstream call spawned as a task of its own.
    async fn relay_spawned(&self) -> Option<u64>;
}

#[derive(Clone)]
struct ClockImpl {
    dropped: Arc<Semaphore>,
    finished: Arc<AtomicBool>,
    downstream: Option<ClockClient>,
    /// How many times `context` ran.
    contexts: Arc<AtomicUsize>,
}

impl Clock for ClockImpl {
    async fn forever(&self) -> u8 {
        let _signal = DropSignal(self.dropped.clone());
        tokio::time::sleep(Duration::from_secs(10)).await;
        self.finished.store(true, Ordering::SeqCst);
        0
    }
    async fn context(&self) -> (Option<u64>, u64, String) {
        self.contexts.fetch_add(1, Ordering::SeqCst);
        let cx = CallContext::current().expect("a handler has a context");
        let left = cx
            .remaining()
            .map(|d| u64::try_from(d.as_millis()).unwrap());
        (left, cx.request_id(), cx.peer_addr().to_string())
    }
    async fn relay(&self) -> Option<u64> {
        let downstream = self.downstream.as_ref().expect("a downstream client");
        // The downstream client's own deadline is the channel default (30 s);
        // the handler's is shorter, and wins.
        downstream.context().await.unwrap().0
    }
    async fn relay_spawned(&self) -> Option<u64> {
        let downstream = self.downstream.as_ref().expect("a downstream client");
        // The call is made here, inside the handler, and runs elsewhere.
        let call = tokio::spawn(downstream.context());
        call.await.unwrap().unwrap().0
    }
}

async fn clock_server(downstream: Option<ClockClient>) -> (Server, ClockImpl) {
    let imp = ClockImpl {
        dropped: Arc::new(Semaphore::new(0)),
        finished: Arc::new(AtomicBool::new(false)),
        downstream,
        contexts: Arc::new(AtomicUsize::new(0)),
    };
    let server = Server::builder()
        .add_service(ClockServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (server, imp)
}

#[tokio::test]
async fn a_call_fails_at_its_deadline_and_the_server_stops_the_handler() {
    let (server, imp) = clock_server(None).await;
    let client = ClockClient::connect(server.local_addr()).await.unwrap();
    let short = client.with_timeout(Duration::from_millis(50));
    let result = tokio::time::timeout(Duration::from_secs(2), short.forever())
        .await
        .expect("the deadline did not fire");
    match result {
        Err(RpcError::DeadlineExceeded { timeout }) => {
            assert_eq!(timeout, Duration::from_millis(50))
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    // The handler was dropped on the server, not left to run for 10 s.
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the handler was not stopped")
        .unwrap()
        .forget();
    common::until_idle(&server).await;
    assert!(!imp.finished.load(Ordering::SeqCst));
    // The shorter client shares the connection, which still works.
    assert_eq!(short.context().await.unwrap().1, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn the_channel_default_deadline_applies() {
    let (server, _imp) = clock_server(None).await;
    let channel = Channel::builder()
        .timeout(Duration::from_millis(40))
        .connect(server.local_addr())
        .await
        .unwrap();
    let client = ClockClient::new(channel);
    let result = client.forever().await;
    assert!(
        matches!(result, Err(RpcError::DeadlineExceeded { timeout }) if timeout == Duration::from_millis(40)),
        "{result:?}"
    );
    let (left, _, _) = client.context().await.unwrap();
    assert!(left.unwrap() <= 40, "{left:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn handlers_see_their_context_and_nothing_else_does() {
    assert!(CallContext::current().is_none());
    let (server, _imp) = clock_server(None).await;
    let client = ClockClient::connect(server.local_addr())
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    let (left, id, peer) = client.context().await.unwrap();
    let left = left.expect("the call has a deadline");
    assert!(left > 4000 && left <= 5000, "{left} ms left of 5 s");
    assert_eq!(id, 1, "the first call on a connection has id 1");
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    assert!(CallContext::current().is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn calls_made_inside_a_handler_inherit_its_deadline() {
    let (downstream, _) = clock_server(None).await;
    let downstream_client = ClockClient::connect(downstream.local_addr()).await.unwrap();
    let (upstream, _) = clock_server(Some(downstream_client)).await;
    let client = ClockClient::connect(upstream.local_addr()).await.unwrap();
    let seen = client
        .with_timeout(Duration::from_millis(300))
        .relay()
        .await
        .unwrap()
        .expect("the downstream call has a deadline");
    assert!(
        seen <= 300,
        "downstream saw {seen} ms, more than the 300 ms upstream deadline"
    );
    upstream.shutdown().await;
    downstream.shutdown().await;
}

#[tokio::test]
async fn a_call_spawned_from_a_handler_keeps_the_handlers_deadline() {
    let (downstream, _) = clock_server(None).await;
    let downstream_client = ClockClient::connect(downstream.local_addr()).await.unwrap();
    let (upstream, _) = clock_server(Some(downstream_client)).await;
    let client = ClockClient::connect(upstream.local_addr()).await.unwrap();
    let seen = client
        .with_timeout(Duration::from_millis(300))
        .relay_spawned()
        .await
        .unwrap()
        .expect("the downstream call has a deadline");
    assert!(
        seen <= 300,
        "downstream saw {seen} ms, more than the 300 ms upstream deadline"
    );
    upstream.shutdown().await;
    downstream.shutdown().await;
}

#[tokio::test]
async fn a_call_with_no_time_left_fails_at_once_and_is_never_sent() {
    let (server, imp) = clock_server(None).await;
    let client = ClockClient::connect(server.local_addr()).await.unwrap();
    let now = client.with_timeout(Duration::ZERO);
    for _ in 0..100 {
        let result = now.context().await;
        assert!(
            matches!(result, Err(RpcError::DeadlineExceeded { .. })),
            "{result:?}"
        );
    }
    // The connection is fine, and the server never saw those calls.
    client.context().await.unwrap();
    assert_eq!(imp.contexts.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_without_a_deadline_tells_the_server_it_has_none() {
    let (server, _) = clock_server(None).await;
    // A short default, which `without_timeout` lifts.
    let channel = Channel::builder()
        .timeout(Duration::from_millis(50))
        .connect(server.local_addr())
        .await
        .unwrap();
    let client = ClockClient::new(channel);
    let (bounded, ..) = client.context().await.unwrap();
    assert!(bounded.is_some_and(|ms| ms <= 50), "{bounded:?}");
    let (unbounded, ..) = client.without_timeout().context().await.unwrap();
    assert_eq!(unbounded, None);
    let (max, ..) = client.with_timeout(Duration::MAX).context().await.unwrap();
    assert_eq!(max, None);
    server.shutdown().await;
}

/// The server enforces the deadline it was sent, even when the client never
/// cancels: raw bytes, a request for `forever` with 50 ms to live.
#[tokio::test]
async fn the_server_enforces_the_deadline_and_sends_no_answer() {
    let (server, imp) = clock_server(None).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(&common::wire::CLIENT_HELLO).await.unwrap();
    let mut greeting = [0u8; common::wire::SERVER_HELLO.len()];
    stream.read_exact(&mut greeting).await.unwrap();

    // Request id 1 for `Clock.forever`, 50 ms to live (50 << 2 | 1 = 201:
    // one byte), not one-way.
    let mut payload = vec![0, 1];
    payload.extend_from_slice(&rpc_runtime::method_id("Clock", "forever").to_le_bytes());
    payload.extend_from_slice(&[201, 0]);
    assert_eq!(common::wire::timeout_field(Some(50_000)), [201]);
    stream
        .write_all(&common::wire::frame(&payload))
        .await
        .unwrap();

    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the server did not stop the handler at its deadline")
        .unwrap()
        .forget();
    common::until_idle(&server).await;
    // No answer was sent for it: the next frame is the pong to this ping.
    stream.write_all(&[0, 0, 0, 2, 4, 9]).await.unwrap();
    let mut next = [0u8; 6];
    stream.read_exact(&mut next).await.unwrap();
    assert_eq!(next, [0, 0, 0, 2, 5, 9]);
    assert!(!imp.finished.load(Ordering::SeqCst));
    server.shutdown().await;
}

/// A call with the channel's default timeout is timed by the connection's
/// reader, not a timer of its own: it still fails at its deadline, and the
/// server is told to stop the handler.
#[tokio::test]
async fn the_reader_fails_default_deadline_calls_and_cancels_them() {
    let (server, imp) = clock_server(None).await;
    let channel = Channel::builder()
        .timeout(Duration::from_millis(150))
        .connect(server.local_addr())
        .await
        .unwrap();
    let client = ClockClient::new(channel);
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(2), client.forever())
        .await
        .expect("the deadline did not fire");
    assert!(
        matches!(result, Err(RpcError::DeadlineExceeded { timeout }) if timeout == Duration::from_millis(150)),
        "{result:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the handler was not stopped")
        .unwrap()
        .forget();
    common::until_idle(&server).await;
    assert_eq!(client.context().await.unwrap().1, 3);
    server.shutdown().await;
}
