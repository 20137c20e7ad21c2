use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn greet(&self, name: &str) -> String;
}

fn main() {}
