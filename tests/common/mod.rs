//! The calculator service from the README, shared by the integration tests.
#![allow(dead_code)]

pub mod dns;
pub mod nats;
pub mod wire;

use rpc_runtime::rpc_service;
use serde::{Deserialize, Serialize};

/// An application error that travels inside `Ok(..)`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum MathError {
    /// Division by zero.
    DivideByZero,
}

#[rpc_service]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError>;
    async fn ping(&self);
    async fn echo(&self, name: String, tags: Vec<String>) -> (String, usize);
}

#[derive(Clone)]
pub struct Calc;

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

/// Starts a TCP calculator server on a free loopback port.
pub async fn calculator_server() -> rpc_runtime::Server {
    rpc_runtime::Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

/// Waits until `server` has no call in flight (its counter cannot be
/// awaited, so this yields between looks), for at most two seconds.
pub async fn until_idle(server: &rpc_runtime::Server) {
    tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while server.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the server's in-flight count returned to zero");
}
