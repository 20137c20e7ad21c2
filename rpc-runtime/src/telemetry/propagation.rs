//! The caller's trace context in the call's metadata, as W3C
//! `traceparent` and `tracestate` (feature `opentelemetry`): injected from
//! the client's span, extracted into the server's as its parent.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::wire::metadata::{Metadata, MetadataValue};

/// `metadata` with the trace context of `span` added, when it has one.
pub(crate) fn inject(span: &Span, metadata: &Metadata) -> Option<Metadata> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut entries = Entries(Vec::new());
    TraceContextPropagator::new().inject_context(&context, &mut entries);
    if entries.0.is_empty() {
        return None;
    }
    // One new block, encoded once, for the call's entries and these.
    let mut all: Vec<(String, MetadataValue)> = metadata
        .iter()
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect();
    all.extend(
        entries
            .0
            .into_iter()
            .map(|(key, value)| (key, value.into())),
    );
    Some(Metadata::from_entries(all))
}

/// Makes the trace context in `metadata`, if any, the parent of `span`.
pub(crate) fn extract(span: &Span, metadata: Option<&Metadata>) {
    let Some(metadata) = metadata else { return };
    if span.is_disabled() || metadata.get("traceparent").is_none() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Received(metadata));
    if parent.span().span_context().is_valid() {
        // Fails only when the span is not one OpenTelemetry sees.
        let _ = span.set_parent(parent);
    }
}

struct Entries(Vec<(String, String)>);

impl Injector for Entries {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

struct Received<'a>(&'a Metadata);

impl Extractor for Received<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(key, _)| key).collect()
    }
}
