//! The calculator from the README, over TCP, a Unix socket and in memory.

mod common;

use common::{calculator_server, Calc, CalculatorClient, CalculatorServer, MathError};
use rpc_runtime::{transport::memory, Channel, Server};

async fn exercise(client: &CalculatorClient) {
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    assert_eq!(client.add(-7, 3).await.unwrap(), -4);
    assert_eq!(client.divide(7, 2).await.unwrap(), Ok(3));
    assert_eq!(
        client.divide(1, 0).await.unwrap(),
        Err(MathError::DivideByZero)
    );
    client.ping().await.unwrap();
    let tags = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert_eq!(
        client.echo("ada".to_owned(), tags).await.unwrap(),
        ("ada".to_owned(), 3)
    );
}

#[tokio::test]
async fn calculator_over_tcp() {
    let server = calculator_server().await;
    let client = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    exercise(&client).await;

    // One channel can carry several clients.
    let channel = Channel::connect(server.local_addr()).await.unwrap();
    let calc = CalculatorClient::new(channel.clone());
    assert_eq!(calc.add(40, 2).await.unwrap(), 42);
    assert_eq!(channel.peer(), server.local_addr().to_string());
    server.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn calculator_over_unix_socket() {
    let dir = std::env::temp_dir().join(format!("rpc-runtime-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calc.sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .bind_unix(&path)
        .unwrap();
    assert_eq!(server.local_addr(), path);
    let client = CalculatorClient::new(Channel::connect_unix(&path).await.unwrap());
    exercise(&client).await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn calculator_in_memory() {
    let (listener, addr) = memory::listener();
    let server = Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .serve(listener)
        .unwrap();
    let channel = Channel::builder()
        .connect_io(addr.connect().unwrap(), "memory")
        .await
        .unwrap();
    let client = CalculatorClient::new(channel);
    exercise(&client).await;
    server.shutdown().await;
    // The listener is gone with the server.
    assert!(addr.connect().is_err());
}
