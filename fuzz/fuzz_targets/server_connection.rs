//! A whole server connection over the in-memory transport, fed the input as
//! its byte stream: the server must answer or close, never panic or hang.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rpc_runtime::transport::memory;
use rpc_runtime::{rpc_service, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[rpc_service]
trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn echo(&self, name: String, tags: Vec<String>) -> (String, usize);
    async fn count(&self, n: u32) -> rpc_runtime::Streaming<u32>;
}

struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    async fn echo(&self, name: String, tags: Vec<String>) -> (String, usize) {
        let n = tags.len();
        (name, n)
    }
    async fn count(&self, n: u32) -> rpc_runtime::Streaming<u32> {
        rpc_runtime::Streaming::from_iter(0..n.min(64))
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (listener, addr) = memory::listener();
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc))
            .handshake_timeout(Duration::from_millis(50))
            .serve(listener)
            .expect("a server");
        let mut stream = addr.connect().expect("a connection");
        let _ = stream.write_all(data).await;
        let mut sink = vec![0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(20), stream.read(&mut sink)).await
        {
            if n == 0 {
                break;
            }
        }
        server.abort().await;
    });
});
