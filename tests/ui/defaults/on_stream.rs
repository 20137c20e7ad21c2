use rpc_runtime::{rpc_service, Streaming};

#[rpc_service]
pub trait Upload {
    async fn upload(&self, name: String, #[rpc(default)] chunks: Streaming<Vec<u8>>) -> u64;
}

fn main() {}
