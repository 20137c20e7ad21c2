use rpc_runtime::rpc_service;

#[rpc_service]
pub trait Search {
    async fn search(&self, query: String, #[rpc(default = 10)] limit: u32) -> Vec<String>;
    async fn other(&self, query: String, #[rpc(optional)] limit: u32) -> Vec<String>;
}

fn main() {}
