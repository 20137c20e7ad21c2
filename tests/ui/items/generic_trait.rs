use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S<T> {
    async fn get(&self) -> T;
}

fn main() {}
