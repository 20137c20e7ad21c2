//! Answers a client written from docs/PROTOCOL.md alone relies on, byte
//! for byte: errors sent before any handler ran carry no reply metadata
//! (section 5.1), and a call whose streams are not its method's is
//! refused with code 3 before anything runs (sections 5.6 to 5.8).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::wire::{greeted, read_frame, request_with};
use rpc_runtime::{rpc_service, Server, Streaming};
use tokio::io::AsyncWriteExt;

/// Request flags (section 5.0).
const STREAM_OUT: u8 = 4;
const ACCEPT: u8 = 16;
const REPLY_METADATA: u8 = 32;

#[rpc_service]
trait Probe {
    /// Counts its runs.
    async fn bump(&self, by: u32) -> u32;
    /// `0..n`, refused (with the value `n`) when `n` is odd.
    async fn evens(&self, n: u32) -> Result<Streaming<u32>, u32>;
}

struct Impl(Arc<AtomicUsize>);

impl Probe for Impl {
    async fn bump(&self, by: u32) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst);
        by
    }
    async fn evens(&self, n: u32) -> Result<Streaming<u32>, u32> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if n % 2 == 1 {
            return Err(n);
        }
        Ok(Streaming::from_iter(0..n))
    }
}

async fn server() -> (Server, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .add_service(ProbeServer::new(Impl(Arc::clone(&runs))))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (server, runs)
}

/// A `Response` (1) to `id` with status `Error` (1) and `code`: its
/// header, the message, and whatever follows it (the body).
fn error_parts(frame: &[u8], id: u8, code: u8) -> (String, Vec<u8>) {
    assert_eq!(&frame[..4], [1, id, 1, code], "{frame:02x?}");
    let len = usize::from(frame[4]);
    let message = String::from_utf8(frame[5..5 + len].to_vec()).unwrap();
    (message, frame[5 + len..].to_vec())
}

#[tokio::test]
async fn an_error_sent_before_the_handler_ran_has_an_empty_body() {
    let (server, runs) = server().await;
    let mut stream = greeted(server.local_addr()).await;
    // `bump` with no arguments at all: they do not decode.
    stream
        .write_all(&request_with("Probe", 1, "bump", None, REPLY_METADATA, &[]))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.unwrap();
    let (_, body) = error_parts(&answer, 1, 3);
    assert!(body.is_empty(), "a body of {body:02x?}");
    // `bump` asked for a stream: the stream kinds do not match.
    stream
        .write_all(&request_with(
            "Probe",
            3,
            "bump",
            None,
            REPLY_METADATA | STREAM_OUT,
            &[2],
        ))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.unwrap();
    let (message, body) = error_parts(&answer, 3, 3);
    assert!(message.contains("answers with one value"), "{message}");
    assert!(body.is_empty(), "a body of {body:02x?}");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "no handler ran");
    server.shutdown().await;
}

#[tokio::test]
async fn a_one_value_method_asked_for_a_refusable_stream_is_not_run() {
    let (server, runs) = server().await;
    let mut stream = greeted(server.local_addr()).await;
    stream
        .write_all(&request_with(
            "Probe",
            1,
            "bump",
            None,
            STREAM_OUT | ACCEPT,
            &[2],
        ))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.unwrap();
    let (message, _) = error_parts(&answer, 1, 3);
    assert!(message.contains("answers with one value"), "{message}");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the handler did not run");
    server.shutdown().await;
}

#[tokio::test]
async fn a_refusable_stream_without_accept_streams_without_head_and_names_accept_when_refused() {
    let (server, _runs) = server().await;
    let mut stream = greeted(server.local_addr()).await;
    // Accepted: the items and the end, no `Head` (section 5.8).
    stream
        .write_all(&request_with("Probe", 1, "evens", None, STREAM_OUT, &[2]))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut stream).await.unwrap(), [6, 1, 0]);
    assert_eq!(read_frame(&mut stream).await.unwrap(), [6, 1, 1]);
    assert_eq!(read_frame(&mut stream).await.unwrap(), [1, 1, 0]);
    // Refused: a caller that did not set ACCEPT cannot receive the
    // refusal's value, and is told why.
    stream
        .write_all(&request_with("Probe", 3, "evens", None, STREAM_OUT, &[3]))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.unwrap();
    let (message, _) = error_parts(&answer, 3, 3);
    assert!(message.contains("ACCEPT"), "{message}");
    server.shutdown().await;
}
