//! A broker transport on [NATS](https://nats.io) (feature `nats`): servers
//! come and go behind subjects, NATS spreads the calls over them, and one
//! message can reach every one.
//!
//! - A server [`serve`]s its services through a NATS connection: each
//!   service in a queue group on `<prefix>.call.<service>` (NATS hands
//!   each call to one server of the group), every server of it on
//!   `<prefix>.fanout.<service>`, and each server on its own instance
//!   subject `<prefix>.instance.<name>`, where targeted calls and the later
//!   messages of a call it took (cancels, stream credit, stream items) go.
//! - A client calls through a [`NatsChannel`]: `XClient::new(channel)`
//!   works for every generated client.
//!
//! Calls keep their semantics over NATS: deadlines travel with the
//! request, dropping a call cancels it on the server that took it,
//! one-way calls are published without an answer, streams flow both ways
//! under the same credit as over TCP (pinned to the server that took the
//! call). Calls from a server back to its caller (callbacks) are not
//! carried: a caller over NATS serves nothing, and a handler finds no way
//! back ([`CallContext::channel`](crate::CallContext::channel) is `None`;
//! [`CallContext::peer_addr`](crate::CallContext::peer_addr) names the
//! caller's inbox).
//!
//! The subjects and messages are described in section 10 of
//! `docs/PROTOCOL.md`, for clients in other languages. The `nats` feature
//! needs Rust 1.89 (async-nats 0.51); the rest of the crate builds with
//! 1.85.

mod channel;
mod client_link;
mod demux;
mod fanout;
mod held;
mod micro;
mod publish;
mod server;
mod server_link;
mod subjects;

pub use channel::{NatsChannel, NatsChannelBuilder};

/// The protocol version of requests over NATS that carry no
/// `Rpc-Version` header: every request the Rust caller sends, since later
/// versions change no message (section 10 of `docs/PROTOCOL.md`).
const NATS_VERSION: u32 = 3;
pub use server::{serve, NatsAddr, NatsServer, ServeOptions};

/// The NATS client these types are built on, re-exported so that a user
/// connects with the same version.
pub use async_nats;
