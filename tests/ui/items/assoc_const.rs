use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    const LIMIT: u64;

    async fn get(&self) -> u64;
}

fn main() {}
