//! What a layer's error means to a caller.

use crate::error::RpcError;
use crate::status::{Code, Status};

/// The error type tower layers return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `error` as the [`RpcError`] a call fails with: an `RpcError` or a
/// [`Status`] as itself; tower's `timeout` as `DEADLINE_EXCEEDED` and its
/// `load_shed` as `UNAVAILABLE`; anything else as `UNKNOWN`, with the
/// error's message (all three as [`RpcError::Layer`]).
///
/// ```
/// use rpc_runtime::{Code, RpcError};
/// use rpc_runtime::tower::into_rpc_error;
///
/// let elapsed: rpc_runtime::tower::BoxError = Box::new(tower::timeout::error::Elapsed::new());
/// assert!(matches!(into_rpc_error(elapsed), RpcError::Layer { code: Code::DEADLINE_EXCEEDED, .. }));
/// ```
#[must_use]
pub fn into_rpc_error(error: BoxError) -> RpcError {
    let error = match error.downcast::<RpcError>() {
        Ok(error) => return *error,
        Err(other) => other,
    };
    let error = match error.downcast::<Status>() {
        Ok(status) => return RpcError::Status(*status),
        Err(other) => other,
    };
    let code = if error.is::<tower::timeout::error::Elapsed>() {
        Code::DEADLINE_EXCEEDED
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        Code::UNAVAILABLE
    } else {
        Code::UNKNOWN
    };
    RpcError::Layer {
        code,
        message: error.to_string(),
    }
}
