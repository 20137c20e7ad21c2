//! The one trait between the dispatch loop and a service.

use std::future::Future;
use std::pin::Pin;

use futures::Stream;

pub use bytes::Bytes;

use crate::error::RpcError;

/// The future a [`Service`] returns for one call: the encoded return value,
/// or the reason the call failed.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<Body, RpcError>> + Send + 'static>>;

/// A call's encoded return value (the bincode encoding of the value the
/// handler returned), as a [`Service`] hands it to the server; or, for a
/// method that answers with a stream, the stream of encoded items.
///
/// Generated services encode with room in front of the value for the
/// response header, so the server builds the answer frame without a copy; a
/// hand-written service can wrap bytes it encoded itself with
/// [`Body::from`], or a stream of them with [`Body::stream`].
pub struct Body(pub(crate) BodyRepr);

/// The encoded items of an answer stream.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Body, RpcError>> + Send + 'static>>;

pub(crate) enum BodyRepr {
    /// The encoded value starts at `headroom`.
    Headroom {
        buf: bytes::BytesMut,
        headroom: usize,
    },
    Plain(Bytes),
    /// An answer stream: the server sends each item as it comes, as the
    /// caller's credit allows, and ends the call when the stream ends.
    Stream(BodyStream),
}

impl Body {
    /// An answer stream of encoded items; an `Err` item ends the stream
    /// with that error. Only for methods the caller calls as streaming.
    #[must_use]
    pub fn stream(items: BodyStream) -> Self {
        Body(BodyRepr::Stream(items))
    }

    /// Whether this is an answer stream.
    #[must_use]
    pub fn is_stream(&self) -> bool {
        matches!(self.0, BodyRepr::Stream(_))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            BodyRepr::Headroom { buf, headroom } => f
                .debug_tuple("Body")
                .field(&buf.get(*headroom..).unwrap_or_default().len())
                .finish(),
            BodyRepr::Plain(bytes) => f.debug_tuple("Body").field(&bytes.len()).finish(),
            BodyRepr::Stream(_) => f.write_str("Body(stream)"),
        }
    }
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
