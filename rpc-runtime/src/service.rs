//! The one trait between the dispatch loop and a service.

use std::future::Future;
use std::pin::Pin;

pub use bytes::Bytes;

use crate::RpcError;

/// The future a [`Service`] returns for one call: the encoded return value,
/// or the reason the call failed.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<Body, RpcError>> + Send + 'static>>;

/// A call's encoded return value (the bincode encoding of the value the
/// handler returned), as a [`Service`] hands it to the server.
///
/// Generated services encode with room in front of the value for the
/// response header, so the server builds the answer frame without a copy; a
/// hand-written service can wrap bytes it encoded itself with
/// [`Body::from`].
#[derive(Debug)]
pub struct Body(pub(crate) BodyRepr);

#[derive(Debug)]
pub(crate) enum BodyRepr {
    /// The encoded value starts at `headroom`.
    Headroom {
        buf: bytes::BytesMut,
        headroom: usize,
    },
    Plain(Bytes),
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body(BodyRepr::Plain(bytes))
    }
}

/// Something a [`Server`](crate::Server) can route calls to.
///
/// `#[rpc_service]` implements it for the generated `<Trait>Server<T>`; you
/// only implement it by hand to serve calls without a trait (a proxy, say).
///
/// The server calls [`call`](Service::call) once per request, on the task that
/// reads the connection, and runs the returned future as a task of its own; so
/// `call` should only pick the method and return, and do the work inside the
/// future. A panic inside the future is caught and answered with
/// [`RpcError::Panicked`].
pub trait Service: Send + Sync + 'static {
    /// The service's name on the wire; requests carry it.
    fn name(&self) -> &str;

    /// Starts one call of `method` with its encoded arguments `args` (the
    /// bincode encoding of the arguments, one after another).
    ///
    /// An unknown `method` resolves to [`RpcError::UnknownMethod`]; arguments
    /// that do not decode resolve to [`RpcError::BadRequest`].
    fn call(&self, method: &str, args: Bytes) -> ServiceFuture;
}
