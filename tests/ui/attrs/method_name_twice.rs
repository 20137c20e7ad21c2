use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    #[rpc(name = "x", name = "y")]
    async fn ping(&self);
}

fn main() {}
