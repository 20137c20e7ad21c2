//! zstd compression of large frames, through real sockets: what crosses
//! the wire (counted by a relay between client and server), each side's
//! settings on their own, and compressed frames that lie.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::wire::{expect_close, frame, read_frame, request_to, HELLO};
use rpc_runtime::{rpc_service, Channel, Compression, Server, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[rpc_service]
pub trait Echo {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
}

struct Impl;

impl Echo for Impl {
    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

/// Bytes that compress: text.
fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// Bytes that do not: a xorshift sequence.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// A relay in front of `server`, counting the bytes each way.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn relay(server: SocketAddr) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (u, d) = (Arc::clone(&up), Arc::clone(&down));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = TcpStream::connect(server).await.unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = upstream.into_split();
            tokio::spawn(pump(cr, sw, Arc::clone(&u)));
            tokio::spawn(pump(sr, cw, Arc::clone(&d)));
        }
    });
    Relay { addr, up, down }
}

async fn server(builder: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Server {
    builder(Server::builder().add_service(EchoServer::new(Impl)))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

/// Echoes `payload` through a relay; the bytes that went up and down.
async fn echoed(server: &Server, client: Compression, payload: Vec<u8>) -> (u64, u64) {
    let relay = relay(server.local_addr()).await;
    let channel = Channel::builder()
        .compression(client)
        .connect(relay.addr)
        .await
        .unwrap();
    let echo = EchoClient::new(channel);
    assert_eq!(echo.echo(payload.clone()).await.unwrap(), payload);
    drop(echo);
    (
        relay.up.load(Ordering::SeqCst),
        relay.down.load(Ordering::SeqCst),
    )
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn compressible_frames_travel_compressed_both_ways() {
    let server = server(|b| b).await;
    let (up, down) = echoed(&server, Compression::default(), text(MIB)).await;
    assert!(
        up < (MIB / 20) as u64 && down < (MIB / 20) as u64,
        "up {up}, down {down}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn incompressible_and_small_frames_travel_as_they_are() {
    let server = server(|b| b).await;
    let (up, down) = echoed(&server, Compression::default(), noise(MIB)).await;
    assert!(up > MIB as u64 && down > MIB as u64, "up {up}, down {down}");
    // Below the threshold (1 KiB), even text is sent as it is.
    let (up, down) = echoed(&server, Compression::default(), text(900)).await;
    assert!(up > 900 && down > 900, "up {up}, down {down}");
    server.shutdown().await;
}

#[tokio::test]
async fn each_side_decides_for_what_it_sends() {
    // The client sends as it is; the server still compresses its answer.
    let server_on = server(|b| b).await;
    let (up, down) = echoed(
        &server_on,
        Compression::default().send_uncompressed(),
        text(MIB),
    )
    .await;
    assert!(
        up > MIB as u64 && down < (MIB / 20) as u64,
        "up {up}, down {down}"
    );
    // A server that accepts none: neither direction is compressed.
    let server_off = server(|b| b.compression(Compression::disabled())).await;
    let (up, down) = echoed(&server_off, Compression::default(), text(MIB)).await;
    assert!(up > MIB as u64 && down > MIB as u64, "up {up}, down {down}");
    // A higher threshold: a 64 KiB frame of text goes as it is.
    let (up, _) = echoed(
        &server_on,
        Compression::default().threshold(MIB),
        text(64 * 1024),
    )
    .await;
    assert!(up > 64 * 1024, "up {up}");
    server_on.shutdown().await;
    server_off.shutdown().await;
}

/// A raw connection, greeted.
async fn greeted(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&frame(&HELLO)).await.unwrap();
    let hello = read_frame(&mut stream).await.expect("server greeting");
    // Version 3, and the last field: it accepts zstd.
    assert_eq!(
        (&hello[..6], hello.last()),
        (&b"RRPC\x01\x03"[..], Some(&1)),
        "{hello:02x?}"
    );
    stream
}

/// A request's payload: `request_to`'s frame without its length prefix.
fn request_payload() -> Vec<u8> {
    // echo(vec![]): the arguments are one empty Vec.
    request_to("Echo", 1, "echo", &[0])[4..].to_vec()
}

/// `payload` as a compressed frame: the tag byte, then zstd.
fn compressed(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![10u8];
    out.extend(zstd::bulk::compress(payload, 1).unwrap());
    out
}

#[tokio::test]
async fn a_compressed_request_from_a_raw_client_is_answered() {
    let server = server(|b| b).await;
    let mut stream = greeted(server.local_addr()).await;
    let request = request_payload();
    stream
        .write_all(&frame(&compressed(&request)))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.expect("an answer");
    // Response (1), id 1, status Ok (0), the empty Vec: uncompressed, as
    // this client accepts none.
    assert_eq!(answer, [1, 1, 0, 0]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_decompression_bomb_closes_the_connection_without_allocating() {
    let server = server(|b| b.max_frame_length(64 * 1024)).await;
    let mut stream = greeted(server.local_addr()).await;
    // A few hundred bytes that would be 256 MiB.
    let bomb = compressed(&vec![0u8; 256 * MIB]);
    assert!(bomb.len() < 64 * 1024);
    stream.write_all(&frame(&bomb)).await.unwrap();
    let goodbye = expect_close(&mut stream).await.expect("a goodbye");
    // Goodbye (2), code 5: FRAME_TOO_LARGE.
    assert_eq!(&goodbye[..2], &[2, 5], "{goodbye:?}");
    // Others are served.
    let (up, _) = echoed(&server, Compression::default(), text(1000)).await;
    assert!(up > 0);
    server.shutdown().await;
}

#[tokio::test]
async fn compressed_frames_that_lie_close_only_their_connection() {
    let server = server(|b| b).await;
    let request = request_payload();
    let mut zstd = compressed(&request);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not zstd at all", vec![10, 1, 2, 3, 4, 5, 6, 7, 8]),
        ("truncated", {
            zstd.truncate(zstd.len() - 3);
            zstd
        }),
        ("compressed twice", compressed(&compressed(&request))),
    ];
    for (what, payload) in cases {
        let mut stream = greeted(server.local_addr()).await;
        stream.write_all(&frame(&payload)).await.unwrap();
        let goodbye = expect_close(&mut stream).await;
        assert!(goodbye.is_some_and(|g| g.first() == Some(&2)), "{what}");
    }
    // A server that accepts none takes the tag for a message it does not know.
    let off = server_off().await;
    let mut stream = greeted_off(off.local_addr()).await;
    stream
        .write_all(&frame(&compressed(&request)))
        .await
        .unwrap();
    assert!(expect_close(&mut stream).await.is_some());
    let (up, _) = echoed(&server, Compression::default(), text(1000)).await;
    assert!(up > 0);
    server.shutdown().await;
    off.shutdown().await;
}

async fn server_off() -> Server {
    server(|b| b.compression(Compression::disabled())).await
}

async fn greeted_off(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&frame(&HELLO)).await.unwrap();
    let hello = read_frame(&mut stream).await.expect("server greeting");
    assert_eq!(hello.last(), Some(&0), "accepts none: {hello:02x?}");
    stream
}

#[tokio::test]
async fn a_version_2_greeting_is_told_the_version() {
    let server = server(|b| b).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    // Version 2 ended after max_in_flight.
    let v2 = [b'R', b'R', b'P', b'C', 0, 2, 0xfc, 0, 0, 0, 1, 0];
    stream.write_all(&frame(&v2)).await.unwrap();
    let theirs = read_frame(&mut stream).await.unwrap();
    // In version 2's own layout (five fields, nothing after them): the
    // server's newest version, 4.
    assert_eq!(theirs, b"RRPC\x01\x04\xfc\x00\x00\x00\x01\xfb\x00\x04");
    let goodbye = expect_close(&mut stream).await.expect("a goodbye");
    // Goodbye (2), code 7: VERSION_MISMATCH.
    assert_eq!(&goodbye[..2], &[2, 7], "{goodbye:?}");
    server.shutdown().await;
}
