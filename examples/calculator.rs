//! The README's quick start: a calculator server and a client in one process.
//!
//! ```text
//! cargo run --example calculator
//! ```

use rpc_runtime::{rpc_service, Channel, RpcError, Server};
use serde::{Deserialize, Serialize};

/// What can go wrong in a division.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum MathError {
    /// The divisor was zero.
    DivideByZero,
}

/// A calculator, served over the network.
#[rpc_service]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Divides `a` by `b`; dividing by zero is an application error.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// Does nothing, remotely.
    async fn ping(&self);
    /// Returns the name and how many tags came with it.
    async fn echo(&self, name: String, tags: Vec<String>) -> (String, usize);
}

struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError> {
        if b == 0 {
            Err(MathError::DivideByZero)
        } else {
            Ok(a / b)
        }
    }
    async fn ping(&self) {}
    async fn echo(&self, name: String, tags: Vec<String>) -> (String, usize) {
        let n = tags.len();
        (name, n)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .bind("127.0.0.1:0")
        .await?;
    let addr = server.local_addr();
    println!("server listening on {addr}");

    let client = CalculatorClient::connect(addr).await?;
    println!("add(2, 3)       = {}", client.add(2, 3).await?);
    println!("divide(7, 2)    = {:?}", client.divide(7, 2).await?);
    println!("divide(1, 0)    = {:?}", client.divide(1, 0).await?);
    client.ping().await?;
    println!("ping()          = ()");
    let tags = vec!["math".to_owned(), "demo".to_owned()];
    println!(
        "echo(ada, 2)    = {:?}",
        client.echo("ada".to_owned(), tags).await?
    );

    // Many calls at once share the one connection.
    let calls = (0..100).map(|i| client.add(i, i));
    let sums: Result<Vec<i64>, RpcError> =
        futures::future::join_all(calls).await.into_iter().collect();
    println!(
        "100 concurrent adds, sum of results = {}",
        sums?.iter().sum::<i64>()
    );

    // Several services (here, the same one twice) can share a channel.
    let channel = Channel::connect(addr).await?;
    let second = CalculatorClient::new(channel.clone());
    println!(
        "add(40, 2) via a shared channel = {}",
        second.add(40, 2).await?
    );

    server.shutdown().await;
    // After shutdown, calls fail with a typed error instead of hanging.
    match client.add(1, 1).await {
        Err(e) => println!("after shutdown: {e}"),
        Ok(v) => println!("after shutdown: unexpectedly got {v}"),
    }
    Ok(())
}
