//! The reflection service every server answers (unless
//! [`ServerBuilder::reflection(false)`](crate::ServerBuilder::reflection)):
//! which services it hosts, and each one's description, so that tools (the
//! `rpc` command line, or a client in another language) can call any
//! method without its Rust types.
//!
//! What it exposes, and nothing more: each hosted service's wire name, its
//! methods' wire and Rust names, their documentation comments and
//! signatures, their flags (one-way, idempotent, streaming, refusable), and
//! the *format* of every type they carry: field and variant names and
//! types, as [serde-reflection](https://docs.rs/serde-reflection) traces
//! them. No data, no addresses, no implementation. A server whose API is a
//! secret turns it off.
//!
//! Under the wire name `rpc.reflection.v1.Reflection`; the description is a
//! JSON document, specified in `docs/PROTOCOL.md` (section 11).
//!
//! ```
//! use rpc_runtime::reflection::{ReflectionClient, ServiceDescriptor};
//! use rpc_runtime::{rpc_service, Server};
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
//! let server = Server::builder()
//!     .add_service(GreeterServer::new(English))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let reflection = ReflectionClient::connect(server.local_addr()).await?;
//! assert!(reflection.list().await?.contains(&"Greeter".to_owned()));
//!
//! let json = reflection.describe("Greeter".into()).await?;
//! let greeter: ServiceDescriptor = serde_json::from_str(&json)?;
//! assert_eq!(greeter, GreeterClient::descriptor());
//! assert_eq!(greeter.methods[0].signature, "hello(name: String) -> String");
//! # server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::sync::{Arc, OnceLock};

pub use crate::describe::{ArgDescriptor, MethodDescriptor, ServiceDescriptor};
/// The format model of the descriptions, re-exported from serde-reflection.
pub use serde_reflection::{ContainerFormat, Format, Named, Registry, VariantFormat};

use crate::service::Service;
use crate::status::Status;

/// The reflection service: what a server hosts, and how to call it.
#[crate::rpc_service(name = "rpc.reflection.v1.Reflection")]
pub trait Reflection {
    /// The wire names of the services the server hosts (the health and
    /// reflection services included), sorted.
    #[rpc(idempotent)]
    async fn list(&self) -> Vec<String>;

    /// The description of `service` as a JSON document (see
    /// `docs/PROTOCOL.md`); `NOT_FOUND` for a service the server does not
    /// host.
    #[rpc(idempotent)]
    async fn describe(&self, service: String) -> Result<String, Status>;
}

/// The services a server hosts, described on first demand.
pub(crate) struct Hosted {
    /// Sorted by name.
    entries: Vec<Entry>,
}

struct Entry {
    name: String,
    /// `None`: the reflection service itself.
    service: Option<Arc<dyn Service>>,
    json: OnceLock<Result<String, String>>,
}

impl Hosted {
    /// The reflection service of a server hosting `services` (and this
    /// one, under its own name).
    pub(crate) fn new<'a>(services: impl IntoIterator<Item = &'a Arc<dyn Service>>) -> Self {
        let mut entries: Vec<Entry> = services
            .into_iter()
            .map(|service| Entry {
                name: service.name().to_owned(),
                service: Some(Arc::clone(service)),
                json: OnceLock::new(),
            })
            .collect();
        entries.push(Entry {
            name: ReflectionServer::<Hosted>::SERVICE_NAME.to_owned(),
            service: None,
            json: OnceLock::new(),
        });
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        Hosted { entries }
    }

    /// The service, to add to the server.
    pub(crate) fn service(self) -> ReflectionServer<Hosted> {
        ReflectionServer::new(self)
    }
}

impl Entry {
    fn descriptor(&self) -> ServiceDescriptor {
        match &self.service {
            None => ReflectionClient::descriptor(),
            Some(service) => service.descriptor().unwrap_or_else(|| {
                ServiceDescriptor::names_only(service.name(), service.methods())
            }),
        }
    }
}

impl Reflection for Hosted {
    async fn list(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    async fn describe(&self, service: String) -> Result<String, Status> {
        let entry = self
            .entries
            .binary_search_by(|e| e.name.as_str().cmp(&service))
            .ok()
            .and_then(|at| self.entries.get(at))
            .ok_or_else(|| {
                Status::not_found(format!("this server hosts no service `{service}`"))
            })?;
        entry
            .json
            .get_or_init(|| serde_json::to_string(&entry.descriptor()).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| {
                Status::internal(format!(
                    "the description of `{service}` does not encode: {e}"
                ))
            })
    }
}

/// Decodes one value as the runtime encodes values (see `docs/PROTOCOL.md`,
/// section 2), with a [`DeserializeSeed`](serde::de::DeserializeSeed)
/// rather than a type: for tools that know a value's type only at run
/// time, from its [`Format`]. The decode has the limits of every decode
/// (nesting depth, values per byte) and must use every byte.
///
/// # Errors
/// [`RpcError::BadResponse`](crate::RpcError::BadResponse) with the
/// decoder's message.
pub fn decode_seed<'de, S: serde::de::DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
) -> Result<S::Value, crate::RpcError> {
    crate::wire::codec::decode_seed(seed, bytes)
        .map_err(|message| crate::RpcError::BadResponse { message })
}
