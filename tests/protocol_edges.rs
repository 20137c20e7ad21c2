//! The corners of the protocol a client written from docs/PROTOCOL.md alone
//! runs into, sent with raw sockets: frames behind a greeting, cancels and
//! credits for calls that are not running, ids reused while in flight,
//! requests with no time left.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::wire::{
    expect_close, frame, greeted, read_frame, request_to, request_with, HELLO, LIMIT,
};
use rpc_runtime::{rpc_service, Channel, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

#[rpc_service]
trait Gate {
    /// Waits until the test opens the gate, then answers 7.
    async fn wait(&self) -> u8;
    /// Answers 1 at once.
    async fn now(&self) -> u8;
}

#[derive(Clone)]
struct GateImpl {
    open: Arc<Semaphore>,
    ran: Arc<AtomicUsize>,
}

impl Gate for GateImpl {
    async fn wait(&self) -> u8 {
        self.ran.fetch_add(1, Ordering::SeqCst);
        self.open.acquire().await.unwrap().forget();
        7
    }
    async fn now(&self) -> u8 {
        self.ran.fetch_add(1, Ordering::SeqCst);
        1
    }
}

async fn gate_server() -> (Server, GateImpl) {
    let imp = GateImpl {
        open: Arc::new(Semaphore::new(0)),
        ran: Arc::default(),
    };
    let server = Server::builder()
        .add_service(GateServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (server, imp)
}

/// `Gate.<method>` with id `id` and `timeout` µs left.
fn timed_request(id: u8, method: &str, timeout: u64) -> Vec<u8> {
    request_with("Gate", id, method, Some(timeout), 0, &[])
}

#[tokio::test]
async fn a_frame_in_the_same_segment_as_the_greeting_is_answered_at_once() {
    let (server, _) = gate_server().await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    // The greeting and a ping (nonce 7) in one write.
    let mut bytes = frame(&HELLO);
    bytes.extend_from_slice(&frame(&[4, 7]));
    stream.write_all(&bytes).await.unwrap();
    let hello = read_frame(&mut stream)
        .await
        .expect("the server's greeting");
    assert_eq!(&hello[..5], b"RRPC\x01");
    // Within the helper's limit, with nothing more sent.
    assert_eq!(read_frame(&mut stream).await, Some(vec![5, 7]), "the pong");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_answers_a_frame_in_the_same_segment_as_the_servers_greeting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_frame(&mut stream).await.unwrap();
        // The greeting and a ping (nonce 9) in one write.
        let mut bytes = common::wire::SERVER_HELLO_RANGED.to_vec();
        bytes.extend_from_slice(&frame(&[4, 9]));
        stream.write_all(&bytes).await.unwrap();
        read_frame(&mut stream).await
    });
    let channel = Channel::connect(addr).await.unwrap();
    let pong = tokio::time::timeout(LIMIT, fake)
        .await
        .expect("the client did not answer the ping")
        .unwrap();
    assert_eq!(pong, Some(vec![5, 9]));
    drop(channel);
}

#[tokio::test]
async fn cancels_and_credits_for_calls_that_are_not_running_are_ignored() {
    let (server, _) = gate_server().await;
    let mut stream = greeted(server.local_addr()).await;
    // Cancels for an id of the listener's (2) and of the dialer's (9), a
    // credit for another of the listener's (4), none of them running.
    for payload in [&[3, 2][..], &[3, 9], &[7, 4, 8], &[7, 11, 8]] {
        stream.write_all(&frame(payload)).await.unwrap();
    }
    stream
        .write_all(&request_to("Gate", 1, "now", &[]))
        .await
        .unwrap();
    // The connection is still open and answers: id 1, Ok, 1.
    assert_eq!(read_frame(&mut stream).await, Some(vec![1, 1, 0, 1]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_response_for_a_call_never_made_closes_the_connection_with_a_reason() {
    let (server, _) = gate_server().await;
    for id in [2u8, 3] {
        let mut stream = greeted(server.local_addr()).await;
        // Response (1), status Ok, empty body.
        stream.write_all(&frame(&[1, id, 0])).await.unwrap();
        let goodbye = expect_close(&mut stream).await.expect("a goodbye");
        assert_eq!(&goodbye[..2], &[2, 8], "code 8: {goodbye:?}");
        let text = String::from_utf8_lossy(&goodbye);
        assert!(
            text.contains(&format!("a response for call {id}")),
            "{text}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_that_reuses_an_id_in_flight_is_refused_and_not_run() {
    let (server, imp) = gate_server().await;
    let mut stream = greeted(server.local_addr()).await;
    stream
        .write_all(&request_to("Gate", 1, "wait", &[]))
        .await
        .unwrap();
    // The second request under id 1, while the first waits.
    stream
        .write_all(&request_to("Gate", 1, "now", &[]))
        .await
        .unwrap();
    let refusal = read_frame(&mut stream).await.expect("an answer");
    // Response, id 1, status Error (1), code 14, then the message.
    assert_eq!(&refusal[..4], &[1, 1, 1, 14], "{refusal:?}");
    assert!(String::from_utf8_lossy(&refusal).contains("already in flight"));
    assert_eq!(imp.ran.load(Ordering::SeqCst), 1, "only the first ran");
    // The first call is unaffected, and the id is free once it is answered.
    imp.open.add_permits(1);
    assert_eq!(read_frame(&mut stream).await, Some(vec![1, 1, 0, 7]));
    stream
        .write_all(&request_to("Gate", 1, "now", &[]))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut stream).await, Some(vec![1, 1, 0, 1]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_with_no_time_left_is_neither_run_nor_answered() {
    let (server, imp) = gate_server().await;
    let mut stream = greeted(server.local_addr()).await;
    stream.write_all(&timed_request(1, "now", 0)).await.unwrap();
    // Without a deadline.
    stream
        .write_all(&request_to("Gate", 3, "now", &[]))
        .await
        .unwrap();
    // The next frame answers id 3; nothing ever answers id 1.
    assert_eq!(read_frame(&mut stream).await, Some(vec![1, 3, 0, 1]));
    assert_eq!(imp.ran.load(Ordering::SeqCst), 1, "only id 3 ran");
    server.shutdown().await;
}
