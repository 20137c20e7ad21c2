use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    fn ping(&self) -> impl std::future::Future<Output = u64> + Send;
}

fn main() {}
