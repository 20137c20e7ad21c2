//! How calls fail: every failure is a typed error, promptly, never a hang.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{calculator_server, Calc, CalculatorClient, CalculatorServer};
use rpc_runtime::{rpc_service, Channel, RpcError, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A newer copy of the calculator trait with a method the server lacks.
#[rpc_service(name = "Calculator")]
trait CalculatorV2 {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn multiply(&self, a: i64, b: i64) -> i64;
}

/// A service the server does not have at all.
#[rpc_service]
trait Missing {
    async fn anything(&self) -> u8;
}

/// Everything must fail within this; far more than any loopback round trip.
const PROMPT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn unknown_method_and_service_are_typed_errors_and_the_connection_survives() {
    let server = calculator_server().await;
    let channel = Channel::connect(server.local_addr()).await.unwrap();
    let v2 = CalculatorV2Client::new(channel.clone());
    match v2.multiply(6, 7).await {
        Err(RpcError::UnknownMethod { service, method }) => {
            assert_eq!(
                (service.as_str(), method.as_str()),
                ("Calculator", "multiply")
            );
        }
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    // Methods both versions share still work on the same connection.
    assert_eq!(v2.add(6, 7).await.unwrap(), 13);

    let missing = MissingClient::new(channel.clone());
    // A request names its method by an id of both names: a service the
    // server lacks is a method it lacks.
    match missing.anything().await {
        Err(e @ RpcError::UnknownMethod { .. }) => {
            assert!(e.to_string().contains("`Missing.anything`"), "{e}");
            assert!(e.to_string().contains("add_service"), "{e}");
        }
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    assert_eq!(CalculatorClient::new(channel).add(1, 1).await.unwrap(), 2);
    server.shutdown().await;
}

#[rpc_service]
trait Fragile {
    async fn explode(&self, message: String) -> u32;
    async fn hang(&self) -> u32;
    async fn sized(&self, len: usize) -> Vec<u8>;
    async fn take(&self, data: Vec<u8>) -> usize;
}

struct FragileImpl {
    hanging: Arc<Semaphore>,
}

impl Fragile for FragileImpl {
    async fn explode(&self, message: String) -> u32 {
        panic!("{message}");
    }
    async fn hang(&self) -> u32 {
        self.hanging.add_permits(1);
        std::future::pending::<()>().await;
        0
    }
    async fn sized(&self, len: usize) -> Vec<u8> {
        vec![7; len]
    }
    async fn take(&self, data: Vec<u8>) -> usize {
        data.len()
    }
}

async fn fragile_server(max_frame: usize) -> (Server, Arc<Semaphore>) {
    let hanging = Arc::new(Semaphore::new(0));
    let server = Server::builder()
        .add_service(FragileServer::new(FragileImpl {
            hanging: hanging.clone(),
        }))
        .max_frame_length(max_frame)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (server, hanging)
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_call() {
    let (server, _) = fragile_server(1 << 20).await;
    let client = FragileClient::connect(server.local_addr()).await.unwrap();
    match client.explode("kaboom".into()).await {
        Err(RpcError::Panicked { message }) => assert_eq!(message, "kaboom"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    // The same connection keeps working.
    assert_eq!(client.sized(3).await.unwrap(), vec![7, 7, 7]);
    server.shutdown().await;
}

#[tokio::test]
async fn killing_the_server_fails_pending_calls_promptly() {
    let (server, hanging) = fragile_server(1 << 20).await;
    let client = FragileClient::connect(server.local_addr()).await.unwrap();
    let pending: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.hang().await })
        })
        .collect();
    // All three calls are running on the server.
    hanging.acquire_many(3).await.unwrap().forget();
    server.abort().await;
    for call in pending {
        let result = tokio::time::timeout(PROMPT, call)
            .await
            .expect("a pending call hung");
        match result.unwrap() {
            Err(RpcError::ConnectionLost { .. }) => {}
            other => panic!("expected ConnectionLost, got {other:?}"),
        }
    }
    assert!(client.channel().is_closed());
    // A later call tries to reconnect, and fails at once: nobody listens.
    let later = tokio::time::timeout(PROMPT, client.sized(1)).await.unwrap();
    assert!(matches!(later, Err(RpcError::Connect { .. })), "{later:?}");
}

#[tokio::test]
async fn frames_too_large_fail_one_call_and_keep_the_connection() {
    let (server, _) = fragile_server(64 * 1024).await;
    let channel = Channel::builder()
        .max_frame_length(32 * 1024)
        .connect(server.local_addr())
        .await
        .unwrap();
    let client = FragileClient::new(channel);
    // A request above the server's limit never leaves the client.
    match client.take(vec![0; 100 * 1024]).await {
        Err(RpcError::FrameTooLarge { what, size, limit }) => {
            assert_eq!(what, "request");
            assert!(size > 100 * 1024, "{size}");
            assert_eq!(limit, 64 * 1024);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    // An answer above the client's limit is replaced by an error.
    match client.sized(40 * 1024).await {
        Err(RpcError::ResponseTooLarge { message }) => {
            assert!(message.contains("32768"), "{message}")
        }
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
    assert_eq!(client.take(vec![1; 1000]).await.unwrap(), 1000);
    assert_eq!(client.sized(1000).await.unwrap().len(), 1000);
    server.shutdown().await;
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_fast() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let result = tokio::time::timeout(PROMPT, Channel::connect(addr))
        .await
        .expect("connect hung");
    match result {
        Err(e @ RpcError::Connect { .. }) => {
            assert!(e.to_string().contains(&addr.to_string()), "{e}")
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

/// Starts a TCP server that answers every connection with `behaviour`.
async fn fake_server<F, Fut>(behaviour: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behaviour(stream));
        }
    });
    addr
}

async fn expect_not_a_server(addr: std::net::SocketAddr, needle: &str) {
    let result = tokio::time::timeout(PROMPT, Channel::connect(addr))
        .await
        .expect("connect hung");
    match result {
        Err(e @ RpcError::NotAServer { .. }) => {
            assert!(e.to_string().contains(needle), "{e}");
        }
        other => panic!("expected NotAServer, got {other:?}"),
    }
}

#[tokio::test]
async fn connecting_to_an_http_server_fails_fast() {
    let addr = fake_server(|mut stream| async move {
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        // Keeps the connection open: the client must not wait for a close.
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    expect_not_a_server(addr, "HTTP").await;
}

#[tokio::test]
async fn connecting_to_an_echo_server_fails_fast() {
    let addr = fake_server(|mut stream| async move {
        let (mut r, mut w) = stream.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await;
    expect_not_a_server(addr, "echo").await;
}

#[tokio::test]
async fn connecting_to_a_server_that_hangs_up_fails_fast() {
    let addr = fake_server(|stream| async move { drop(stream) }).await;
    expect_not_a_server(addr, "closed the connection").await;
}

#[tokio::test]
async fn connecting_to_a_silent_server_times_out() {
    let addr = fake_server(|stream| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(stream);
    })
    .await;
    let result = Channel::builder()
        .connect_timeout(Duration::from_millis(200))
        .connect(addr)
        .await;
    assert!(
        matches!(result, Err(RpcError::ConnectTimeout { timeout, .. }) if timeout == Duration::from_millis(200)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_server_of_another_version_is_reported() {
    // Greets back with versions 9 to 9 (hello: magic, role 1, version 9,
    // max frame 1024, max in flight 1, oldest 9, no extensions, and a
    // field this side does not know).
    let addr = fake_server(|mut stream| async move {
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf).await;
        let hello = [b'R', b'R', b'P', b'C', 1, 9, 251, 0, 4, 1, 9, 0, 7];
        let mut frame = (hello.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&hello);
        let _ = stream.write_all(&frame).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let result = tokio::time::timeout(PROMPT, Channel::connect(addr))
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            Err(RpcError::VersionMismatch { ref local, ref remote })
                if *local == (3..=4) && *remote == (9..=9)
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_running_calls() {
    #[rpc_service]
    trait Slow {
        async fn wait(&self, ms: u64) -> u64;
    }
    struct S(Arc<Semaphore>);
    impl Slow for S {
        async fn wait(&self, ms: u64) -> u64 {
            self.0.add_permits(1);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
    }
    let started = Arc::new(Semaphore::new(0));
    let server = Server::builder()
        .add_service(SlowServer::new(S(started.clone())))
        .add_service(CalculatorServer::new(Calc))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = SlowClient::connect(server.local_addr()).await.unwrap();
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.wait(100).await }
    });
    started.acquire().await.unwrap().forget();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown hung");
    // The call that was running when shutdown began got its answer.
    assert_eq!(running.await.unwrap().unwrap(), 100);
    // The server said goodbye and is gone: a later call cannot reconnect.
    assert!(client.channel().is_closed());
    let after = client.wait(1).await;
    assert!(matches!(after, Err(RpcError::Connect { .. })), "{after:?}");
}
