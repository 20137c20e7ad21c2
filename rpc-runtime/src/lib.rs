//! A typed RPC toolkit: annotate a trait with [`rpc_service`], get a client
//! stub and a server skeleton that talk bincode over length-delimited frames.
//!
//! ```
//! use rpc_runtime::rpc_service;
//!
//! #[rpc_service]
//! pub trait Greeter {
//!     /// Says hello.
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
//! let server = rpc_runtime::Server::builder()
//!     .add_service(GreeterServer::new(English))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let client = GreeterClient::connect(server.local_addr()).await?;
//! assert_eq!(client.hello("Ada".into()).await?, "Hello, Ada!");
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//! - [`rpc_service`] turns a trait into a client, `<Trait>Client`, and a
//!   server skeleton, `<Trait>Server<T>`.
//! - [`Channel`] is one multiplexed connection; clients are thin typed views
//!   of a channel and any number of them can share one.
//! - [`Server`] accepts connections and runs every request as its own task.
//! - [`RpcError`] is how every call fails.
//! - [`transport`] has the TCP, Unix socket and in-memory transports.
//!
//! The wire protocol is described in `docs/PROTOCOL.md`.

#![warn(missing_docs)]

extern crate self as rpc_runtime;

pub mod call;
mod client;
mod describe;
mod error;
pub mod health;
mod identity;
mod intercept;
mod intercepted;
pub mod link;
#[cfg(feature = "nats")]
pub mod nats;
pub mod reflection;
mod server;
pub mod service;
mod session;
mod status;
mod streaming;
pub mod telemetry;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tower")]
pub mod tower;
pub mod transport;
mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use call::{CallOptions, Invoke};
pub use client::{balance, ChannelBuilder};
pub use error::RpcError;
/// What consuming a [`Streaming`] needs (`next`, `map`, `collect`, ...),
/// re-exported from `futures`, so that a user needs no dependency of their
/// own.
pub use futures::stream::{Stream, StreamExt};
pub use identity::PeerIdentity;
pub use intercept::{CallInfo, Interceptor};
pub use intercepted::Intercepted;
pub use link::Compression;
pub use server::{Server, ServerBuilder};
pub use service::{Body, BodyStream, Service, ServiceFuture};
pub use session::{CallContext, Channel};
pub use status::{Code, Status};
pub use streaming::{StreamClosed, StreamSender, Streaming};
/// What [`Channel::connect`] and a generated client's `connect` take: a
/// socket address, or a host name and port (`"localhost:7000"`) to resolve.
pub use tokio::net::ToSocketAddrs;
pub use wire::metadata::{Metadata, MetadataValue, ReplyMetadata};
pub use wire::route::method_id;
pub use wire::version::{
    Extension, Extensions, Negotiated, OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION,
};

/// Turns a trait into an RPC service: a client stub and a server skeleton.
///
/// See the crate's README for the full story; in short, for
///
/// ```ignore
/// #[rpc_service]
/// pub trait Calculator {
///     async fn add(&self, a: i64, b: i64) -> i64;
/// }
/// ```
///
/// the macro keeps the trait (its methods now return `impl Future + Send`, and
/// implementations may still write `async fn`), and adds:
///
/// - `CalculatorClient`: `connect(addr)`, `new(channel)`, and one method per
///   trait method returning `Result<T, RpcError>`;
/// - `CalculatorServer<T>`: `new(imp)`, a [`Service`] to hand to
///   [`ServerBuilder::add_service`].
///
/// Arguments: `#[rpc_service(name = "pkg.Calculator")]` sets the service's
/// name on the wire (default: the trait's name).
pub use rpc_macros::rpc_service;
