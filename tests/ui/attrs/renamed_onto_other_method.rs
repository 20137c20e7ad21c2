use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn ping(&self);

    #[rpc(name = "ping")]
    async fn ping_v2(&self);
}

fn main() {}
