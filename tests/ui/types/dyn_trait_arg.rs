use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn show(&self, value: Box<dyn std::fmt::Display>) -> String;
}

fn main() {}
