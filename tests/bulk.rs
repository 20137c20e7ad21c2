//! Large byte strings through real sockets: arguments, return values and
//! stream items of type `Bytes` (which are decoded as slices of the frame
//! that carried them), frames on both sides of the size at which the
//! writer stops copying them, and large and small calls interleaved on one
//! connection.

use bytes::Bytes;
use futures::StreamExt;
use rpc_runtime::{rpc_service, Channel, Server, Streaming};

#[rpc_service]
trait Blobs {
    async fn echo(&self, data: Bytes) -> Bytes;
    async fn around(&self, head: u32, data: Bytes, tail: String) -> (String, Bytes, u32);
    async fn chunks(&self, n: u32, size: u32) -> Streaming<Bytes>;
    async fn total(&self, chunks: Streaming<Bytes>) -> u64;
}

struct Impl;

impl Blobs for Impl {
    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
    async fn around(&self, head: u32, data: Bytes, tail: String) -> (String, Bytes, u32) {
        (tail, data, head)
    }
    async fn chunks(&self, n: u32, size: u32) -> Streaming<Bytes> {
        Streaming::from_iter((0..n).map(move |i| pattern(i as usize, size as usize)))
    }
    async fn total(&self, mut chunks: Streaming<Bytes>) -> u64 {
        let mut total = 0;
        while let Some(Ok(chunk)) = chunks.next().await {
            total += chunk.len() as u64;
        }
        total
    }
}

/// `len` bytes that differ with `seed` and position.
fn pattern(seed: usize, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ seed) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn client() -> (BlobsClient, Server) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(BlobsServer::new(Impl))
        .serve(listener)
        .unwrap();
    (
        BlobsClient::new(Channel::connect(addr).await.unwrap()),
        server,
    )
}

#[tokio::test]
async fn byte_strings_of_every_size_come_back_intact() {
    let (client, _server) = client().await;
    let large = 16 * 1024;
    for len in [
        0,
        1,
        250,
        251,
        large - 9,
        large - 8,
        large,
        large + 1,
        1 << 20,
        3 << 20,
    ] {
        let data = pattern(len, len);
        assert_eq!(
            client.echo(data.clone()).await.unwrap(),
            data,
            "{len} bytes"
        );
    }
}

#[tokio::test]
async fn a_byte_string_between_other_arguments_keeps_its_place() {
    let (client, _server) = client().await;
    let data = pattern(7, 100_000);
    let (tail, back, head) = client
        .around(42, data.clone(), "tail".to_owned())
        .await
        .unwrap();
    assert_eq!((tail.as_str(), head), ("tail", 42));
    assert_eq!(back, data);
}

#[tokio::test]
async fn large_and_small_calls_interleave_on_one_connection() {
    let (client, _server) = client().await;
    let calls = (0..48usize).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let len = if i % 3 == 0 { 200_000 + i } else { i * 10 };
            let data = pattern(i, len);
            let back = client.echo(data.clone()).await.unwrap();
            assert_eq!(back, data, "call {i}");
        })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap();
    }
}

#[tokio::test]
async fn byte_strings_stream_both_ways() {
    let (client, _server) = client().await;
    let mut chunks = client.chunks(5, 70_000).await.unwrap();
    let mut i = 0;
    while let Some(chunk) = chunks.next().await {
        assert_eq!(chunk.unwrap(), pattern(i, 70_000));
        i += 1;
    }
    assert_eq!(i, 5);

    let sent = Streaming::from_iter((0..6).map(|i| pattern(i, 50_000 + i)));
    let total = client.total(sent).await.unwrap();
    assert_eq!(total, (0..6).map(|i| 50_000 + i as u64).sum::<u64>());
}
