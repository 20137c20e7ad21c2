use rpc_runtime::{rpc_service, Streaming};

#[rpc_service]
pub trait Adder {
    async fn sum(&self, numbers: Streaming<i64>) -> i64;
}

fn main() {}
