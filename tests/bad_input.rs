//! Hostile and broken input, sent with raw sockets: the server answers with an
//! error where it can, closes only the offending connection where it must, and
//! keeps serving everybody else.

mod common;

use std::time::Duration;

use common::wire::{expect_close, frame, greeted, read_frame, request_to, HELLO};
use common::{calculator_server, CalculatorClient};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A request frame for `Calculator.<method>` with request id `id` (< 251).
fn request(id: u8, method: &str, body: &[u8]) -> Vec<u8> {
    request_to("Calculator", id, method, body)
}

/// A deterministic byte generator (xorshift), so failures reproduce.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

async fn still_serving(client: &CalculatorClient, n: i64) {
    assert_eq!(client.add(n, 1).await.unwrap(), n + 1);
    // And new connections are accepted.
    let fresh = CalculatorClient::connect(client.channel().peer())
        .await
        .unwrap();
    assert_eq!(fresh.add(n, 2).await.unwrap(), n + 2);
}

#[tokio::test]
async fn random_bytes_instead_of_a_greeting() {
    let server = calculator_server().await;
    let good = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    for seed in 1..=20 {
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        // Ignore write errors: the server may already have hung up.
        let _ = stream.write_all(&noise(seed, 4096)).await;
        expect_close(&mut stream).await;
        still_serving(&good, i64::try_from(seed).unwrap()).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn random_frames_after_the_greeting() {
    let server = calculator_server().await;
    let good = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    for seed in 1..=50u64 {
        let mut stream = greeted(server.local_addr()).await;
        let len = usize::try_from(seed * 37 % 300).unwrap();
        let _ = stream.write_all(&frame(&noise(seed, len))).await;
        let _ = stream.shutdown().await;
        // Whatever it made of the frame, the server answers or closes.
        while read_frame(&mut stream).await.is_some() {}
        still_serving(&good, i64::try_from(seed).unwrap()).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_four_gib_length_prefix_is_refused_without_allocating() {
    let server = calculator_server().await;
    let good = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();

    // Before the greeting.
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    assert_eq!(expect_close(&mut stream).await, None);
    still_serving(&good, 1).await;

    // After the greeting: the server says why, then closes.
    let mut stream = greeted(server.local_addr()).await;
    stream
        .write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let goodbye = expect_close(&mut stream).await.expect("a goodbye frame");
    // Goodbye (variant 2), code 5 = frame too large.
    assert_eq!(&goodbye[..2], &[2, 5], "{goodbye:?}");
    still_serving(&good, 2).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_truncated_frame_then_hang_up() {
    let server = calculator_server().await;
    let good = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    let mut stream = greeted(server.local_addr()).await;
    let full = request(1, "add", &[4, 6]);
    stream.write_all(&full[..full.len() - 3]).await.unwrap();
    stream.shutdown().await.unwrap();
    // The server says why (code 8, protocol error), then closes.
    let goodbye = expect_close(&mut stream).await.expect("a goodbye frame");
    assert_eq!(&goodbye[..2], &[2, 8], "{goodbye:?}");
    still_serving(&good, 3).await;

    // A peer that vanishes mid-frame without a clean shutdown.
    let mut stream = greeted(server.local_addr()).await;
    stream.write_all(&[0, 0, 1, 0, 9, 9]).await.unwrap();
    drop(stream);
    still_serving(&good, 4).await;
    server.shutdown().await;
}

#[tokio::test]
async fn undecodable_arguments_fail_the_call_not_the_connection() {
    let server = calculator_server().await;
    let mut stream = greeted(server.local_addr()).await;

    // `add` with a body that is not two varints (0xff is no valid tag).
    stream
        .write_all(&request(1, "add", &[0xff, 0xff]))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.unwrap();
    // Response (1), id 1, status Error (1), code 3 = bad request.
    assert_eq!(&answer[..4], &[1, 1, 1, 3], "{answer:?}");

    // Too few arguments, then trailing bytes (ids from a dialer are odd).
    stream.write_all(&request(3, "add", &[4])).await.unwrap();
    assert_eq!(&read_frame(&mut stream).await.unwrap()[..4], &[1, 3, 1, 3]);
    stream
        .write_all(&request(5, "add", &[4, 6, 8]))
        .await
        .unwrap();
    assert_eq!(&read_frame(&mut stream).await.unwrap()[..4], &[1, 5, 1, 3]);

    // `echo(name: String, ..)` whose name claims to be 2^40 bytes long: refused
    // by the decoder's limit, not allocated.
    let huge = [0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
    stream.write_all(&request(7, "echo", &huge)).await.unwrap();
    assert_eq!(&read_frame(&mut stream).await.unwrap()[..4], &[1, 7, 1, 3]);

    // The same connection still serves a good call: add(2, 3) = 5.
    stream.write_all(&request(9, "add", &[4, 6])).await.unwrap();
    assert_eq!(read_frame(&mut stream).await.unwrap(), vec![1, 9, 0, 10]);
    server.shutdown().await;
}

#[tokio::test]
async fn an_undecodable_header_closes_only_that_connection() {
    let server = calculator_server().await;
    let good = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();

    // A goodbye whose message claims 2^60 bytes, and a request cut off in
    // its method id.
    for header in [
        &[2, 0, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10][..],
        &[0, 1, 0x85, 0xf9],
    ] {
        let mut stream = greeted(server.local_addr()).await;
        stream.write_all(&frame(header)).await.unwrap();
        let goodbye = expect_close(&mut stream).await.expect("a goodbye frame");
        // Goodbye (2), code 8 = protocol error.
        assert_eq!(&goodbye[..2], &[2, 8], "{goodbye:?}");
        still_serving(&good, 5).await;
    }

    // A response sent to the server, which made no calls.
    let mut stream = greeted(server.local_addr()).await;
    stream.write_all(&frame(&[1, 1, 0, 10])).await.unwrap();
    let goodbye = expect_close(&mut stream).await.expect("a goodbye frame");
    assert_eq!(&goodbye[..2], &[2, 8], "{goodbye:?}");
    still_serving(&good, 6).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_greeting_of_another_version_gets_an_answer_then_a_close() {
    let server = calculator_server().await;
    // A dialer of versions 9 to 10: the ranged greeting of section 4.1
    // (its limit and window as in HELLO, then oldest 9, no extensions).
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let hello = [b'R', b'R', b'P', b'C', 0, 10, 0xfc, 0, 0, 0, 1, 0, 9, 0];
    stream.write_all(&frame(&hello)).await.unwrap();
    let theirs = read_frame(&mut stream).await.unwrap();
    // Role 1, version 4 (its newest), limit 16 MiB, window 1,024, oldest
    // 3, and the extension zstd.
    assert_eq!(
        theirs, b"RRPC\x01\x04\xfc\x00\x00\x00\x01\xfb\x00\x04\x03\x01\x01",
        "the server's ranged greeting"
    );
    let goodbye = expect_close(&mut stream).await.expect("a goodbye frame");
    // Goodbye (2), code 7 = version mismatch, naming the versions.
    assert_eq!(&goodbye[..2], &[2, 7], "{goodbye:?}");
    let text = String::from_utf8_lossy(&goodbye);
    assert!(text.contains("speaks versions 3 to 4"), "{text}");

    // A dialer of version 2 gets a greeting in its own layout: five fields
    // and nothing more (its decoder fails on anything more), then goodbye 7.
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let old = [b'R', b'R', b'P', b'C', 0, 2, 0xfc, 0, 0, 0, 1, 0];
    stream.write_all(&frame(&old)).await.unwrap();
    let theirs = read_frame(&mut stream).await.unwrap();
    assert_eq!(theirs, b"RRPC\x01\x04\xfc\x00\x00\x00\x01\xfb\x00\x04");
    let goodbye = expect_close(&mut stream).await.expect("a goodbye frame");
    assert_eq!(&goodbye[..2], &[2, 7], "{goodbye:?}");
    server.shutdown().await;
}

/// A greeted connection whose receive buffer is 4 KiB, so that answers it
/// does not read back up soon.
async fn greeted_with_small_window(server: &rpc_runtime::Server) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.local_addr()).await.unwrap();
    stream.write_all(&frame(&HELLO)).await.unwrap();
    read_frame(&mut stream).await.expect("server greeting");
    stream
}

/// A client that sends requests (and pings) but never reads the answers is
/// pushed back: once its answers back up, the server stops reading it
/// instead of queueing answers without bound; everybody else is served.
#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_pushed_back() {
    let server = calculator_server().await;
    let good = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();

    let mut stream = greeted_with_small_window(&server).await;

    let mut batch = Vec::new();
    for _ in 0..500 {
        batch.extend_from_slice(&request(1, "add", &[4, 6]));
        batch.extend_from_slice(&[0, 0, 0, 2, 4, 9]); // a ping
    }
    let mut written = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), stream.write_all(&batch)).await {
            Ok(result) => {
                result.unwrap();
                written += batch.len();
            }
            // The writes stall: the server stopped reading this client.
            Err(_) => break,
        }
        assert!(
            written < 64 << 20,
            "the server kept reading requests whose answers nobody reads ({written} bytes)"
        );
    }
    // Nothing holds the unread answers but the connection's bounded queue:
    // no task per answer, no growing buffer.
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(
        tasks < 32,
        "{tasks} tasks alive after {written} bytes of requests"
    );
    still_serving(&good, 7).await;
    server.abort().await;
}

// ---- Abuse: every case leaves the server up, its counters back where they
// were, and an honest client served throughout.

/// A calculator server with short limits, and an honest client of it.
async fn strict_server(
    configure: impl FnOnce(rpc_runtime::ServerBuilder) -> rpc_runtime::ServerBuilder,
) -> (rpc_runtime::Server, CalculatorClient) {
    let server = configure(
        rpc_runtime::Server::builder().add_service(common::CalculatorServer::new(common::Calc)),
    )
    .bind("127.0.0.1:0")
    .await
    .unwrap();
    let honest = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    (server, honest)
}

/// Waits (polling the server's counter, which cannot be awaited) until the
/// server holds `n` connections.
async fn until_connections(server: &rpc_runtime::Server, n: usize) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.connections() != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the server holds {} connections, not {n}",
            server.connections()
        )
    });
}

#[tokio::test]
async fn a_thousand_connections_dropped_mid_greeting() {
    let (server, honest) = strict_server(|b| b).await;
    for i in 0..1000u32 {
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        // Part of a greeting, then gone.
        let cut = 1 + (i as usize % 14);
        stream.write_all(&frame(&HELLO)[..cut]).await.unwrap();
        drop(stream);
        if i % 100 == 0 {
            still_serving(&honest, i64::from(i)).await;
        }
    }
    // Only the honest client (and `still_serving`'s, which are gone) remain.
    until_connections(&server, 1).await;
    still_serving(&honest, 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_slowloris_greeting_is_cut_off_by_the_handshake_timeout() {
    let (server, honest) = strict_server(|b| b.handshake_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let started = tokio::time::Instant::now();
    // One byte every 100 ms: the whole greeting would take 1.6 s.
    for byte in frame(&HELLO) {
        if stream.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if server.connections() == 1 {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "the server waited {:?} for a greeting",
        started.elapsed()
    );
    until_connections(&server, 1).await;
    still_serving(&honest, 2).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_slowloris_request_is_cut_off_by_the_idle_timeout() {
    let (server, honest) =
        strict_server(|b| b.idle_timeout(Some(Duration::from_millis(300)))).await;
    let mut stream = greeted(server.local_addr()).await;
    let dribble = async {
        // A 30-byte request at one byte per 100 ms: 3 s, never complete in
        // time. A partial frame is not activity.
        for byte in request(1, "add", &[2, 4]) {
            if stream.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(900), dribble).await;
    // The server said goodbye (idle timeout, code 11) and closed.
    let goodbye = expect_close(&mut stream).await.expect("a goodbye");
    assert_eq!(&goodbye[..2], &[2, 11], "{goodbye:?}");
    still_serving(&honest, 3).await;
    server.shutdown().await;
}

/// A client that sends requests but never reads the answers: once its
/// answers back up, the write timeout closes its connection.
#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_after_the_write_timeout() {
    let (server, honest) = strict_server(|b| b.write_timeout(Duration::from_millis(200))).await;
    let mut stream = greeted_with_small_window(&server).await;
    let mut batch = Vec::new();
    for _ in 0..500 {
        batch.extend_from_slice(&request(1, "add", &[4, 6]));
    }
    // Write until the server closes: the kernel's buffers take megabytes of
    // requests and answers first. A write that waits is no sign of the close
    // (a busy server may only be slow to read), so the client keeps writing
    // whole batches until the connection fails.
    let mut written = 0usize;
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if stream.write_all(&batch).await.is_err() {
                return written;
            }
            written += batch.len();
            assert!(written < 256 << 20, "the server never stopped reading");
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
    until_connections(&server, 1).await;
    still_serving(&honest, 4).await;
    server.shutdown().await;
}

/// A client that asks for one large answer and then neither reads nor
/// sends: the answer waiting to be written counts against the write
/// timeout though no further answer is added, and the connection closes.
#[tokio::test]
async fn a_large_answer_nobody_reads_is_dropped_after_the_write_timeout() {
    let (server, honest) = strict_server(|b| b.write_timeout(Duration::from_millis(200))).await;
    let mut stream = greeted_with_small_window(&server).await;
    // echo(name, tags) with an 8 MiB name (a varint: `fc`, then the u32
    // length little-endian) and no tags: the answer holds the name.
    let len: u32 = 8 << 20;
    let mut body = vec![0xfc];
    body.extend_from_slice(&len.to_le_bytes());
    body.resize(body.len() + len as usize, b'x');
    body.push(0);
    stream.write_all(&request(1, "echo", &body)).await.unwrap();
    until_connections(&server, 1).await;
    still_serving(&honest, 8).await;
    drop(stream);
    server.shutdown().await;
}

#[tokio::test]
async fn a_reused_request_id_and_a_stray_cancel_harm_nobody() {
    let (server, honest) = strict_server(|b| b).await;
    let mut stream = greeted(server.local_addr()).await;
    // Two calls with the same id in one write: the first finishes without
    // waiting, so its id is free again when the second is read, and both
    // are answered. (A reuse while the first still runs is refused:
    // tests/protocol_edges.rs.)
    let mut both = request(7, "add", &[2, 2]);
    both.extend_from_slice(&request(7, "add", &[4, 4]));
    stream.write_all(&both).await.unwrap();
    let mut answers = vec![
        read_frame(&mut stream).await.unwrap(),
        read_frame(&mut stream).await.unwrap(),
    ];
    answers.sort();
    assert_eq!(answers, vec![vec![1, 7, 0, 4], vec![1, 7, 0, 8]]);
    // A cancel for a call that does not exist is ignored.
    stream.write_all(&frame(&[3, 99])).await.unwrap();
    stream.write_all(&request(9, "add", &[2, 4])).await.unwrap();
    assert_eq!(read_frame(&mut stream).await.unwrap(), vec![1, 9, 0, 6]);
    assert_eq!(server.in_flight(), 0);
    still_serving(&honest, 5).await;
    server.shutdown().await;
}

#[tokio::test]
async fn collections_whose_lengths_lie_fail_the_call_not_the_server() {
    let (server, honest) = strict_server(|b| b).await;
    let mut stream = greeted(server.local_addr()).await;
    // echo("a", tags) where tags claims 2^40 strings, then 2^32 - 1.
    let huge = [1, b'a', 0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
    stream.write_all(&request(1, "echo", &huge)).await.unwrap();
    assert_eq!(&read_frame(&mut stream).await.unwrap()[..4], &[1, 1, 1, 3]);
    let many = [1, b'a', 0xfc, 0xff, 0xff, 0xff, 0xff, 1, b'x'];
    stream.write_all(&request(3, "echo", &many)).await.unwrap();
    assert_eq!(&read_frame(&mut stream).await.unwrap()[..4], &[1, 3, 1, 3]);
    // A tag whose own length lies, inside a plausible list.
    let inner = [1, b'a', 2, 1, b'x', 0xfd, 0, 0, 0, 0, 0, 0, 1, 0];
    stream.write_all(&request(5, "echo", &inner)).await.unwrap();
    assert_eq!(&read_frame(&mut stream).await.unwrap()[..4], &[1, 5, 1, 3]);
    still_serving(&honest, 6).await;
    server.shutdown().await;
}

/// A recursive type: one byte per level on the wire.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
}

#[rpc_runtime::rpc_service]
trait Trees {
    /// How deep `tree` is.
    async fn depth(&self, tree: Tree) -> u32;
    /// How many units there are (zero bytes each on the wire).
    async fn units(&self, units: Vec<()>) -> usize;
}

struct TreeImpl;

impl Trees for TreeImpl {
    async fn depth(&self, tree: Tree) -> u32 {
        let mut depth = 0;
        let mut node = &tree;
        while let Tree::Node(inner) = node {
            depth += 1;
            node = inner;
        }
        depth
    }
    async fn units(&self, units: Vec<()>) -> usize {
        units.len()
    }
}

/// A value nested a million levels deep in one small frame is refused
/// (decoding it recursively would overflow the stack and take the whole
/// server down); reasonable nesting still works.
#[tokio::test]
async fn a_value_nested_a_million_deep_fails_the_call_not_the_server() {
    let server = rpc_runtime::Server::builder()
        .add_service(TreesServer::new(TreeImpl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = TreesClient::connect(server.local_addr()).await.unwrap();
    let mut tree = Tree::Leaf;
    for _ in 0..100 {
        tree = Tree::Node(Box::new(tree));
    }
    assert_eq!(client.depth(tree).await.unwrap(), 100);

    let mut stream = greeted(server.local_addr()).await;
    let mut nested = vec![1u8; 1_000_000];
    nested.push(0);
    stream
        .write_all(&request_to("Trees", 1, "depth", &nested))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.expect("an answer");
    // Response, id 1, status Error, code 3 (bad request).
    assert_eq!(&answer[..4], &[1, 1, 1, 3], "{answer:?}");
    assert!(
        String::from_utf8_lossy(&answer).contains("levels deep"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(client.depth(Tree::Leaf).await.unwrap(), 0);
    server.shutdown().await;
}

/// A `Vec<()>` claiming 2^60 elements costs nothing per element, so no byte
/// limit stops it; the decoder's value budget does, instead of spinning
/// (and wedging the connection's task) for ever.
#[tokio::test]
async fn a_sequence_of_nothing_claiming_2_to_the_60_fails_the_call() {
    let server = rpc_runtime::Server::builder()
        .add_service(TreesServer::new(TreeImpl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = TreesClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(client.units(vec![(); 1000]).await.unwrap(), 1000);

    let mut stream = greeted(server.local_addr()).await;
    let mut claim = vec![0xfd];
    claim.extend_from_slice(&(1u64 << 60).to_le_bytes());
    stream
        .write_all(&request_to("Trees", 1, "units", &claim))
        .await
        .unwrap();
    let answer = read_frame(&mut stream).await.expect("an answer");
    assert_eq!(&answer[..4], &[1, 1, 1, 3], "{answer:?}");
    assert_eq!(client.units(Vec::new()).await.unwrap(), 0);
    server.shutdown().await;
}
