use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    type Item;

    async fn get(&self) -> u64;
}

fn main() {}
