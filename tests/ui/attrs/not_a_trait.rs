use rpc_runtime::rpc_service;

#[rpc_service]
pub struct S {
    value: u64,
}

fn main() {}
