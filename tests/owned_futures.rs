//! A generated client's call futures own what they need (`Send + 'static`):
//! they can be spawned, stored and raced, apart from the client (and the
//! temporary client of `with_timeout`) that made them.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{calculator_server, CalculatorClient};
use rpc_runtime::{RpcError, Streaming};

/// Compiles only for a future that can be spawned.
fn owned<F: Future + Send + 'static>(future: F) -> F {
    future
}

#[tokio::test]
async fn a_call_can_be_spawned() {
    let server = calculator_server().await;
    let client = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    let sum = tokio::spawn(client.add(2, 3));
    // The client that made the call may go; the call keeps the connection.
    drop(client);
    assert_eq!(sum.await.unwrap().unwrap(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_made_on_a_temporary_client_can_be_stored_and_raced() {
    let server = calculator_server().await;
    let client = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    // Before, this borrowed the temporary `with_timeout` client (E0716).
    let first = client.with_timeout(Duration::from_secs(5)).add(1, 1);
    let second = client
        .with_timeout(Duration::from_secs(5))
        .echo("x".into(), vec![]);
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap(), 2);
    assert_eq!(second.unwrap(), ("x".to_owned(), 0));

    let stored = client.with_timeout(Duration::from_secs(5)).add(2, 2);
    let raced = tokio::select! {
        sum = stored => sum,
        () = tokio::time::sleep(Duration::from_secs(5)) => Err(RpcError::DeadlineExceeded {
            timeout: Duration::from_secs(5),
        }),
    };
    assert_eq!(raced.unwrap(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn the_arguments_are_encoded_when_the_call_is_made() {
    let server = calculator_server().await;
    let client = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    let name = String::from("borrowed only while the call is made");
    let call = client.echo(name.clone(), vec![name.clone()]);
    drop(name);
    assert_eq!(call.await.unwrap().1, 1);
    server.shutdown().await;
}

#[rpc_runtime::rpc_service]
trait Kinds {
    async fn unary(&self) -> u8;
    #[rpc(oneway)]
    async fn cast(&self, n: u8);
    async fn listed(&self) -> Streaming<u8>;
    async fn summed(&self, items: Streaming<u8>) -> u8;
    async fn echoed(&self, items: Streaming<u8>) -> Streaming<u8>;
}

/// Every kind of call has an owned future; checked by the compiler only.
#[allow(dead_code)]
fn every_kind_is_owned(client: &KindsClient) {
    drop(owned(client.unary()));
    drop(owned(client.cast(1)));
    drop(owned(client.listed()));
    drop(owned(client.summed(Streaming::from_iter([1u8]))));
    drop(owned(client.echoed(Streaming::from_iter([1u8]))));
}
