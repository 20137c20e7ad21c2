//! Generated clients over the call seam: a wrapper around a channel sees
//! every call of every kind, and a transport that is no channel at all (a
//! test double) serves a generated client unchanged.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{calculator_server, CalculatorClient};
use futures::StreamExt;
use rpc_runtime::call::{CallKind, Invoke, RawCall, RawReply, RawStream};
use rpc_runtime::service::Bytes;
use rpc_runtime::{rpc_service, RpcError, Server, Streaming};

/// Counts the calls it carries, by kind, then lets `inner` carry them.
#[derive(Clone)]
struct Counted<C> {
    inner: C,
    unary: Arc<AtomicUsize>,
    other: Arc<AtomicUsize>,
}

impl<C> Counted<C> {
    fn around(inner: C) -> Self {
        Counted {
            inner,
            unary: Arc::default(),
            other: Arc::default(),
        }
    }
}

impl<C: Invoke> Invoke for Counted<C> {
    async fn invoke(self, call: RawCall) -> Result<RawReply, RpcError> {
        let counter = match call.kind() {
            CallKind::Unary => &self.unary,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        self.inner.invoke(call).await
    }
}

#[rpc_service]
trait Feed {
    async fn count(&self, n: u32) -> Streaming<u32>;
    #[rpc(oneway)]
    async fn poke(&self);
}

struct FeedImpl;

impl Feed for FeedImpl {
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
    async fn poke(&self) {}
}

#[tokio::test]
async fn a_wrapper_around_a_channel_sees_every_call() {
    let server = calculator_server().await;
    let channel = rpc_runtime::Channel::connect(server.local_addr())
        .await
        .unwrap();
    let counted = Counted::around(channel);
    let client = CalculatorClient::new(counted.clone());
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    assert_eq!(
        client
            .with_timeout(std::time::Duration::from_secs(5))
            .add(1, 1)
            .await
            .unwrap(),
        2
    );
    assert_eq!(counted.unary.load(Ordering::SeqCst), 2);
    server.shutdown().await;

    let feed = Server::builder()
        .add_service(FeedServer::new(FeedImpl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let channel = rpc_runtime::Channel::connect(feed.local_addr())
        .await
        .unwrap();
    let counted = Counted::around(channel);
    let client = FeedClient::new(counted.clone());
    let numbers: Vec<u32> = client
        .count(3)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(numbers, vec![0, 1, 2]);
    client.poke().await.unwrap();
    assert_eq!(
        counted.other.load(Ordering::SeqCst),
        2,
        "the stream and the one-way call"
    );
    assert_eq!(counted.unary.load(Ordering::SeqCst), 0);
    feed.shutdown().await;
}

/// Answers every call itself, without a network.
#[derive(Clone)]
struct Double;

impl Invoke for Double {
    async fn invoke(self, call: RawCall) -> Result<RawReply, RpcError> {
        match (call.service(), call.method(), call.kind()) {
            // add(40, 2): two zigzag varints, 80 and 4.
            ("Calculator", "add", CallKind::Unary) => {
                assert_eq!(call.args(), [80, 4]);
                RawReply::value(&42i64)
            }
            // Two items; a u32 below 251 encodes as its one byte.
            ("Feed", "count", CallKind::ServerStream) => {
                let items = futures::stream::iter([7u8, 8]).map(|v| Ok(Bytes::from(vec![v])));
                Ok(RawReply::Stream(RawStream::from_stream(items)))
            }
            (service, method, _) => Err(RpcError::UnknownMethod {
                service: service.to_owned(),
                method: method.to_owned(),
            }),
        }
    }
}

#[tokio::test]
async fn a_test_double_serves_a_generated_client() {
    let client = CalculatorClient::new(Double);
    assert_eq!(client.add(40, 2).await.unwrap(), 42);
    let unknown = client.ping().await;
    assert!(
        matches!(unknown, Err(RpcError::UnknownMethod { .. })),
        "{unknown:?}"
    );
    let feed = FeedClient::new(Double);
    let numbers: Vec<u32> = feed
        .count(2)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(numbers, vec![7, 8]);
}
