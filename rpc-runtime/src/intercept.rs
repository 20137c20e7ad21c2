//! Interceptors: checks that run before a call is dispatched, with its
//! method, metadata and caller, and can refuse it (authentication,
//! authorization, admission).

use crate::error::RpcError;
use crate::identity::PeerIdentity;
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
/// service with [`Intercepted`](crate::Intercepted); both run (the server's first). Any
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
