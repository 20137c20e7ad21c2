use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    #[rpc(name = "x")]
    async fn first(&self);

    #[rpc(name = "x")]
    async fn second(&self);
}

fn main() {}
