//! One call as seen by traces and metrics, on either side: its span, its
//! method's handles, when it started; ended once, with its outcome.

use std::time::Instant;

use tracing::field::Empty;
use tracing::Span;

use crate::error::RpcError;
use crate::transport::PeerAddr;

use super::method::{self, MethodMetrics};
use super::outcome;

/// `rpc.system` on every span.
pub(crate) const SYSTEM: &str = "rpc-runtime";

/// A call being observed. Dropped before [`end`](Self::end) (its caller
/// gave up, its task was stopped), it ends as `CANCELLED`.
pub(crate) struct Observed {
    span: Span,
    metrics: &'static MethodMetrics,
    started: Instant,
    open: bool,
}

impl Observed {
    /// A call a client makes of `service.method`: its span is a child of
    /// the current one.
    #[inline]
    #[allow(clippy::ptr_arg)] // see `method::client`
    pub(crate) fn client(
        service: &std::borrow::Cow<'static, str>,
        method: &std::borrow::Cow<'static, str>,
    ) -> Self {
        let span = tracing::info_span!(
            "rpc.client",
            otel.name = Empty,
            otel.kind = "client",
            rpc.system = SYSTEM,
            rpc.service = &**service,
            rpc.method = &**method,
            rpc.request.id = Empty,
            server.address = Empty,
            rpc.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            otel.status_message = Empty,
            rpc.duration_ms = Empty,
        );
        if !span.is_disabled() {
            span.record("otel.name", format!("{service}/{method}"));
        }
        Observed::start(span, method::client(service, method))
    }

    /// A call a server has routed to `service.method`, from `peer`, under
    /// `id`.
    #[inline]
    pub(crate) fn server(
        metrics: &'static MethodMetrics,
        service: &str,
        method: &str,
        peer: &PeerAddr,
        id: u64,
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
        if !span.is_disabled() {
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
        Observed::start(span, metrics)
    }

    #[inline]
    fn start(span: Span, metrics: &'static MethodMetrics) -> Self {
        metrics.started.increment(1);
        metrics.in_flight.increment(1.0);
        Observed {
            span,
            metrics,
            started: Instant::now(),
            open: true,
        }
    }

    /// The call's span.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// The method's handles.
    pub(crate) fn metrics(&self) -> &'static MethodMetrics {
        self.metrics
    }

    /// Ends the call with `outcome` (only the first end counts).
    pub(crate) fn end(&mut self, outcome: Result<(), &RpcError>) {
        self.end_as(outcome::index(outcome), outcome.err());
    }

    /// Ends the call with the outcome at `index` (a cancel, a deadline
    /// that passed), and `error` if there is one to record.
    pub(crate) fn end_as(&mut self, index: usize, error: Option<&RpcError>) {
        if !std::mem::replace(&mut self.open, false) {
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

    /// Notes what an answer stream yielded: an item (counted), its end, or
    /// the error that ended it.
    #[inline]
    pub(crate) fn saw(&mut self, item: Option<Result<&bytes::Bytes, &RpcError>>) {
        match item {
            Some(Ok(_)) => self.metrics.items_received.increment(1),
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

impl Drop for Observed {
    fn drop(&mut self) {
        if self.open {
            self.end_as(outcome::CANCELLED, None);
        }
    }
}
