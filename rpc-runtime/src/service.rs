//! The server side's seam: [`Service`], the one trait between a session's
//! dispatch and a service, the [`Request`] a call reaches it as, and the
//! [`Body`] it answers with.

pub use bytes::Bytes;

pub use crate::session::{Request, Service, ServiceFuture};
pub use crate::wire::body::{Body, BodyStream};
