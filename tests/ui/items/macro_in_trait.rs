use rpc_runtime::rpc_service;

macro_rules! more_methods {
    () => {
        async fn extra(&self) -> u64;
    };
}

#[rpc_service]
pub trait S {
    async fn get(&self) -> u64;

    more_methods!();
}

fn main() {}
