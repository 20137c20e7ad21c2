//! Keepalive: a server that vanished without closing the connection is
//! noticed by its silence to pings, long before the calls' deadlines; a slow
//! server that still answers pings is not.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::CalculatorClient;
use rpc_runtime::{rpc_service, Channel, RpcError, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every outcome here must arrive within this.
const LIMIT: Duration = Duration::from_secs(2);

use common::wire::SERVER_HELLO_RANGED as SERVER_HELLO;

/// Variant indexes of the messages (docs/PROTOCOL.md, section 5).
const REQUEST: u8 = 0;
const PING: u8 = 4;

/// Reads one frame's payload; `None` when the peer closed the connection.
async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// A dead peer: it accepts one connection, completes the greeting, then reads
/// everything and never answers nor closes, like a host that vanished. The
/// handle yields the frames it received once the client closes.
async fn dead_server() -> (SocketAddr, JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let hello = read_frame(&mut stream)
            .await
            .expect("the client's greeting");
        assert!(hello.starts_with(b"RRPC\x00"), "{hello:02x?}");
        stream.write_all(&SERVER_HELLO).await.unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = read_frame(&mut stream).await {
            frames.push(frame);
        }
        frames
    });
    (addr, received)
}

/// The frames the dead server received, once the client has hung up.
async fn received(frames: JoinHandle<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
    tokio::time::timeout(LIMIT, frames)
        .await
        .expect("the client never closed the connection")
        .unwrap()
}

#[tokio::test]
async fn a_dead_server_is_detected_by_keepalive_long_before_the_deadline() {
    let (addr, frames) = dead_server().await;
    let start = Instant::now();
    let channel = Channel::builder()
        .keepalive_interval(Some(Duration::from_millis(100)))
        .keepalive_timeout(Duration::from_millis(100))
        .timeout(Duration::from_secs(30))
        .connect(addr)
        .await
        .unwrap();
    let client = CalculatorClient::new(channel.clone());
    let result = tokio::time::timeout(LIMIT, client.add(2, 3))
        .await
        .expect("keepalive did not fail the call");
    match result {
        Err(RpcError::ConnectionLost { reason }) => {
            assert!(reason.contains("keepalive"), "{reason}");
        }
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    // A ping went unanswered for its timeout: at least 100 + 100 ms.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(channel.is_closed());

    // The client closed the connection; the peer got the call, then a ping.
    let frames = received(frames).await;
    assert_eq!(frames.first().map(|f| f[0]), Some(REQUEST), "{frames:02x?}");
    let ping = frames
        .iter()
        .find(|f| f.first() == Some(&PING))
        .unwrap_or_else(|| panic!("no ping among {frames:02x?}"));
    assert_eq!(
        ping.len(),
        2,
        "a ping is its variant and a nonce: {ping:02x?}"
    );
}

#[rpc_service]
trait Slow {
    async fn wait(&self, ms: u64) -> u64;
    async fn blob(&self, len: usize) -> Vec<u8>;
}

struct SlowImpl;

impl Slow for SlowImpl {
    async fn wait(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    async fn blob(&self, len: usize) -> Vec<u8> {
        vec![7; len]
    }
}

async fn slow_server() -> Server {
    // Answers go as they are: compressed, a blob of one repeated byte would
    // not take the slow link's time to arrive.
    Server::builder()
        .add_service(SlowServer::new(SlowImpl))
        .compression(rpc_runtime::Compression::disabled())
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_slow_server_that_answers_pings_keeps_its_calls() {
    let server = slow_server().await;
    let channel = Channel::builder()
        .keepalive_interval(Some(Duration::from_millis(100)))
        .keepalive_timeout(Duration::from_millis(100))
        .connect(server.local_addr())
        .await
        .unwrap();
    let client = SlowClient::new(channel.clone());
    // The handler is silent for 500 ms, five keepalive intervals; the
    // server's pongs keep the connection alive.
    let result = tokio::time::timeout(LIMIT, client.wait(500))
        .await
        .expect("the call hung");
    assert_eq!(result.unwrap(), 500);
    // Two at once, on the same connection.
    let (a, b) = tokio::time::timeout(LIMIT, async {
        tokio::join!(client.wait(300), client.wait(250))
    })
    .await
    .expect("the calls hung");
    assert_eq!((a.unwrap(), b.unwrap()), (300, 250));
    assert!(!channel.is_closed());
    assert_eq!(server.connections(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn without_keepalive_a_dead_server_fails_calls_at_their_deadline() {
    let (addr, frames) = dead_server().await;
    let channel = Channel::builder()
        .keepalive_interval(None)
        .keepalive_timeout(Duration::from_millis(100))
        .timeout(Duration::from_millis(300))
        .connect(addr)
        .await
        .unwrap();
    let client = CalculatorClient::new(channel.clone());
    let start = Instant::now();
    let result = tokio::time::timeout(LIMIT, client.add(2, 3))
        .await
        .expect("the call outlived its deadline");
    match result {
        Err(RpcError::DeadlineExceeded { timeout }) => {
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    // Only the call failed; the connection is still up.
    assert!(!channel.is_closed());

    drop((client, channel));
    let frames = received(frames).await;
    assert_eq!(frames.first().map(|f| f[0]), Some(REQUEST), "{frames:02x?}");
    assert!(
        frames.iter().all(|f| f.first() != Some(&PING)),
        "keepalive is off, yet the client pinged: {frames:02x?}"
    );
}

/// A proxy in front of `upstream` whose server-to-client direction is a slow
/// link: `chunk` bytes every `pause`. Client-to-server bytes pass at once.
async fn slow_link(upstream: SocketAddr, chunk: usize, pause: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0; chunk];
                loop {
                    match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                    // The link's bandwidth, not a wait for an event.
                    tokio::time::sleep(pause).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_answer_still_arriving_over_a_slow_link_keeps_the_connection() {
    let server = slow_server().await;
    // 8 KiB every 20 ms: the 200 KB answer takes about half a second to
    // arrive, and the server's pong queues behind it, so for five keepalive
    // intervals no complete frame arrives; bytes, though, arrive all along.
    let link = slow_link(server.local_addr(), 8 * 1024, Duration::from_millis(20)).await;
    let channel = Channel::builder()
        .keepalive_interval(Some(Duration::from_millis(100)))
        .keepalive_timeout(Duration::from_millis(100))
        .connect(link)
        .await
        .unwrap();
    let client = SlowClient::new(channel.clone());
    let start = Instant::now();
    let result = tokio::time::timeout(LIMIT, client.blob(200_000))
        .await
        .expect("the call hung");
    let blob = result.expect("a server that is sending was declared dead");
    assert_eq!(blob.len(), 200_000);
    assert!(blob.iter().all(|&b| b == 7));
    // The answer did take several keepalive periods to arrive.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert!(!channel.is_closed());
    server.shutdown().await;
}
