//! A key-value server. Run it in one terminal, `kv_client` in another:
//!
//! ```text
//! cargo run --example kv_server -- 127.0.0.1:7878
//! cargo run --example kv_client -- 127.0.0.1:7878 put greeting hello
//! ```
//!
//! It answers the reflection service too, so the `rpc` command line calls
//! it with JSON, no client written:
//!
//! ```text
//! rpc call 127.0.0.1:7878 example.KeyValue.put '["greeting","hello"]'
//! rpc call 127.0.0.1:7878 example.KeyValue.get '{"key":"greeting"}'
//! ```
//!
//! Stops gracefully on Ctrl-C: running calls finish, then it exits.

#[path = "kv/service.rs"]
#[allow(dead_code)]
mod service;

use rpc_runtime::Server;
use service::{KeyValueServer, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_owned());
    let server = Server::builder()
        .add_service(KeyValueServer::new(Store::default()))
        .bind(addr.as_str())
        .await?;
    println!("kv_server listening on {}", server.local_addr());
    server
        .shutdown_on(async {
            let _ = tokio::signal::ctrl_c().await;
            println!("shutting down");
        })
        .await;
    Ok(())
}
