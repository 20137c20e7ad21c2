//! tonic 0.14 (gRPC over HTTP/2) with prost messages, served with its own
//! transport, as its examples do.

use std::net::SocketAddr;

use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/bench.Bench.rs"));
}

pub use generated::bench_client::BenchClient as TonicClient;
use generated::bench_server::{Bench, BenchServer};

/// `add`'s arguments.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddRequest {
    /// First operand.
    #[prost(uint64, tag = "1")]
    pub a: u64,
    /// Second operand.
    #[prost(uint64, tag = "2")]
    pub b: u64,
}

/// `add`'s answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddReply {
    /// The sum.
    #[prost(uint64, tag = "1")]
    pub sum: u64,
}

/// A bulk payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Blob {
    /// The bytes.
    #[prost(bytes = "bytes", tag = "1")]
    pub data: bytes::Bytes,
}

struct Impl;

#[tonic::async_trait]
impl Bench for Impl {
    async fn add(&self, request: Request<AddRequest>) -> Result<Response<AddReply>, Status> {
        let AddRequest { a, b } = request.into_inner();
        Ok(Response::new(AddReply {
            sum: a.wrapping_add(b),
        }))
    }
    async fn echo(&self, request: Request<Blob>) -> Result<Response<Blob>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), String> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(
            BenchServer::new(Impl)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
        )
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| e.to_string())
}

/// One connection (an HTTP/2 channel).
pub async fn connect(addr: SocketAddr) -> Result<TonicClient<Channel>, String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(TonicClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}
