use rpc_runtime::{rpc_service, Streaming};

#[rpc_service]
pub trait Sink {
    #[rpc(oneway)]
    async fn put(&self, items: Streaming<u8>);
}

fn main() {}
