use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn echo<T>(&self, value: T) -> T;
}

fn main() {}
