use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    const fn ping(&self) -> u64;
}

fn main() {}
