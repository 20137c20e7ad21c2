use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn ping(&self);

    async fn ping(&self);
}

fn main() {}
