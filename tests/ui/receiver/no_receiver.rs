use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn make(x: u64) -> u64;
}

fn main() {}
