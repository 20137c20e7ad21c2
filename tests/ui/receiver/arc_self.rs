use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn shared(self: std::sync::Arc<Self>) -> u64;
}

fn main() {}
