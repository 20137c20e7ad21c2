//! The worked example in `docs/PROTOCOL.md`, byte for byte: the test reads the
//! hex blocks from the document and checks both a real server's answers and a
//! real client's requests against them, so the document cannot drift.

mod common;

use common::{calculator_server, CalculatorClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The bytes of the ```hex block after `<!-- example: NAME -->`.
fn example(name: &str) -> Vec<u8> {
    let doc = include_str!("../docs/PROTOCOL.md");
    let marker = format!("<!-- example: {name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("no example {name:?} in PROTOCOL.md"));
    let rest = &doc[start + marker.len()..];
    let open = rest
        .find("```hex")
        .expect("a ```hex block after the marker")
        + "```hex".len();
    let close = open + rest[open..].find("```").expect("the end of the hex block");
    rest[open..close]
        .split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).unwrap_or_else(|_| panic!("bad hex {byte:?}")))
        .collect()
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

#[test]
fn the_examples_are_well_formed_frames() {
    for name in [
        "client-hello",
        "server-hello",
        "v3-client-hello",
        "v3-server-hello",
        "request",
        "response",
        "cancel",
        "ping",
        "pong",
        "stream-request",
        "stream-items",
        "credit",
        "send-request",
        "send-items",
        "send-response",
    ] {
        let mut bytes = &example(name)[..];
        while !bytes.is_empty() {
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert!(
                bytes.len() >= 4 + len,
                "{name}: the length prefix counts the payload"
            );
            bytes = &bytes[4 + len..];
        }
    }
}

#[rpc_runtime::rpc_service]
trait Feed {
    /// The numbers from 0 up to `n`, not including `n`.
    async fn count(&self, n: u32) -> rpc_runtime::Streaming<u32>;
    /// The sum of the caller's stream.
    async fn total(&self, values: rpc_runtime::Streaming<u32>) -> u32;
}

struct Counter;

impl Feed for Counter {
    async fn count(&self, n: u32) -> rpc_runtime::Streaming<u32> {
        rpc_runtime::Streaming::from_iter(0..n)
    }
    async fn total(&self, mut values: rpc_runtime::Streaming<u32>) -> u32 {
        let mut total = 0;
        while let Some(Ok(v)) = futures::StreamExt::next(&mut values).await {
            total += v;
        }
        total
    }
}

#[tokio::test]
async fn a_server_streams_the_documented_bytes() {
    let server = rpc_runtime::Server::builder()
        .add_service(FeedServer::new(Counter))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(&example("client-hello")).await.unwrap();
    let server_hello = example("server-hello");
    read_exactly(&mut stream, server_hello.len()).await;
    stream.write_all(&example("stream-request")).await.unwrap();
    let items = example("stream-items");
    assert_eq!(read_exactly(&mut stream, items.len()).await, items);
    // Credit for a call that has ended is ignored; the connection goes on.
    stream.write_all(&example("credit")).await.unwrap();
    // A stream the other way.
    stream.write_all(&example("send-request")).await.unwrap();
    stream.write_all(&example("send-items")).await.unwrap();
    let answer = example("send-response");
    assert_eq!(read_exactly(&mut stream, answer.len()).await, answer);
    stream.write_all(&example("ping")).await.unwrap();
    let pong = example("pong");
    assert_eq!(read_exactly(&mut stream, pong.len()).await, pong);
    server.shutdown().await;
}
#[tokio::test]
async fn a_server_answers_the_documented_bytes() {
    let server = calculator_server().await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();

    stream.write_all(&example("client-hello")).await.unwrap();
    let server_hello = example("server-hello");
    assert_eq!(
        read_exactly(&mut stream, server_hello.len()).await,
        server_hello
    );

    stream.write_all(&example("request")).await.unwrap();
    let response = example("response");
    assert_eq!(read_exactly(&mut stream, response.len()).await, response);

    // A ping is answered with the pong of the same nonce.
    stream.write_all(&example("ping")).await.unwrap();
    let pong = example("pong");
    assert_eq!(read_exactly(&mut stream, pong.len()).await, pong);

    // A cancel for a call that is not running is ignored.
    stream.write_all(&example("cancel")).await.unwrap();

    // divide(1, 0), id 7, no deadline: an application error inside an Ok
    // status.
    let mut divide = vec![0, 0, 0, 10, 0, 7];
    divide.extend_from_slice(&rpc_runtime::method_id("Calculator", "divide").to_le_bytes());
    divide.extend_from_slice(&[0, 0, 2, 0]);
    stream.write_all(&divide).await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 9).await,
        [0, 0, 0, 5, 1, 7, 0, 1, 0]
    );
    server.shutdown().await;
}

/// A client of version 3 (the oldest still spoken) is answered in its own
/// layout, and the calls that follow are the same bytes as in version 4.
#[tokio::test]
async fn a_version_3_client_gets_the_documented_bytes() {
    let server = calculator_server().await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(&example("v3-client-hello")).await.unwrap();
    let server_hello = example("v3-server-hello");
    assert_eq!(
        read_exactly(&mut stream, server_hello.len()).await,
        server_hello
    );
    stream.write_all(&example("request")).await.unwrap();
    let response = example("response");
    assert_eq!(read_exactly(&mut stream, response.len()).await, response);
    server.shutdown().await;
}

/// A client meeting a server of version 3, which answers a ranged
/// greeting with its own greeting and goodbye 7 and closes, dials again
/// and greets in version 3's layout (section 4.2).
#[tokio::test]
async fn a_client_greets_a_version_3_server_in_its_layout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        // The first connection: a ranged greeting, refused as version 3 did.
        let (mut stream, _) = listener.accept().await.unwrap();
        let ranged = example("client-hello");
        assert_eq!(read_exactly(&mut stream, ranged.len()).await, ranged);
        stream.write_all(&example("v3-server-hello")).await.unwrap();
        let mut goodbye = vec![0, 0, 0, 0, 2, 7];
        goodbye.extend_from_slice(b"\x0cunsupported");
        let len = u32::try_from(goodbye.len() - 4).unwrap().to_be_bytes();
        goodbye[..4].copy_from_slice(&len);
        stream.write_all(&goodbye).await.unwrap();
        drop(stream);
        // The second: version 3's own greeting, then calls as usual.
        let (mut stream, _) = listener.accept().await.unwrap();
        let hello = example("v3-client-hello");
        assert_eq!(read_exactly(&mut stream, hello.len()).await, hello);
        stream.write_all(&example("v3-server-hello")).await.unwrap();
        let request = example("request");
        assert_eq!(read_exactly(&mut stream, request.len()).await, request);
        stream.write_all(&example("response")).await.unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    });
    let client = CalculatorClient::connect(addr).await.unwrap();
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    drop(client);
    tokio::time::timeout(std::time::Duration::from_secs(5), fake)
        .await
        .expect("the client kept the connection open after it was dropped")
        .unwrap();
}

#[tokio::test]
async fn a_client_sends_the_documented_bytes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let hello = example("client-hello");
        assert_eq!(read_exactly(&mut stream, hello.len()).await, hello);
        stream.write_all(&example("server-hello")).await.unwrap();
        // The time left (just under 30 s) is rounded up to whole seconds:
        // byte for byte the example.
        let request = example("request");
        let sent = read_exactly(&mut stream, request.len()).await;
        assert_eq!(sent, request);
        stream.write_all(&example("response")).await.unwrap();
        // Hold the connection until the client is done.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    });
    let client = CalculatorClient::connect(addr).await.unwrap();
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    drop(client);
    tokio::time::timeout(std::time::Duration::from_secs(5), fake)
        .await
        .expect("the client kept the connection open after it was dropped")
        .unwrap();
}
