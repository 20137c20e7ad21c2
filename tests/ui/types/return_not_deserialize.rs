use rpc_runtime::{rpc_service, Streaming};
use serde::Serialize;

/// Encodes but does not decode: a client cannot receive it.
#[derive(Serialize)]
pub struct Report {
    pub lines: Vec<String>,
}

#[rpc_service]
pub trait Reports {
    async fn latest(&self, count: u32) -> Option<Report>;
    async fn follow(&self) -> Streaming<Report>;
}

fn main() {}
