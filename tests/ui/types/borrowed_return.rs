use rpc_runtime::rpc_service;

#[rpc_service]
pub trait S {
    async fn name(&self) -> std::borrow::Cow<'_, str>;
}

fn main() {}
