use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn name<'a>(&'a self) -> String;
}

fn main() {}
