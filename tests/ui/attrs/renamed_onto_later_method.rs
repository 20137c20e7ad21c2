use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    #[rpc(name = "pong")]
    async fn ping(&self);

    async fn pong(&self);
}

fn main() {}
