use rpc_runtime::{rpc_service, Streaming};

/// The macro knows streams by name: behind an alias, this is a value.
pub type Ticks = Streaming<u64>;

#[rpc_service]
pub trait Clock {
    async fn ticks(&self) -> Ticks;
}

fn main() {}
