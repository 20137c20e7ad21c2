use rpc_runtime::{rpc_service, Streaming};
use serde::Deserialize;

/// Decodes but does not encode: a server cannot send it.
#[derive(Deserialize)]
pub struct Report {
    pub lines: Vec<String>,
}

#[rpc_service]
pub trait Reports {
    async fn latest(&self, count: u32) -> Option<Report>;
    async fn follow(&self) -> Streaming<Report>;
}

fn main() {}
