//! What a service is, as data: its methods, their arguments and answers,
//! and every type they carry as a *format* (serde-reflection's model of a
//! serde type, exactly as bincode encodes it). The macro describes each
//! service it generates; the [reflection service](crate::reflection) serves
//! the descriptions of what a server hosts.
//!
//! A leaf: it knows the call kinds of the wire and nothing of connections.

mod descriptor;
mod trace;

pub use descriptor::{ArgDescriptor, MethodDescriptor, ServiceDescriptor};
pub use trace::{trace, Describer, MethodShape, TraceFn, Traced, Tracing, Untraced};
