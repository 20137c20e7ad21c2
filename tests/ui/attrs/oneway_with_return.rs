use rpc_runtime::rpc_service;

#[rpc_service]
pub trait Logger {
    #[rpc(oneway)]
    async fn log(&self, line: String) -> bool;
}

fn main() {}
