use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn zeros<const N: usize>(&self) -> Vec<u8>;
}

fn main() {}
