use rpc_runtime::{rpc_service, Streaming};

#[rpc_service]
pub trait Merge {
    async fn merge(&self, left: Streaming<i64>, right: Streaming<i64>) -> Vec<i64>;
}

fn main() {}
