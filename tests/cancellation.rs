//! Dropping a call's future cancels the call on the server.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rpc_runtime::{rpc_service, Server};
use tokio::sync::Semaphore;

#[rpc_service]
trait Work {
    /// Runs for 10 s, then sets the flag.
    async fn long(&self) -> u8;
    async fn quick(&self) -> u8;
}

struct Dropped(Arc<Semaphore>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

#[derive(Clone)]
struct WorkImpl {
    started: Arc<Semaphore>,
    dropped: Arc<Semaphore>,
    finished: Arc<AtomicBool>,
}

impl Work for WorkImpl {
    async fn long(&self) -> u8 {
        let _dropped = Dropped(self.dropped.clone());
        self.started.add_permits(1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        self.finished.store(true, Ordering::SeqCst);
        1
    }
    async fn quick(&self) -> u8 {
        2
    }
}

#[tokio::test]
async fn dropping_a_call_aborts_its_handler() {
    let imp = WorkImpl {
        started: Arc::new(Semaphore::new(0)),
        dropped: Arc::new(Semaphore::new(0)),
        finished: Arc::new(AtomicBool::new(false)),
    };
    let server = Server::builder()
        .add_service(WorkServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = WorkClient::connect(server.local_addr()).await.unwrap();

    // Lose a select! against "the handler has started".
    tokio::select! {
        result = client.long() => panic!("the long call ended: {result:?}"),
        permit = imp.started.acquire() => permit.unwrap().forget(),
    }
    assert_eq!(server.in_flight(), 1);

    // The cancel reaches the server, which drops the handler.
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the handler was not aborted")
        .unwrap()
        .forget();
    common::until_idle(&server).await;
    assert!(
        !imp.finished.load(Ordering::SeqCst),
        "the handler ran to the end"
    );

    // Also through a timeout wrapper; the connection keeps working.
    let timed = tokio::time::timeout(Duration::from_millis(20), client.long()).await;
    assert!(timed.is_err());
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the second handler was not aborted")
        .unwrap()
        .forget();
    assert_eq!(client.quick().await.unwrap(), 2);
    assert!(!imp.finished.load(Ordering::SeqCst));
    server.shutdown().await;
}

fn work() -> WorkImpl {
    WorkImpl {
        started: Arc::new(Semaphore::new(0)),
        dropped: Arc::new(Semaphore::new(0)),
        finished: Arc::new(AtomicBool::new(false)),
    }
}

async fn aborted(imp: &WorkImpl, what: &str) {
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .unwrap_or_else(|_| panic!("{what}: the handler was not aborted"))
        .unwrap()
        .forget();
}

#[tokio::test]
async fn a_call_dropped_with_the_last_client_handle_is_cancelled() {
    let imp = work();
    let server = Server::builder()
        .add_service(WorkServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = WorkClient::connect(server.local_addr()).await.unwrap();
    // The task owns the only handle: aborting it drops the call and the
    // channel together.
    let task = tokio::spawn(async move { client.long().await });
    imp.started.acquire().await.unwrap().forget();
    assert_eq!(server.in_flight(), 1);
    task.abort();
    aborted(&imp, "dropped with its channel").await;
    common::until_idle(&server).await;
    assert!(!imp.finished.load(Ordering::SeqCst));
    server.shutdown().await;
}

#[tokio::test]
async fn calls_stop_when_their_connection_closes() {
    let imp = work();
    let server = Server::builder()
        .add_service(WorkServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    // A raw client that sends `long` (id 1) and hangs up without a cancel.
    let mut stream = common::wire::greeted(server.local_addr()).await;
    let request = common::wire::request_to("Work", 1, "long", &[]);
    tokio::io::AsyncWriteExt::write_all(&mut stream, &request)
        .await
        .unwrap();
    imp.started.acquire().await.unwrap().forget();
    drop(stream);
    aborted(&imp, "its connection closed").await;
    common::until_idle(&server).await;
    server.shutdown().await;
}
