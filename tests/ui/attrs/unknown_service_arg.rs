use rpc_runtime::rpc_service;

#[rpc_service(foo)]
pub trait S {
    async fn ping(&self);
}

fn main() {}
