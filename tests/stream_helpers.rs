//! The shapes people reach for when they make streams: a task feeding a
//! `Streaming::channel`, a tokio receiver, and the re-exported `StreamExt`
//! (no `futures` dependency needed), through real sockets.

use std::time::Duration;

use rpc_runtime::{rpc_service, Code, RpcError, Server, Status, StreamExt, Streaming};
use tokio::sync::{mpsc, oneshot, Mutex};

#[rpc_service]
trait Helpers {
    /// `count` numbers, fed by a spawned task through `Streaming::channel`.
    async fn fed(&self, count: u32) -> Streaming<u32>;
    /// `ok` items, then the stream ends with an error.
    async fn fed_then_failed(&self, ok: u32) -> Streaming<u32>;
    /// Numbers from a tokio channel, until its senders are gone.
    async fn of_receiver(&self, count: u32) -> Streaming<u32>;
    /// Numbers for as long as anyone listens; says when its producer
    /// noticed nobody does.
    async fn until_gone(&self) -> Streaming<u32>;
    /// The sum of what the caller sends.
    async fn sum(&self, numbers: Streaming<u32>) -> u32;
}

struct HelpersImpl {
    gone: Mutex<Option<oneshot::Sender<()>>>,
}

impl Helpers for HelpersImpl {
    async fn fed(&self, count: u32) -> Streaming<u32> {
        let (sender, stream) = Streaming::channel(4);
        tokio::spawn(async move {
            for n in 0..count {
                if sender.send(n).await.is_err() {
                    return;
                }
            }
        });
        stream
    }
    async fn fed_then_failed(&self, ok: u32) -> Streaming<u32> {
        let (sender, stream) = Streaming::channel(4);
        tokio::spawn(async move {
            for n in 0..ok {
                if sender.send(n).await.is_err() {
                    return;
                }
            }
            let _ = sender
                .fail(Status::resource_exhausted("ran dry").into())
                .await;
        });
        stream
    }
    async fn of_receiver(&self, count: u32) -> Streaming<u32> {
        let (sender, receiver) = mpsc::channel(2);
        tokio::spawn(async move {
            for n in 0..count {
                if sender.send(n).await.is_err() {
                    return;
                }
            }
        });
        receiver.into()
    }
    async fn until_gone(&self) -> Streaming<u32> {
        let gone = self.gone.lock().await.take();
        let (sender, stream) = Streaming::channel(1);
        tokio::spawn(async move {
            for n in 0..1_000_000 {
                if sender.send(n).await.is_err() {
                    break;
                }
            }
            if let Some(gone) = gone {
                let _ = gone.send(());
            }
        });
        stream
    }
    async fn sum(&self, numbers: Streaming<u32>) -> u32 {
        numbers
            .map(|n| n.unwrap_or(0))
            .fold(0, |a, b| async move { a + b })
            .await
    }
}

async fn server() -> (Server, HelpersClient, oneshot::Receiver<()>) {
    let (gone, gone_seen) = oneshot::channel();
    let server = Server::builder()
        .add_service(HelpersServer::new(HelpersImpl {
            gone: Mutex::new(Some(gone)),
        }))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = HelpersClient::connect(server.local_addr()).await.unwrap();
    (server, client, gone_seen)
}

#[tokio::test]
async fn a_task_feeds_a_stream_through_a_channel() {
    let (server, client, _) = server().await;
    let items: Vec<u32> = client
        .fed(100)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, (0..100).collect::<Vec<_>>());

    let mut failing = client.fed_then_failed(3).await.unwrap();
    for n in 0..3 {
        assert_eq!(failing.next().await.unwrap().unwrap(), n);
    }
    let last = failing.next().await.unwrap();
    assert!(
        matches!(&last, Err(RpcError::Status(s)) if s.code() == Code::RESOURCE_EXHAUSTED),
        "{last:?}"
    );
    assert!(failing.next().await.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn a_tokio_receiver_is_a_stream_both_ways() {
    let (server, client, _) = server().await;
    let items: Vec<u32> = client
        .of_receiver(50)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items.len(), 50);

    let (sender, receiver) = mpsc::unbounded_channel();
    for n in 1..=10 {
        sender.send(n).unwrap();
    }
    drop(sender);
    assert_eq!(client.sum(receiver.into()).await.unwrap(), 55);
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        for n in 1..=4 {
            sender.send(n).await.unwrap();
        }
    });
    assert_eq!(client.sum(receiver.into()).await.unwrap(), 10);
    server.shutdown().await;
}

#[tokio::test]
async fn the_feeding_task_learns_when_the_stream_is_dropped() {
    let (server, client, gone) = server().await;
    let mut stream = client.until_gone().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    drop(stream);
    tokio::time::timeout(Duration::from_secs(2), gone)
        .await
        .expect("the producer never noticed")
        .unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn a_sender_outlives_nothing() {
    let (sender, stream) = Streaming::<u8>::channel(0);
    assert!(!sender.is_closed());
    drop(stream);
    assert!(sender.is_closed());
    sender.closed().await;
    let refused = sender.send(5).await.unwrap_err();
    assert_eq!(refused.into_inner(), 5);
}
