use rpc_runtime::rpc_service;

pub trait S {
    fn ping(&self) -> u64;
}

pub struct Impl;

#[rpc_service]
impl S for Impl {
    fn ping(&self) -> u64 {
        0
    }
}

fn main() {}
