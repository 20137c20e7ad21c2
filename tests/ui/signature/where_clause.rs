use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn ping(&self) -> u64
    where
        Self: Sized;
}

fn main() {}
