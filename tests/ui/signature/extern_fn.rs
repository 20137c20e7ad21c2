use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async extern "C" fn ping(&self);
}

fn main() {}
