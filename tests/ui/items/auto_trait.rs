use rpc_runtime::rpc_service;

#[rpc_service]
pub auto trait S {
    async fn ping(&self);
}

fn main() {}
