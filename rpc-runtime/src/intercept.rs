//! Interceptors: checks that run before a call is dispatched, with its
//! method, metadata and caller, and can refuse it (authentication,
//! authorization, admission).

use std::sync::Arc;

use bytes::Bytes;

use crate::error::RpcError;
use crate::identity::PeerIdentity;
use crate::service::{Service, ServiceFuture};
use crate::session::CallContext;
use crate::transport::PeerAddr;
use crate::wire::metadata::Metadata;

/// What an [`Interceptor`] sees of a call before it runs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallInfo<'a> {
    /// The service's wire name.
    pub service: &'a str,
    /// The method's wire name.
    pub method: &'a str,
    /// The call's metadata.
    pub metadata: &'a Metadata,
    /// Where the call came from.
    pub peer: &'a PeerAddr,
    /// Who the caller proved to be (mutual TLS), if anyone.
    pub identity: Option<&'a PeerIdentity>,
}

/// A check that runs before a call is dispatched and can refuse it; the
/// caller then gets the error (typically [`RpcError::Unauthenticated`] or
/// [`RpcError::PermissionDenied`]) and the handler never runs.
///
/// Install one for a whole server with
/// [`ServerBuilder::intercept`](crate::ServerBuilder::intercept), or for one
/// service with [`Intercepted`]; both run (the server's first). Any
/// `Fn(&CallInfo) -> Result<(), RpcError>` is an interceptor.
///
/// ```
/// use rpc_runtime::{CallInfo, RpcError};
///
/// fn bearer(call: &CallInfo<'_>) -> Result<(), RpcError> {
///     match call.metadata.get("authorization").and_then(|v| v.as_str()) {
///         Some("Bearer s3cr3t") => Ok(()),
///         Some(_) => Err(RpcError::Unauthenticated { message: "unknown token".into() }),
///         None => Err(RpcError::Unauthenticated { message: "no token".into() }),
///     }
/// }
/// let builder = rpc_runtime::Server::builder().intercept(bearer);
/// ```
///
/// Interceptors run on the connection's task, before the call has a task of
/// its own: keep them quick, and do not block (no I/O).
pub trait Interceptor: Send + Sync + 'static {
    /// `Ok` lets the call run; `Err` is its answer.
    ///
    /// # Errors
    /// The error the caller receives instead of an answer.
    fn intercept(&self, call: &CallInfo<'_>) -> Result<(), RpcError>;
}

impl<F> Interceptor for F
where
    F: Fn(&CallInfo<'_>) -> Result<(), RpcError> + Send + Sync + 'static,
{
    fn intercept(&self, call: &CallInfo<'_>) -> Result<(), RpcError> {
        self(call)
    }
}

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

    fn call(&self, method: &str, args: Bytes) -> ServiceFuture {
        let inner = self.service.call(method, args);
        let interceptor = Arc::clone(&self.interceptor);
        let service = self.service.name().to_owned();
        let method = method.to_owned();
        // Checked when the call first runs, inside its context (which has
        // the metadata and the caller), before the handler is polled.
        Box::pin(async move {
            if let Some(cx) = CallContext::current() {
                let info = CallInfo {
                    service: &service,
                    method: &method,
                    metadata: cx.metadata(),
                    peer: cx.peer_addr(),
                    identity: cx.peer_identity(),
                };
                interceptor.intercept(&info)?;
            }
            inner.await
        })
    }
}
