//! Graceful shutdown: running calls finish, new ones are refused, and a grace
//! period bounds the wait.

use std::sync::Arc;
use std::time::Duration;

use rpc_runtime::{rpc_service, CallContext, Channel, RpcError, Server, StreamExt, Streaming};
use tokio::sync::{oneshot, Semaphore};

#[rpc_service]
trait Gate {
    /// Waits until the test opens the gate.
    async fn wait(&self) -> u8;
    async fn quick(&self) -> u8;
    /// Items until the server shuts down, then a clean end.
    async fn until_shutdown(&self) -> Streaming<u32>;
    /// One item, then nothing, whatever happens.
    async fn stuck(&self) -> Streaming<u32>;
}

#[derive(Clone)]
struct GateImpl {
    started: Arc<Semaphore>,
    open: Arc<Semaphore>,
}

impl Gate for GateImpl {
    async fn wait(&self) -> u8 {
        self.started.add_permits(1);
        let _ = self.open.acquire().await.unwrap();
        1
    }
    async fn quick(&self) -> u8 {
        2
    }
    async fn until_shutdown(&self) -> Streaming<u32> {
        let cx = CallContext::current().expect("a handler has a context");
        assert!(!cx.is_shutting_down());
        let stopping = cx.shutting_down();
        let (sender, stream) = Streaming::channel(1);
        tokio::spawn(async move {
            tokio::pin!(stopping);
            for n in 0..10_000 {
                tokio::select! {
                    () = &mut stopping => return,
                    sent = sender.send(n) => if sent.is_err() { return },
                }
            }
        });
        stream
    }
    async fn stuck(&self) -> Streaming<u32> {
        self.started.add_permits(1);
        Streaming::from_stream(futures::stream::iter([7]).chain(futures::stream::pending()))
    }
}

fn gate() -> GateImpl {
    GateImpl {
        started: Arc::new(Semaphore::new(0)),
        open: Arc::new(Semaphore::new(0)),
    }
}

#[tokio::test]
async fn new_calls_during_shutdown_are_refused_while_running_ones_finish() {
    let imp = gate();
    let server = Server::builder()
        .add_service(GateServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let client = GateClient::connect(addr).await.unwrap();
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.wait().await }
    });
    imp.started.acquire().await.unwrap().forget();

    let stopping = tokio::spawn(server.shutdown());
    // A new call on the open connection is answered at once, unrun.
    let refused = tokio::time::timeout(Duration::from_secs(1), client.quick())
        .await
        .expect("a call during shutdown hung");
    assert!(
        matches!(refused, Err(RpcError::ShuttingDown)),
        "{refused:?}"
    );
    // New connections are not accepted.
    let connect = Channel::builder()
        .connect_timeout(Duration::from_secs(1))
        .connect(addr)
        .await;
    assert!(connect.is_err(), "{connect:?}");
    assert!(!stopping.is_finished());

    // The running call finishes and is answered; then shutdown completes.
    imp.open.add_permits(1);
    assert_eq!(running.await.unwrap().unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(2), stopping)
        .await
        .expect("shutdown hung")
        .unwrap();
}

#[tokio::test]
async fn the_grace_period_bounds_shutdown() {
    let imp = gate();
    let server = Server::builder()
        .add_service(GateServer::new(imp.clone()))
        .shutdown_grace(Duration::from_millis(100))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = GateClient::connect(server.local_addr()).await.unwrap();
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.wait().await }
    });
    imp.started.acquire().await.unwrap().forget();
    tokio::time::timeout(Duration::from_secs(2), server.shutdown())
        .await
        .expect("shutdown outlived its grace period");
    // The call that never finished lost its connection.
    let result = running.await.unwrap();
    assert!(
        matches!(result, Err(RpcError::ConnectionLost { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn shutdown_on_a_signal() {
    let server = Server::builder()
        .add_service(GateServer::new(gate()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let (signal, received) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.shutdown_on(async {
        let _ = received.await;
    }));
    let client = GateClient::connect(addr).await.unwrap();
    assert_eq!(client.quick().await.unwrap(), 2);
    assert!(!serving.is_finished());
    signal.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), serving)
        .await
        .expect("shutdown after the signal hung")
        .unwrap();
    assert!(Channel::connect(addr).await.is_err());
}

#[tokio::test]
async fn handlers_learn_of_shutdown_and_end_their_streams_cleanly() {
    let server = Server::builder()
        .add_service(GateServer::new(gate()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = GateClient::connect(server.local_addr()).await.unwrap();
    let mut stream = client.until_shutdown().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    let stopping = tokio::spawn(server.shutdown());
    // The handler ends its stream: a clean end, well within the grace period.
    let rest = tokio::time::timeout(Duration::from_secs(2), async {
        let mut taken = 0;
        while let Some(item) = stream.next().await {
            item.unwrap();
            taken += 1;
        }
        taken
    })
    .await
    .expect("the stream did not end at shutdown");
    assert!(rest < 10_000, "the stream ran to its end instead: {rest}");
    tokio::time::timeout(Duration::from_secs(2), stopping)
        .await
        .expect("shutdown hung")
        .unwrap();
}

#[tokio::test]
async fn a_stream_still_open_when_the_grace_period_ends_ends_with_shutting_down() {
    let imp = gate();
    let server = Server::builder()
        .add_service(GateServer::new(imp.clone()))
        .shutdown_grace(Duration::from_millis(100))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = GateClient::connect(server.local_addr()).await.unwrap();
    let mut stream = client.stuck().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), 7);
    tokio::time::timeout(Duration::from_secs(2), server.shutdown())
        .await
        .expect("shutdown outlived its grace period");
    let last = stream.next().await.expect("an error item");
    assert!(matches!(last, Err(RpcError::ShuttingDown)), "{last:?}");
    assert!(stream.next().await.is_none());
}
