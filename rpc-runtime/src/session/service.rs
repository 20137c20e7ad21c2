//! [`Service`]: what a session dispatches the peer's calls to, and the
//! [`Request`] value each call reaches it as.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::error::RpcError;
use crate::telemetry::{self, MethodMetrics};
use crate::wire::body::Body;

use super::context::CallContext;

/// The future a [`Service`] returns for one call: the encoded return value,
/// or the reason the call failed.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<Body, RpcError>> + Send + 'static>>;

/// One call as a [`Service`] receives it: the service and method it
/// names, the encoded arguments, and the call's [`CallContext`] (its id,
/// deadline, metadata, peer and the peer's verified identity), so that a
/// wrapper around a service sees everything about the call before it runs.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request frame's payload; the arguments are in it.
    frame: Bytes,
    names: Arc<MethodNames>,
    args_at: usize,
    context: CallContext,
}

/// A method's service's and its own wire names.
#[derive(Debug)]
pub(crate) struct MethodNames {
    service: Box<str>,
    method: Box<str>,
    /// Its metrics, registered at its first call.
    metrics: OnceLock<&'static MethodMetrics>,
}

impl MethodNames {
    pub(crate) fn new(service: &str, method: &str) -> Self {
        MethodNames {
            service: service.into(),
            method: method.into(),
            metrics: OnceLock::new(),
        }
    }

    /// The method's server-side metrics.
    pub(crate) fn metrics(&self) -> &'static MethodMetrics {
        self.metrics
            .get_or_init(|| telemetry::server_method(&self.service, &self.method))
    }

    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    pub(crate) fn method(&self) -> &str {
        &self.method
    }
}

impl Request {
    /// The request in `frame` for the method `names`, whose arguments
    /// start at `args_at`.
    pub(crate) fn new(
        frame: &Bytes,
        names: &Arc<MethodNames>,
        args_at: usize,
        context: CallContext,
    ) -> Self {
        Request {
            frame: frame.clone(),
            names: Arc::clone(names),
            args_at,
            context,
        }
    }

    /// The service's wire name.
    #[must_use]
    pub fn service(&self) -> &str {
        self.names.service()
    }

    /// The method's wire name.
    #[must_use]
    pub fn method(&self) -> &str {
        self.names.method()
    }

    /// The method's wire name, as bytes.
    pub(crate) fn method_bytes(&self) -> &[u8] {
        self.names.method().as_bytes()
    }

    /// The encoded arguments (the bincode encoding of the arguments, one
    /// after another).
    #[must_use]
    pub fn args(&self) -> &[u8] {
        self.frame.get(self.args_at..).unwrap_or_default()
    }

    /// The call's context.
    #[must_use]
    pub fn context(&self) -> &CallContext {
        &self.context
    }

    /// The encoded arguments, without a copy.
    #[must_use]
    pub fn into_args(self) -> Bytes {
        let at = self.args_at.min(self.frame.len());
        self.frame.slice(at..)
    }

    /// The context and the encoded arguments.
    #[must_use]
    pub fn into_parts(self) -> (CallContext, Bytes) {
        let Request {
            frame,
            args_at,
            context,
            ..
        } = self;
        let at = args_at.min(frame.len());
        (context, frame.slice(at..))
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
    /// The service's name on the wire.
    fn name(&self) -> &str;

    /// The wire names of its methods. Requests name a method by an id
    /// derived from the service's and the method's names
    /// ([`method_id`](crate::method_id)), so a method not listed here
    /// cannot be called; a server refuses two listed methods whose ids
    /// collide.
    fn methods(&self) -> &[&str];

    /// Starts one call: `request` names the method and carries the
    /// encoded arguments and the call's context.
    ///
    /// An unknown method resolves to [`RpcError::UnknownMethod`]; arguments
    /// that do not decode resolve to [`RpcError::BadRequest`].
    fn call(&self, request: Request) -> ServiceFuture;
}
