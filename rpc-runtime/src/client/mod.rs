//! The client end: settings ([`ChannelBuilder`]), dialing every kind of
//! transport, reconnecting with backoff, and a [`Channel`] as the call seam
//! that generated clients use. What a connection does once it is open is
//! the session's (see `session`), shared with the server end.

pub mod balance;
mod builder;
pub(crate) mod calls;
mod dial;
mod reconnect;

pub use builder::ChannelBuilder;
