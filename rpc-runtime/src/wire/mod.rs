//! The wire: frames and the messages they carry, the bincode codec, decode
//! limits, and the encoding of metadata. It knows nothing of connections;
//! `docs/PROTOCOL.md` is its normative description.

pub(crate) mod body;
pub(crate) mod codec;
pub(crate) mod depth;
#[cfg(test)]
mod documented;
pub(crate) mod frame;
pub(crate) mod kind;
pub(crate) mod metadata;
pub(crate) mod request;
pub(crate) mod route;
mod slices;
pub(crate) mod version;
