//! One-way calls: the server runs them and never answers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_runtime::{rpc_service, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[rpc_service]
trait Journal {
    /// Appends a line; nobody waits for it.
    #[rpc(oneway)]
    async fn log(&self, line: String);
    /// How many lines were logged.
    async fn count(&self) -> usize;
    /// Waits until the test lets it go; nobody waits for it.
    #[rpc(oneway)]
    async fn stall(&self);
}

#[derive(Clone)]
struct JournalImpl {
    lines: Arc<Mutex<Vec<String>>>,
    logged: Arc<Semaphore>,
    stalled: Arc<Semaphore>,
    release: Arc<Semaphore>,
}

impl Journal for JournalImpl {
    async fn log(&self, line: String) {
        self.lines.lock().unwrap().push(line);
        self.logged.add_permits(1);
    }
    async fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
    async fn stall(&self) {
        self.stalled.add_permits(1);
        self.release.acquire().await.unwrap().forget();
    }
}

async fn journal() -> (Server, JournalImpl) {
    journal_with(Server::builder()).await
}

async fn journal_with(builder: rpc_runtime::ServerBuilder) -> (Server, JournalImpl) {
    let imp = JournalImpl {
        lines: Arc::default(),
        logged: Arc::new(Semaphore::new(0)),
        stalled: Arc::new(Semaphore::new(0)),
        release: Arc::new(Semaphore::new(0)),
    };
    let server = builder
        .add_service(JournalServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (server, imp)
}

#[tokio::test]
async fn a_oneway_call_returns_once_written_and_the_server_runs_it() {
    let (server, imp) = journal().await;
    let client = JournalClient::connect(server.local_addr()).await.unwrap();
    // Returns promptly although no answer ever comes (the default deadline is 30 s).
    tokio::time::timeout(Duration::from_secs(1), client.log("first".into()))
        .await
        .expect("a one-way call waited for an answer")
        .unwrap();
    imp.logged.acquire().await.unwrap().forget();
    assert_eq!(*imp.lines.lock().unwrap(), vec!["first".to_owned()]);
    assert_eq!(client.count().await.unwrap(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn no_response_frame_is_sent_for_a_oneway_call() {
    let (server, imp) = journal().await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(&common::wire::CLIENT_HELLO).await.unwrap();
    let mut greeting = [0u8; common::wire::SERVER_HELLO.len()];
    stream.read_exact(&mut greeting).await.unwrap();

    let request = |id: u8, method: &str, oneway: u8, body: &[u8]| {
        common::wire::request_with("Journal", id, method, None, oneway, body)
    };
    // log("hi") as a one-way request, id 1.
    stream
        .write_all(&request(1, "log", 1, &[2, b'h', b'i']))
        .await
        .unwrap();
    imp.logged.acquire().await.unwrap().forget();
    // The one-way task is completely done (it would have queued its answer).
    common::until_idle(&server).await;
    // count(), id 3: the next frame is its answer, not one for id 1.
    stream
        .write_all(&request(3, "count", 0, &[]))
        .await
        .unwrap();
    let mut answer = [0u8; 8];
    stream.read_exact(&mut answer).await.unwrap();
    // Response (1), id 3, Ok (0), count 1.
    assert_eq!(answer, [0, 0, 0, 4, 1, 3, 0, 1]);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_oneway_calls_do_not_take_the_room_of_calls_with_answers() {
    // A window of one call: the client, which cannot see one-way calls end,
    // keeps only its answered calls within it.
    let (server, imp) = journal_with(Server::builder().max_in_flight(1)).await;
    let client = JournalClient::connect(server.local_addr()).await.unwrap();
    client.stall().await.unwrap();
    imp.stalled.acquire().await.unwrap().forget();
    let quick = client.with_timeout(Duration::from_secs(2));
    assert_eq!(quick.count().await.unwrap(), 0, "an answered call runs");
    // And the next one-way call waits for the first, without holding up
    // answered calls either.
    client.stall().await.unwrap();
    assert_eq!(quick.count().await.unwrap(), 0);
    imp.release.add_permits(2);
    imp.stalled.acquire().await.unwrap().forget();
    common::until_idle(&server).await;
    server.shutdown().await;
}
