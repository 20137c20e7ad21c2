//! Limits per caller address that a public server needs: open
//! connections per address, and calls a second per address.

use std::time::Duration;

use rpc_runtime::{rpc_service, Channel, Code, RpcError, Server};

#[rpc_service(name = "limited.Echo")]
trait Echo {
    /// `n`.
    async fn echo(&self, n: u32) -> u32;
}

struct Echoes;

impl Echo for Echoes {
    async fn echo(&self, n: u32) -> u32 {
        n
    }
}

#[tokio::test]
async fn an_address_over_its_connection_limit_is_told_busy() {
    let server = Server::builder()
        .add_service(EchoServer::new(Echoes))
        .max_connections_per_peer(2)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let first = Channel::connect(server.local_addr()).await.expect("first");
    let second = Channel::connect(server.local_addr()).await.expect("second");
    match Channel::connect(server.local_addr()).await {
        Err(RpcError::ServerBusy { message }) => {
            assert!(
                message.contains("address at its limit of 2 connections"),
                "{message}"
            );
        }
        other => panic!("a third connection from the address: {other:?}"),
    }
    // The admitted ones are served.
    assert_eq!(EchoClient::new(second).echo(7).await.expect("echo"), 7);
    // Room again once one closes.
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.connections() > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the closed connection was counted out");
    let again = Channel::connect(server.local_addr())
        .await
        .expect("room again");
    assert_eq!(EchoClient::new(again).echo(8).await.expect("echo"), 8);
    server.shutdown().await;
}

#[tokio::test]
async fn calls_over_an_addresss_rate_fail_unrun_and_the_connection_goes_on() {
    let server = Server::builder()
        .add_service(EchoServer::new(Echoes))
        .max_calls_per_second_per_peer(5)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let one = EchoClient::new(
        Channel::connect(server.local_addr())
            .await
            .expect("connect"),
    );
    let two = EchoClient::new(
        Channel::connect(server.local_addr())
            .await
            .expect("connect"),
    );
    // A burst of a second's worth, over both connections of the address.
    let mut answered = 0;
    let mut refused = 0;
    for n in 0..8 {
        let client = if n % 2 == 0 { &one } else { &two };
        match client.echo(n).await {
            Ok(echoed) => {
                assert_eq!(echoed, n);
                answered += 1;
            }
            Err(RpcError::Status(status)) => {
                assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);
                assert!(
                    status.message().contains("5 calls a second"),
                    "{}",
                    status.message()
                );
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    // The bucket refills at 5 a second: within the loop's few
    // milliseconds, at most one more token.
    assert!((5..=6).contains(&answered), "answered {answered}");
    assert_eq!(answered + refused, 8);
    // Refused calls leave the connection as it was.
    assert!(!matches!(
        one.echo(1).await,
        Err(RpcError::ConnectionLost { .. })
    ));
    server.shutdown().await;
}
