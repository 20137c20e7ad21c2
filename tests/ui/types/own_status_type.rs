use rpc_runtime::rpc_service;

/// The application's own status type, under the runtime's name.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub code: u16,
}

#[rpc_service]
pub trait Lookup {
    async fn find(&self, key: String) -> Result<u64, Status>;
}

fn main() {}
