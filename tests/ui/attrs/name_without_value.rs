use rpc_runtime::rpc_service;

#[rpc_service(name)]
pub trait S {
    async fn ping(&self);
}

fn main() {}
