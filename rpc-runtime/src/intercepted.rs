//! [`Intercepted`]: one service with an interceptor in front of it.

use std::sync::Arc;

use crate::intercept::{CallInfo, Interceptor};
use crate::session::{Request, Service, ServiceFuture};

/// A service whose calls pass an [`Interceptor`] first.
///
/// ```
/// # use rpc_runtime::{rpc_service, CallInfo, Intercepted, RpcError, Server};
/// # #[rpc_service] pub trait Admin { async fn reset(&self); }
/// # struct Impl; impl Admin for Impl { async fn reset(&self) {} }
/// let admins_only = |call: &CallInfo<'_>| match call.identity {
///     Some(id) if id.subject() == "CN=admin" => Ok(()),
///     _ => Err(RpcError::PermissionDenied { message: "admins only".into() }),
/// };
/// let builder = Server::builder().add_service(Intercepted::new(AdminServer::new(Impl), admins_only));
/// ```
pub struct Intercepted<S, I> {
    service: S,
    interceptor: Arc<I>,
}

impl<S, I> Intercepted<S, I> {
    /// `service`, with `interceptor` in front of every call.
    pub fn new(service: S, interceptor: I) -> Self {
        Intercepted {
            service,
            interceptor: Arc::new(interceptor),
        }
    }
}

impl<S: Service, I: Interceptor> Service for Intercepted<S, I> {
    fn name(&self) -> &str {
        self.service.name()
    }

    fn methods(&self) -> &[&str] {
        self.service.methods()
    }

    fn descriptor(&self) -> Option<crate::describe::ServiceDescriptor> {
        self.service.descriptor()
    }

    fn call(&self, request: Request) -> ServiceFuture {
        // Checked before the call starts, with what its context says of it.
        let context = request.context();
        let info = CallInfo {
            service: request.service(),
            method: request.method(),
            metadata: context.metadata(),
            peer: context.peer_addr(),
            identity: context.peer_identity(),
        };
        match self.interceptor.intercept(&info) {
            Ok(()) => self.service.call(request),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}
