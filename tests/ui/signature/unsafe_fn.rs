use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async unsafe fn ping(&self);
}

fn main() {}
