use rpc_runtime::{rpc_service, Streaming};

#[rpc_service]
pub trait Feed {
    #[rpc(oneway)]
    async fn ticks(&self, count: u32) -> Streaming<u64>;
}

fn main() {}
