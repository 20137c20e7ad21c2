//! The server side: the services a server hosts as one tower service of
//! [`Request`]s, for [`ServerBuilder::layer`](crate::ServerBuilder::layer)
//! to wrap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tower::ServiceExt;

use crate::error::RpcError;
use crate::service::{Body, Request, Service, ServiceFuture};

use super::error::{into_rpc_error, BoxError};

/// Every service a server hosts, as the one tower service its layers
/// wrap: a [`Request`] in (its service, method, arguments and
/// [`CallContext`](crate::CallContext)), the encoded answer out. Always
/// ready; each request runs on the service it names.
#[derive(Clone)]
pub struct Handler {
    services: Arc<HashMap<String, Arc<dyn Service>>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Handler {
    pub(crate) fn new(services: Arc<HashMap<String, Arc<dyn Service>>>) -> Self {
        Handler { services }
    }
}

impl tower::Service<Request> for Handler {
    type Response = Body;
    type Error = RpcError;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), RpcError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> ServiceFuture {
        match self.services.get(request.service()) {
            Some(service) => service.call(request),
            None => {
                let service = request.service().to_owned();
                Box::pin(std::future::ready(Err(RpcError::UnknownService {
                    service,
                })))
            }
        }
    }
}

/// What a server's layers made: one stack shared by all its services.
pub(crate) type Stack = Arc<dyn Fn(Request) -> ServiceFuture + Send + Sync>;

/// `stack` (a layered [`Handler`]) as the function each call goes
/// through: a clone of the stack per call, made ready, then called; its
/// error as [`into_rpc_error`] makes it. The stack is behind a lock held
/// only to clone it, so it needs to be `Send`, not `Sync`.
pub(crate) fn stack<S>(stack: S) -> Stack
where
    S: tower::Service<Request, Response = Body> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let stack = Mutex::new(stack);
    Arc::new(move |request| {
        let stack = stack.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Box::pin(async move {
            stack
                .oneshot(request)
                .await
                .map_err(|error| into_rpc_error(error.into()))
        })
    })
}

/// One hosted service, its calls going through the server's layers.
pub(crate) struct Layered {
    service: Arc<dyn Service>,
    stack: Stack,
}

impl Layered {
    pub(crate) fn new(service: Arc<dyn Service>, stack: Stack) -> Self {
        Layered { service, stack }
    }
}

impl Service for Layered {
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
        (self.stack)(request)
    }
}
