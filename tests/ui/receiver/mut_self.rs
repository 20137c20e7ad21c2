use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn bump(&mut self) -> u64;
}

fn main() {}
