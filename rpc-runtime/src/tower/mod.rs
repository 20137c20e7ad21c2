//! tower on both sides (feature `tower`).
//!
//! **Clients.** A [`Channel`](crate::Channel), a balanced channel and a
//! NATS channel are `tower::Service`s of raw calls themselves, any other
//! carrier ([`Invoke`](crate::Invoke)) is one through [`CallService`], and
//! any such service is a carrier again through [`TowerChannel`], so a
//! generated client runs over a tower stack unchanged:
//!
//! ```
//! use std::time::Duration;
//! use rpc_runtime::tower::{CallService, RetryCalls, TowerChannel};
//! use rpc_runtime::{rpc_service, Channel, Server};
//!
//! #[rpc_service]
//! pub trait Greeter {
//!     /// Says hello.
//!     #[rpc(idempotent)]
//!     async fn hello(&self, name: String) -> String;
//! }
//!
//! struct English;
//! impl Greeter for English {
//!     async fn hello(&self, name: String) -> String {
//!         format!("Hello, {name}!")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder()
//!     .add_service(GreeterServer::new(English))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let channel = Channel::connect(server.local_addr()).await?;
//! let stack = tower::ServiceBuilder::new()
//!     .retry(RetryCalls::new(2, Duration::from_secs(10), 5, 0.1))
//!     .timeout(Duration::from_secs(2))
//!     .concurrency_limit(64)
//!     .service(CallService::new(channel));
//! let client = GreeterClient::new(TowerChannel::new(stack));
//! assert_eq!(client.hello("Ada".into()).await?, "Hello, Ada!");
//! # server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! tower's `retry` layer must copy a call before sending it: a
//! [`RawCall`](crate::call::RawCall) copies itself with
//! [`duplicate`](crate::call::RawCall::duplicate) (its encoded arguments
//! are shared, not re-encoded), and [`RetryCalls`] is the policy that
//! does, retrying only what is safe within a budget. A call that sends a
//! stream cannot be copied and is never retried by it.
//!
//! **Servers.** [`ServerBuilder::layer`](crate::ServerBuilder::layer)
//! wraps the dispatch of every call in tower layers; the service they wrap
//! is a [`Handler`], a `tower::Service` of [`Request`](crate::service::Request)s.
//!
//! A layer's error becomes the call's [`RpcError`](crate::RpcError) by
//! [`into_rpc_error`].

mod client;
mod error;
mod server;

pub use client::{CallError, CallFuture, CallService, RetryCalls, TowerChannel};
pub use error::{into_rpc_error, BoxError};
pub use server::Handler;
pub(crate) use server::{stack as stack_of, Layered};
