//! The system under test: a `#[rpc_service]` over rpc-runtime.

use bytes::Bytes;
use rpc_runtime::tower::{CallService, TowerChannel};
use rpc_runtime::{rpc_service, Channel, Compression, Server};

/// The benchmark service.
#[rpc_service]
pub trait Bench {
    /// A small call.
    async fn add(&self, a: u64, b: u64) -> u64;
    /// A bulk call: the payload comes back.
    async fn echo(&self, data: Bytes) -> Bytes;
}

/// The service's handlers.
pub struct Impl;

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

/// Serves without compression either way (system `plain`): the cost of
/// compressing, against `ours`.
pub async fn serve_plain(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let server = Server::builder()
        .add_service(BenchServer::new(Impl))
        .max_connections(100_000)
        .compression(Compression::disabled())
        .serve(listener)?;
    std::future::pending::<()>().await;
    drop(server);
    Ok(())
}

/// Serves, every call through a tower layer that does nothing: the cost
/// of the layered path itself.
pub async fn serve_layered(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let server = Server::builder()
        .add_service(BenchServer::new(Impl))
        .max_connections(100_000)
        .layer(tower::layer::util::Identity::new())
        .serve(listener)?;
    std::future::pending::<()>().await;
    drop(server);
    Ok(())
}

/// A channel as a tower stack with no layers, carrying a generated client.
pub type Towered = TowerChannel<CallService<Channel>>;

/// One connection, through a tower stack with no layers: the cost of the
/// tower path itself.
pub async fn connect_tower(
    addr: std::net::SocketAddr,
) -> Result<BenchClient<Towered>, rpc_runtime::RpcError> {
    let channel = Channel::connect(addr).await?;
    Ok(BenchClient::new(TowerChannel::new(CallService::new(
        channel,
    ))))
}

/// One connection.
pub async fn connect(addr: std::net::SocketAddr) -> Result<BenchClient, rpc_runtime::RpcError> {
    Ok(BenchClient::new(Channel::connect(addr).await?))
}

/// A client that neither sends nor accepts compressed frames.
pub async fn connect_plain(
    addr: std::net::SocketAddr,
) -> Result<BenchClient, rpc_runtime::RpcError> {
    Ok(BenchClient::new(
        Channel::builder()
            .compression(Compression::disabled())
            .connect(addr)
            .await?,
    ))
}

/// A balanced channel over `addrs`, once every endpoint is ready.
pub async fn connect_balanced(
    addrs: &[std::net::SocketAddr],
) -> Result<BenchClient<rpc_runtime::balance::BalancedChannel>, rpc_runtime::RpcError> {
    let channel = Channel::builder().balance(rpc_runtime::balance::Discover::fixed(
        addrs.iter().map(ToString::to_string),
    ));
    let client = BenchClient::new(channel);
    // The first call waits for an endpoint; the rest are given a moment.
    client.add(0, 0).await?;
    for _ in 0..1000 {
        if client
            .channel()
            .endpoints()
            .iter()
            .all(|(_, s)| s.is_ready())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    Ok(client)
}
