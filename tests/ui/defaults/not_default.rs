use rpc_runtime::rpc_service;
use serde::{Deserialize, Serialize};

/// Has no `Default`: a server cannot fill it in.
#[derive(Serialize, Deserialize)]
pub struct Filter {
    pub tag: String,
}

#[rpc_service]
pub trait Search {
    async fn search(&self, query: String, #[rpc(default)] filter: Filter) -> Vec<String>;
}

fn main() {}
