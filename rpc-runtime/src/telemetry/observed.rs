//! One call as seen by traces and metrics, on either side: its span, its
//! method's handles, when it started; ended once, with its outcome.
//!
//! A call nobody watches (no span enabled for it, no recorder installed
//! when its method registered) is not observed at all: no clock is read,
//! and the record is an empty pointer that every step skips.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::time::Instant;
use tracing::field::Empty;
use tracing::Span;

use crate::error::RpcError;
use crate::transport::PeerAddr;

use super::method::MethodMetrics;
use super::outcome;

/// `rpc.system` on every span.
pub(crate) const SYSTEM: &str = "rpc-runtime";

/// A call being observed, or not (nobody watches). Shared between the
/// layer that ends it and the transport that notes its attempts on its
/// span; when the last share is dropped before [`end`](Self::end) (its
/// caller gave up, its task was stopped), it ends as `CANCELLED`.
pub(crate) struct Observed(Option<Arc<Watched>>);

/// A call somebody watches.
struct Watched {
    span: Span,
    metrics: &'static MethodMetrics,
    started: Instant,
    open: AtomicBool,
}

/// The span of calls no subscriber sees.
static NO_SPAN: Span = Span::none();

impl Observed {
    /// No call: nothing to observe.
    pub(crate) const fn none() -> Self {
        Observed(None)
    }

    /// A call a client makes of `service.method`: its span is a child of
    /// the current one.
    #[inline]
    pub(crate) fn client(metrics: &'static MethodMetrics, service: &str, method: &str) -> Self {
        if !metrics.recorded() && !tracing::level_enabled!(tracing::Level::INFO) {
            return Observed(None);
        }
        Observed::client_span(metrics, service, method)
    }

    #[inline(never)]
    fn client_span(metrics: &'static MethodMetrics, service: &str, method: &str) -> Self {
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = Empty,
            otel.kind = "client",
            rpc.system = SYSTEM,
            rpc.service = service,
            rpc.method = method,
            rpc.request.id = Empty,
            server.address = Empty,
            rpc.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            otel.status_message = Empty,
            rpc.duration_ms = Empty,
        );
        if span.is_disabled() && !metrics.recorded() {
            return Observed(None);
        }
        if !span.is_disabled() {
            span.record("otel.name", format!("{service}/{method}"));
        }
        Observed::start(span, metrics, Instant::now())
    }

    /// A call a server has routed to `service.method`, from `peer`, under
    /// `id`, arrived at `now`: observed only if a recorder or a subscriber
    /// may want it (checked here, before anything else is paid).
    #[inline]
    pub(crate) fn server(
        metrics: &'static MethodMetrics,
        service: &str,
        method: &str,
        peer: &PeerAddr,
        id: u64,
        now: Instant,
    ) -> Self {
        if !metrics.recorded() && !tracing::level_enabled!(tracing::Level::INFO) {
            return Observed(None);
        }
        Observed::server_span(metrics, service, method, peer, id, now)
    }

    #[inline(never)]
    fn server_span(
        metrics: &'static MethodMetrics,
        service: &str,
        method: &str,
        peer: &PeerAddr,
        id: u64,
        now: Instant,
    ) -> Self {
        let span = tracing::info_span!(
            "rpc.server",
            otel.name = Empty,
            otel.kind = "server",
            rpc.system = SYSTEM,
            rpc.service = service,
            rpc.method = method,
            rpc.request.id = id,
            network.peer.address = Empty,
            network.peer.port = Empty,
            rpc.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            otel.status_message = Empty,
            rpc.duration_ms = Empty,
        );
        if span.is_disabled() {
            if !metrics.recorded() {
                return Observed(None);
            }
        } else {
            span.record("otel.name", format!("{service}/{method}"));
            match peer {
                PeerAddr::Tcp(addr) => {
                    span.record("network.peer.address", addr.ip().to_string());
                    span.record("network.peer.port", addr.port());
                }
                other => {
                    span.record("network.peer.address", other.to_string());
                }
            }
        }
        Observed::start(span, metrics, now)
    }

    fn start(span: Span, metrics: &'static MethodMetrics, now: Instant) -> Self {
        metrics.started.increment(1);
        metrics.in_flight.increment(1.0);
        Observed(Some(Arc::new(Watched {
            span,
            metrics,
            started: now,
            open: AtomicBool::new(true),
        })))
    }

    /// Another share of the same observation (nothing, for a call nobody
    /// watches).
    #[inline]
    pub(crate) fn share(&self) -> Self {
        Observed(self.0.clone())
    }

    /// The call's span, if a subscriber sees it (for the transport to note
    /// its attempts on).
    #[inline]
    pub(crate) fn enabled_span(&self) -> Option<&Span> {
        self.0
            .as_ref()
            .map(|watched| &watched.span)
            .filter(|span| !span.is_disabled())
    }

    /// Whether anybody watches the call (a span, or a recorder).
    #[inline]
    pub(crate) fn is_watched(&self) -> bool {
        self.0.is_some()
    }

    /// The call's span (a disabled one when no subscriber sees it).
    #[inline]
    pub(crate) fn span(&self) -> &Span {
        match &self.0 {
            Some(watched) => &watched.span,
            None => &NO_SPAN,
        }
    }

    /// The method's handles, when the call is observed.
    #[inline]
    pub(crate) fn metrics(&self) -> Option<&'static MethodMetrics> {
        self.0.as_ref().map(|watched| watched.metrics)
    }

    /// Ends the call with `outcome` (only the first end counts).
    #[inline]
    pub(crate) fn end(&mut self, outcome: Result<(), &RpcError>) {
        if let Some(watched) = &mut self.0 {
            watched.end(outcome::index(outcome), outcome.err());
        }
    }

    /// Ends the call with the outcome at `index` (a cancel, a deadline
    /// that passed), and `error` if there is one to record.
    #[inline]
    pub(crate) fn end_as(&mut self, index: usize, error: Option<&RpcError>) {
        if let Some(watched) = &mut self.0 {
            watched.end(index, error);
        }
    }

    /// Notes what an answer stream yielded: an item (counted), its end, or
    /// the error that ended it.
    #[inline]
    pub(crate) fn saw(&mut self, item: Option<Result<&bytes::Bytes, &RpcError>>) {
        match item {
            Some(Ok(_)) => {
                if let Some(metrics) = self.metrics() {
                    metrics.items_received.increment(1);
                }
            }
            Some(Err(error)) => self.end(Err(error)),
            None => self.end(Ok(())),
        }
    }

    /// Notes the connection an attempt of the call went to, and the id
    /// it went under.
    pub(crate) fn attempt(span: &Span, peer: &PeerAddr, id: u64) {
        if !span.is_disabled() {
            span.record("server.address", tracing::field::display(peer));
            span.record("rpc.request.id", id);
        }
    }
}

impl Watched {
    fn end(&self, index: usize, error: Option<&RpcError>) {
        if !self.open.swap(false, Ordering::AcqRel) {
            return;
        }
        let elapsed = self.started.elapsed();
        let metrics = self.metrics;
        metrics.in_flight.decrement(1.0);
        metrics.duration.record(elapsed.as_secs_f64());
        metrics.finished(index).increment(1);
        let span = &self.span;
        if span.is_disabled() {
            return;
        }
        span.record("rpc.response.status_code", outcome::label(index));
        span.record("rpc.duration_ms", elapsed.as_secs_f64() * 1e3);
        if index != 0 {
            span.record("otel.status_code", "ERROR");
            match error {
                Some(error) => {
                    span.record("error.type", error.kind());
                    span.record("otel.status_message", tracing::field::display(error));
                }
                None => {
                    span.record("error.type", outcome::label(index));
                }
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.end(outcome::CANCELLED, None);
    }
}
