//! [`Service`]: what a session dispatches the peer's calls to, and the
//! [`Request`] value each call reaches it as.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::error::RpcError;
use crate::wire::body::Body;

use super::context::CallContext;

/// The future a [`Service`] returns for one call: the encoded return value,
/// or the reason the call failed.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<Body, RpcError>> + Send + 'static>>;

/// One call as a [`Service`] receives it: the method, the encoded
/// arguments, and the call's [`CallContext`] (its service and method, id,
/// deadline, metadata, peer and the peer's identity), so that a wrapper
/// around a service sees everything about the call before it runs.
#[derive(Debug, Clone)]
pub struct Request {
    context: CallContext,
    args: Bytes,
}

impl Request {
    pub(crate) fn new(context: CallContext, args: Bytes) -> Self {
        Request { context, args }
    }

    /// The method's wire name.
    #[must_use]
    pub fn method(&self) -> &str {
        self.context.method()
    }

    /// The encoded arguments (the bincode encoding of the arguments, one
    /// after another).
    #[must_use]
    pub fn args(&self) -> &Bytes {
        &self.args
    }

    /// The call's context.
    #[must_use]
    pub fn context(&self) -> &CallContext {
        &self.context
    }

    /// The context and the encoded arguments.
    #[must_use]
    pub fn into_parts(self) -> (CallContext, Bytes) {
        (self.context, self.args)
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

    /// Starts one call: `request` names the method and carries the
    /// encoded arguments and the call's context.
    ///
    /// An unknown method resolves to [`RpcError::UnknownMethod`]; arguments
    /// that do not decode resolve to [`RpcError::BadRequest`].
    fn call(&self, request: Request) -> ServiceFuture;
}
