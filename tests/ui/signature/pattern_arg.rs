use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn add(&self, (a, b): (u64, u64), mut count: u64) -> u64;
}

fn main() {}
