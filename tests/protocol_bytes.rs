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
    for name in ["client-hello", "server-hello", "request", "response"] {
        let bytes = example(name);
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(
            len,
            bytes.len() - 4,
            "{name}: the length prefix counts the payload"
        );
    }
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

    // divide(1, 0), id 2: an application error inside an Ok status.
    let mut divide = vec![0, 0, 0, 0x16, 0, 2, 10];
    divide.extend_from_slice(b"Calculator");
    divide.push(6);
    divide.extend_from_slice(b"divide");
    divide.extend_from_slice(&[2, 0]);
    stream.write_all(&divide).await.unwrap();
    assert_eq!(
        read_exactly(&mut stream, 9).await,
        [0, 0, 0, 5, 1, 2, 0, 1, 0]
    );
    server.shutdown().await;
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
        let request = example("request");
        assert_eq!(read_exactly(&mut stream, request.len()).await, request);
        stream.write_all(&example("response")).await.unwrap();
        // Hold the connection until the client is done.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    });
    let client = CalculatorClient::connect(addr).await.unwrap();
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    drop(client);
    fake.await.unwrap();
}
