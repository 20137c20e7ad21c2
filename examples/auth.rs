//! Bearer-token authentication with an interceptor, in one process: calls
//! carry a token as metadata, the server checks it before any handler runs,
//! and handlers read who called.
//!
//! ```text
//! cargo run --example auth
//! ```

use rpc_runtime::{rpc_service, CallContext, CallInfo, MetadataValue, RpcError, Server};

/// A greeting service that knows its callers.
#[rpc_service]
pub trait Greeter {
    /// Greets the caller by the name their token belongs to.
    async fn hello(&self) -> String;
}

struct Impl;

impl Greeter for Impl {
    async fn hello(&self) -> String {
        let user = CallContext::current()
            .and_then(|cx| user_of(cx.metadata().get("authorization")?).map(str::to_owned))
            .unwrap_or_default();
        format!("hello, {user}")
    }
}

/// The users the tokens belong to (a real server would look them up).
fn user_of(value: &MetadataValue) -> Option<&'static str> {
    match value.as_str()? {
        "Bearer 7f3a" => Some("ada"),
        "Bearer 91c2" => Some("grace"),
        _ => None,
    }
}

/// Runs before every call: no token, or an unknown one, and the call is
/// refused with `Unauthenticated`.
fn bearer_auth(call: &CallInfo<'_>) -> Result<(), RpcError> {
    let Some(token) = call.metadata.get("authorization") else {
        return Err(RpcError::Unauthenticated {
            message: "send `authorization: Bearer <token>`".into(),
        });
    };
    match user_of(token) {
        Some(_) => Ok(()),
        None => Err(RpcError::Unauthenticated {
            message: "unknown token".into(),
        }),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .add_service(GreeterServer::new(Impl))
        .intercept(bearer_auth)
        .bind("127.0.0.1:0")
        .await?;
    let client = GreeterClient::connect(server.local_addr()).await?;

    match client.hello().await {
        Err(RpcError::Unauthenticated { message }) => {
            println!("without a token: refused ({message})")
        }
        other => println!("without a token: {other:?}"),
    }
    let ada = client.with_metadata("authorization", "Bearer 7f3a");
    println!("with ada's token: {}", ada.hello().await?);
    // The metadata is not printed by Debug: the token stays out of logs.
    println!("ada's client options: {:?}", ada.options());
    server.shutdown().await;
    Ok(())
}
