use rpc_runtime::rpc_service;

#[rpc_service(name = "")]
pub trait S<T> {
    #[rpc(bogus)]
    async fn ping(&self, value: impl Into<String>);

    async fn pong(self) -> &'static str;

    async fn echo(&self, (a, b): (u8, u8), mut count: u64) -> std::borrow::Cow<'_, str>;
}

fn main() {}
