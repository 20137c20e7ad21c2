//! Many calls on one connection: multiplexing and independence of calls.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{calculator_server, CalculatorClient};
use rpc_runtime::{rpc_service, Server};
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_calls_from_fifty_tasks_share_one_connection() {
    let server = calculator_server().await;
    let client = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..50i64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let calls = (0..20i64).map(|i| {
                let client = &client;
                async move { (i, client.add(t * 1000, i).await) }
            });
            let mut ok = 0;
            for (i, result) in futures::future::join_all(calls).await {
                assert_eq!(result.unwrap(), t * 1000 + i, "task {t} call {i}");
                ok += 1;
            }
            ok
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 1000);
    server.shutdown().await;
}

#[rpc_service]
trait Gate {
    /// Sleeps 500 ms, or until the test opens the gate.
    async fn slow(&self) -> String;
    async fn fast(&self, x: u32) -> u32;
}

struct GateImpl {
    started: Arc<Semaphore>,
    open: Arc<Semaphore>,
}

impl Gate for GateImpl {
    async fn slow(&self) -> String {
        self.started.add_permits(1);
        tokio::select! {
            _ = self.open.acquire() => "released".to_owned(),
            () = tokio::time::sleep(Duration::from_millis(500)) => "slept".to_owned(),
        }
    }
    async fn fast(&self, x: u32) -> u32 {
        x + 1
    }
}

/// A slow call must not delay fast calls issued after it on the same
/// connection: all 100 fast answers arrive while the slow call is still
/// running (it only ends by sleeping out its 500 ms, or when the test opens
/// the gate after the fast calls are done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_call_does_not_delay_fast_calls() {
    let open = Arc::new(Semaphore::new(0));
    let started = Arc::new(Semaphore::new(0));
    let server = Server::builder()
        .add_service(GateServer::new(GateImpl {
            started: started.clone(),
            open: open.clone(),
        }))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = GateClient::connect(server.local_addr()).await.unwrap();

    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.slow().await }
    });
    // The slow call is running on the server before any fast call is sent.
    started.acquire().await.unwrap().forget();
    let fast = futures::future::join_all((0..100).map(|i| {
        let client = client.clone();
        async move { client.fast(i).await }
    }))
    .await;
    let slow_finished_first = slow.is_finished();
    open.add_permits(1);
    for (i, answer) in fast.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), u32::try_from(i).unwrap() + 1);
    }
    assert!(
        !slow_finished_first,
        "the slow call ended before the fast calls"
    );
    assert_eq!(slow.await.unwrap().unwrap(), "released");
    server.shutdown().await;
}
