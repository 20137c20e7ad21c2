//! The description of a service: plain data, serialized as the JSON
//! document `docs/PROTOCOL.md` specifies.

use serde::{Deserialize, Serialize};
use serde_reflection::{Format, Registry};

use crate::wire::kind::CallKind;

/// A service as its clients see it: its wire name, its methods and the
/// types they carry.
///
/// Made by `#[rpc_service]` (`<Trait>Client::descriptor()`), served by the
/// [reflection service](crate::reflection) as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceDescriptor {
    /// The service's wire name.
    pub name: String,
    /// The trait's documentation.
    #[serde(default)]
    pub docs: String,
    /// Its methods, in the trait's order.
    pub methods: Vec<MethodDescriptor>,
    /// The named types (structs, enums) the methods' formats refer to by
    /// `TYPENAME`, each by its Rust name without its path.
    #[serde(default)]
    pub types: Registry,
}

/// One method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodDescriptor {
    /// The method's wire name.
    pub name: String,
    /// The method's name in Rust (differs from `name` under
    /// `#[rpc(name = "...")]`).
    pub rust_name: String,
    /// The method's documentation.
    #[serde(default)]
    pub docs: String,
    /// The method as the trait declares it, without `async fn` and `&self`:
    /// `get(key: String) -> Option<String>`.
    pub signature: String,
    /// What a call sends and what it expects back.
    pub kind: CallKind,
    /// `#[rpc(idempotent)]`: safe to run more than once.
    #[serde(default)]
    pub idempotent: bool,
    /// The server may refuse the answer stream before it starts (the
    /// method returns `Result<Streaming<T>, E>`): with a value of `error`,
    /// or with a status.
    #[serde(default)]
    pub refusable: bool,
    /// Whether the handler fails with an application status (it returns
    /// `Result<T, Status>`); every call may fail with one of the runtime's
    /// errors anyway.
    #[serde(default)]
    pub status: bool,
    /// The arguments, in order; a stream the caller sends is not among
    /// them (see `stream`).
    pub args: Vec<ArgDescriptor>,
    /// The items of the stream the caller sends, for a kind that sends one.
    #[serde(default)]
    pub stream: Option<Format>,
    /// What a successful call answers: the value, or each item of the
    /// answer stream; `UNIT` for one-way calls. Absent when it could not be
    /// traced (see `problem`).
    #[serde(default)]
    pub returns: Option<Format>,
    /// The application's error type `E` of a method returning
    /// `Result<T, E>`: the answer is then encoded as that `Result` (variant
    /// 0 `Ok(returns)`, 1 `Err(error)`). For a refusable stream, the
    /// refusal's type, sent in place of the stream.
    #[serde(default)]
    pub error: Option<Format>,
    /// Why some of the method's types have no format (a type whose
    /// `Deserialize` rejects the values tracing tries, or two types of the
    /// same name): tools cannot encode its calls.
    #[serde(default)]
    pub problem: Option<String>,
}

/// One argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArgDescriptor {
    /// The argument's name in the trait.
    pub name: String,
    /// Its format; absent when it could not be traced.
    #[serde(default)]
    pub format: Option<Format>,
    /// `#[rpc(default)]`: a request may end before it, and the server uses
    /// the type's default.
    #[serde(default)]
    pub default: bool,
}

impl ServiceDescriptor {
    /// A description of a service that only names its methods: for
    /// services written by hand, which the macro did not describe.
    #[must_use]
    pub fn names_only(name: &str, methods: &[&str]) -> ServiceDescriptor {
        ServiceDescriptor {
            name: name.to_owned(),
            docs: String::new(),
            methods: methods
                .iter()
                .map(|method| MethodDescriptor {
                    name: (*method).to_owned(),
                    rust_name: (*method).to_owned(),
                    docs: String::new(),
                    signature: format!("{method}(?)"),
                    kind: CallKind::Unary,
                    idempotent: false,
                    refusable: false,
                    status: false,
                    args: Vec::new(),
                    stream: None,
                    returns: None,
                    error: None,
                    problem: Some(
                        "a service written by hand: its kind, arguments and answer are not described".to_owned(),
                    ),
                })
                .collect(),
            types: Registry::new(),
        }
    }

    /// The method with wire name `name`.
    #[must_use]
    pub fn method(&self, name: &str) -> Option<&MethodDescriptor> {
        self.methods.iter().find(|m| m.name == name)
    }
}
