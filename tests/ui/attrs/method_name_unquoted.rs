use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    #[rpc(name = ping2)]
    async fn ping(&self);
}

fn main() {}
