use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    #[rpc]
    async fn ping(&self);
}

fn main() {}
