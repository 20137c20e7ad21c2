//! Graceful shutdown: running calls finish, new ones are refused, and a grace
//! period bounds the wait.

use std::sync::Arc;
use std::time::Duration;

use rpc_runtime::{rpc_service, Channel, RpcError, Server};
use tokio::sync::{oneshot, Semaphore};

#[rpc_service]
trait Gate {
    /// Waits until the test opens the gate.
    async fn wait(&self) -> u8;
    async fn quick(&self) -> u8;
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
