use rpc_runtime::rpc_service;

#[rpc_service]
pub trait Logger {
    #[rpc(oneway, idempotent)]
    async fn log(&self, line: String);
}

fn main() {}
