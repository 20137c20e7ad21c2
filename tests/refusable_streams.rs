//! Streams a server can refuse before they start: `Result<Streaming<T>, E>`
//! with an error type of the application's own, or with a `Status`. The
//! caller gets the refusal as the call's result, before any item; an
//! accepted stream is returned at once, before its first item.

use std::time::Duration;

use rpc_runtime::{rpc_service, Code, RpcError, Server, Status, StreamExt, Streaming};
use serde::{Deserialize, Serialize};

/// Why a range is refused.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum RangeError {
    /// `from` is after `to`.
    Backwards,
}

#[rpc_service]
pub trait Ranges {
    /// The numbers `from..to`, refused with a value when backwards.
    async fn count(&self, from: u32, to: u32) -> Result<Streaming<u32>, RangeError>;
    /// The same, refused with a status.
    async fn strict(&self, from: u32, to: u32) -> Result<Streaming<u32>, Status>;
    /// Accepted at once; the first item comes only after `wait_ms`.
    async fn slow(&self, wait_ms: u64) -> Result<Streaming<u32>, Status>;
    /// Each number sent, doubled; refused when `factor` is zero.
    async fn scale(&self, factor: u32, numbers: Streaming<u32>) -> Result<Streaming<u32>, Status>;
}

struct Impl;

impl Ranges for Impl {
    async fn count(&self, from: u32, to: u32) -> Result<Streaming<u32>, RangeError> {
        if from > to {
            return Err(RangeError::Backwards);
        }
        Ok(Streaming::from_iter(from..to))
    }
    async fn strict(&self, from: u32, to: u32) -> Result<Streaming<u32>, Status> {
        if from > to {
            return Err(Status::invalid_argument(format!("{from} is after {to}")));
        }
        Ok(Streaming::from_iter(from..to))
    }
    async fn slow(&self, wait_ms: u64) -> Result<Streaming<u32>, Status> {
        Ok(Streaming::from_stream(futures::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            7
        })))
    }
    async fn scale(&self, factor: u32, numbers: Streaming<u32>) -> Result<Streaming<u32>, Status> {
        if factor == 0 {
            return Err(Status::out_of_range("a factor of zero"));
        }
        Ok(Streaming::try_from_stream(
            numbers.map(move |n| n.map(|n| n * factor)),
        ))
    }
}

async fn client() -> (Server, RangesClient) {
    let server = Server::builder()
        .add_service(RangesServer::new(Impl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = RangesClient::connect(server.local_addr()).await.unwrap();
    (server, client)
}

#[tokio::test]
async fn a_stream_refused_with_a_value_is_the_calls_result() {
    let (server, client) = client().await;
    let refused = client.count(5, 1).await.unwrap();
    assert_eq!(refused.unwrap_err(), RangeError::Backwards);
    let accepted = client.count(1, 4).await.unwrap().unwrap();
    let items: Vec<u32> = accepted.map(Result::unwrap).collect().await;
    assert_eq!(items, [1, 2, 3]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_refused_with_a_status_is_the_calls_error() {
    let (server, client) = client().await;
    match client.strict(5, 1).await {
        Err(RpcError::Status(status)) => {
            assert_eq!(status.code(), Code::INVALID_ARGUMENT);
            assert_eq!(status.message(), "5 is after 1");
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    let items: Vec<u32> = client
        .strict(0, 3)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, [0, 1, 2]);
    server.shutdown().await;
}

#[tokio::test]
async fn an_accepted_stream_is_returned_before_its_first_item() {
    let (server, client) = client().await;
    // The call returns well before the first item (5 s away).
    let stream = tokio::time::timeout(Duration::from_secs(2), client.slow(5_000))
        .await
        .expect("the call waited for the first item")
        .unwrap();
    drop(stream);
    server.shutdown().await;
}

#[tokio::test]
async fn both_ways_refused_or_accepted() {
    let (server, client) = client().await;
    match client.scale(0, Streaming::from_iter([1, 2])).await {
        Err(RpcError::Status(status)) => assert_eq!(status.code(), Code::OUT_OF_RANGE),
        other => panic!("expected the refusal, got {other:?}"),
    }
    let scaled: Vec<u32> = client
        .scale(3, Streaming::from_iter([1, 2]))
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(scaled, [3, 6]);
    server.shutdown().await;
}
