//! Trace context across two hops (feature `opentelemetry`): the test's
//! span calls a front service over TCP, whose handler calls a back service
//! over NATS (a real `nats-server`); every span, on every side, is in the
//! test's trace, each server span the child of its caller's span.
//!
//! One test: the tracer and subscriber are process-wide.

use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rpc_runtime::nats::{self, NatsChannel, ServeOptions};
use rpc_runtime::{rpc_service, CallContext, Channel, Server};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

mod common;

use common::nats::NatsProcess;

#[rpc_service(name = "otel.Front")]
trait Front {
    /// `hello` of the back service, and the `traceparent` it saw.
    async fn relay(&self, name: String) -> (String, Option<String>);
}

#[rpc_service(name = "otel.Back")]
trait Back {
    /// A greeting, and the `traceparent` this call carried.
    async fn hello(&self, name: String) -> (String, Option<String>);
}

struct Relay(BackClient<NatsChannel>);

impl Front for Relay {
    async fn relay(&self, name: String) -> (String, Option<String>) {
        self.0.hello(name).await.unwrap_or_default()
    }
}

struct Greeter;

impl Back for Greeter {
    async fn hello(&self, name: String) -> (String, Option<String>) {
        let traceparent = CallContext::current().and_then(|cx| {
            cx.metadata()
                .get("traceparent")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
        (format!("Hello, {name}!"), traceparent)
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span named {name}: {:?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

#[tokio::test]
async fn the_trace_survives_two_hops_over_tcp_and_nats() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rpc-tests"));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the first subscriber");

    let broker = NatsProcess::start();
    let connect = || async { async_nats::connect(broker.url()).await.expect("connect") };
    let back = nats::serve(
        connect().await,
        Server::builder().add_service(BackServer::new(Greeter)),
        ServeOptions::new(),
    )
    .await
    .expect("serve over NATS");
    let front = Server::builder()
        .add_service(FrontServer::new(Relay(BackClient::new(NatsChannel::new(
            connect().await,
        )))))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client = FrontClient::new(Channel::connect(front.local_addr()).await.expect("connect"));

    let root = tracing::info_span!("checkout");
    // A call is a child of the span current where it is made.
    let (greeting, traceparent) = async { client.relay("Ada".into()).await }
        .instrument(root.clone())
        .await
        .expect("relay");
    drop(root);
    assert_eq!(greeting, "Hello, Ada!");
    front.shutdown().await;
    back.shutdown().await;
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("the spans");
    let checkout = named(&spans, "checkout");
    let trace: TraceId = checkout.span_context.trace_id();
    for span in &spans {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "{} is in the trace",
            span.name
        );
    }
    let by_kind = |name: &str, kind: SpanKind| {
        let found: Vec<_> = spans
            .iter()
            .filter(|s| s.name == name && s.span_kind == kind)
            .collect();
        assert_eq!(found.len(), 1, "{name} {kind:?}: {:?}", names(&spans));
        found[0]
    };
    let front_client = by_kind("otel.Front/relay", SpanKind::Client);
    let front_server = by_kind("otel.Front/relay", SpanKind::Server);
    let back_client = by_kind("otel.Back/hello", SpanKind::Client);
    let back_server = by_kind("otel.Back/hello", SpanKind::Server);
    let id = |s: &SpanData| s.span_context.span_id();
    assert_eq!(front_client.parent_span_id, id(checkout));
    assert_eq!(front_server.parent_span_id, id(front_client));
    assert!(front_server.parent_span_is_remote, "joined from the wire");
    assert_eq!(back_client.parent_span_id, id(front_server));
    assert_eq!(back_server.parent_span_id, id(back_client));
    assert!(back_server.parent_span_is_remote);
    assert_ne!(id(back_server), SpanId::INVALID);
    // What crossed the second hop is W3C's format: version, trace, span, flags.
    let traceparent = traceparent.expect("the back service saw a traceparent");
    assert_eq!(
        traceparent,
        format!("00-{trace}-{}-01", id(back_client)),
        "the caller's span, as W3C traceparent"
    );
}
