use rpc_runtime::rpc_service;

#[rpc_service]
pub trait Search {
    async fn search(&self, #[rpc(default)] limit: u32, query: String) -> Vec<String>;
}

fn main() {}
