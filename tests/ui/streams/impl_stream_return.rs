use rpc_runtime::rpc_service;

#[rpc_service]
pub trait Feed {
    async fn ticks(&self) -> impl futures::Stream<Item = u64>;
}

fn main() {}
