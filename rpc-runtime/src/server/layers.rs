//! tower layers around a server's dispatch (feature `tower`).

use std::collections::HashMap;
use std::sync::Arc;

use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt};

use crate::service::{Body, Request, Service};
use crate::tower::{stack_of, BoxError, Handler, Layered};

use super::ServerBuilder;

/// The service a server's layers see, boxed between one layer and the next.
pub(super) type Boxed = BoxCloneService<Request, Body, BoxError>;

/// One layer, applied when the server starts.
pub(super) type BoxLayer = Arc<dyn Fn(Boxed) -> Boxed + Send + Sync>;

impl ServerBuilder {
    /// Wraps the server's dispatch in a tower `layer` (feature `tower`):
    /// every call to every service it hosts (the health service included)
    /// goes through it as a [`Request`], with its service, method,
    /// arguments and [`CallContext`](crate::CallContext), before it runs.
    /// For async checks (authentication against a store), rate and
    /// concurrency limits, timeouts, and any `tower` middleware.
    ///
    /// Layers added first are outermost (as with `tower::ServiceBuilder`).
    /// One stack serves all connections: each call runs on a clone of it,
    /// made ready first, so a layer whose clones share their state
    /// (`ConcurrencyLimit`, `Buffer`) limits the whole server, and one whose
    /// clones do not (`RateLimit`) needs a `Buffer` around it to. A layer's
    /// error fails the call as [`into_rpc_error`](crate::tower::into_rpc_error)
    /// says (a `Status` as itself; a `timeout` as `DEADLINE_EXCEEDED`, a
    /// `load_shed` as `UNAVAILABLE`). Interceptors run before the layers, on
    /// the connection's task, and stay the cheaper way to refuse a call
    /// synchronously. A server without layers runs calls exactly as before,
    /// at no cost.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rpc_runtime::Server;
    ///
    /// let builder = Server::builder()
    ///     // .add_service(CalculatorServer::new(Calc))
    ///     .layer(tower::limit::ConcurrencyLimitLayer::new(64))
    ///     .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Boxed> + Send + Sync + 'static,
        L::Service: tower::Service<Request, Response = Body> + Clone + Send + 'static,
        <L::Service as tower::Service<Request>>::Error: Into<BoxError>,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        self.layers.push(Arc::new(move |inner: Boxed| {
            BoxCloneService::new(layer.layer(inner).map_err(Into::into))
        }));
        self
    }

    /// `services`, each behind the layers, if there are any.
    pub(super) fn layered(
        layers: &[BoxLayer],
        services: HashMap<String, Arc<dyn Service>>,
    ) -> HashMap<String, Arc<dyn Service>> {
        if layers.is_empty() {
            return services;
        }
        let handler = Handler::new(Arc::new(services.clone()));
        let mut stack: Boxed = BoxCloneService::new(handler.map_err(BoxError::from));
        for layer in layers.iter().rev() {
            stack = layer(stack);
        }
        let stack = stack_of(stack);
        services
            .into_iter()
            .map(|(name, service)| {
                let layered: Arc<dyn Service> = Arc::new(Layered::new(service, Arc::clone(&stack)));
                (name, layered)
            })
            .collect()
    }
}
