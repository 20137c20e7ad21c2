use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn get(&self) -> u64;

    my_macro!();
}

fn main() {}
