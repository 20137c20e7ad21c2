use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    type Item;

    fn not_async(&self) -> u64;

    async fn by_mut(&mut self, name: &str) -> String;

    async fn generic<T>(&self, value: T);

    async fn no_receiver(x: u64);

    #[rpc(name = "by_mut")]
    async fn clash(&self);
}

fn main() {}
