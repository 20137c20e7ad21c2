//! The system under test: a `#[rpc_service]` over rpc-runtime.

use bytes::Bytes;
use rpc_runtime::{rpc_service, Channel, Server};

/// The benchmark service.
#[rpc_service]
pub trait Bench {
    /// A small call.
    async fn add(&self, a: u64, b: u64) -> u64;
    /// A bulk call: the payload comes back.
    async fn echo(&self, data: Bytes) -> Bytes;
}

struct Impl;

impl Bench for Impl {
    async fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
    async fn echo(&self, data: Bytes) -> Bytes {
        data
    }
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let server = Server::builder()
        .add_service(BenchServer::new(Impl))
        .max_connections(100_000)
        .serve(listener)?;
    std::future::pending::<()>().await;
    drop(server);
    Ok(())
}

/// One connection.
pub async fn connect(addr: std::net::SocketAddr) -> Result<BenchClient, rpc_runtime::RpcError> {
    Ok(BenchClient::new(Channel::connect(addr).await?))
}
