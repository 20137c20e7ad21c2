//! A span per call on both sides: fields after OpenTelemetry's RPC
//! conventions, outcomes and errors recorded, handlers' events and calls
//! inside the server's span, one span for a whole stream. Read by a
//! subscriber layer that keeps every span's fields.
//!
//! One test: the subscriber is process-wide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rpc_runtime::{rpc_service, Channel, RpcError, Server, Status, StreamExt, Streaming};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[rpc_service(name = "traced.Greeter")]
trait Greeter {
    /// Says hello, and logs that it did.
    async fn hello(&self, name: String) -> String;
    /// Refuses.
    async fn refuse(&self) -> Result<(), Status>;
    /// `0..n`.
    async fn count(&self, n: u32) -> Streaming<u32>;
    /// `hello` of the next greeter.
    async fn relay(&self, name: String) -> String;
}

struct Polite {
    next: Option<GreeterClient>,
}

impl Greeter for Polite {
    async fn hello(&self, name: String) -> String {
        tracing::info!(marker = "in hello", "greeting");
        format!("Hello, {name}!")
    }
    async fn refuse(&self) -> Result<(), Status> {
        Err(Status::permission_denied("not you"))
    }
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
    async fn relay(&self, name: String) -> String {
        match &self.next {
            Some(next) => next.hello(name).await.unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// One span as the layer saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<&'static str, String>,
    closed: bool,
    /// The `marker` of each event inside it.
    events: Vec<String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<HashMap<u64, Seen>>>);

struct Fields<'a>(&'a mut HashMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.id().into_u64()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().unwrap().insert(id.into_u64(), seen);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(seen) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        if let (Some(marker), Some(span)) = (fields.get("marker"), ctx.event_span(event)) {
            if let Some(seen) = self.0.lock().unwrap().get_mut(&span.id().into_u64()) {
                seen.events.push(marker.clone());
            }
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(seen) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            seen.closed = true;
        }
    }
}

impl Capture {
    /// The spans of calls of `method`, by kind (`rpc.client` or `rpc.server`).
    fn of(&self, name: &str, method: &str) -> Vec<(u64, Seen)> {
        let spans = self.0.lock().unwrap();
        let mut found: Vec<_> = spans
            .iter()
            .filter(|(_, seen)| {
                seen.name == name
                    && seen.fields.get("rpc.method").map(String::as_str) == Some(method)
            })
            .map(|(id, seen)| (*id, seen.clone()))
            .collect();
        found.sort_by_key(|(id, _)| *id);
        found
    }

    fn one(&self, name: &str, method: &str) -> (u64, Seen) {
        let mut found = self.of(name, method);
        assert_eq!(found.len(), 1, "one {name} span of {method}: {found:?}");
        found.remove(0)
    }
}

async fn serve(next: Option<GreeterClient>) -> Server {
    Server::builder()
        .add_service(GreeterServer::new(Polite { next }))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

#[tokio::test]
async fn every_call_is_a_span_on_each_side() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");

    let last = serve(None).await;
    let next = GreeterClient::new(Channel::connect(last.local_addr()).await.expect("connect"));
    let first = serve(Some(next)).await;
    let client = GreeterClient::new(Channel::connect(first.local_addr()).await.expect("connect"));

    assert_eq!(
        client.hello("Ada".into()).await.expect("hello"),
        "Hello, Ada!"
    );
    assert!(matches!(client.refuse().await, Err(RpcError::Status(_))));
    let mut items = client.count(3).await.expect("count");
    let mut taken = 0;
    while let Some(item) = items.next().await {
        item.expect("an item");
        taken += 1;
        // One span for the whole stream: open until its end.
        let (_, span) = capture.one("rpc.client", "count");
        assert_eq!(span.closed, taken > 3, "closed only after the end");
    }
    drop(items);
    assert_eq!(
        client.relay("Bob".into()).await.expect("relay"),
        "Hello, Bob!"
    );
    let (first_addr, last_addr) = (first.local_addr(), last.local_addr());
    first.shutdown().await;
    last.shutdown().await;

    // A unary call, seen from both ends (the test's own: no parent).
    let (_, call) = capture
        .of("rpc.client", "hello")
        .into_iter()
        .find(|(_, span)| span.parent.is_none())
        .expect("the test's call of hello");
    let addr = first_addr.to_string();
    for (field, value) in [
        ("otel.kind", "client"),
        ("otel.name", "traced.Greeter/hello"),
        ("rpc.system", "rpc-runtime"),
        ("rpc.service", "traced.Greeter"),
        ("rpc.method", "hello"),
        ("server.address", addr.as_str()),
        ("rpc.response.status_code", "OK"),
    ] {
        assert_eq!(
            call.fields.get(field).map(String::as_str),
            Some(value),
            "{field}: {call:?}"
        );
    }
    assert!(call.closed);
    assert!(call.fields.contains_key("rpc.duration_ms"));
    assert!(!call.fields.contains_key("error.type"));
    let served: Vec<_> = capture
        .of("rpc.server", "hello")
        .into_iter()
        .filter(|(_, s)| s.fields.get("rpc.request.id") == call.fields.get("rpc.request.id"))
        .collect();
    let (_, served) = served
        .first()
        .cloned()
        .expect("the server's span of the call");
    assert_eq!(
        served.fields.get("otel.kind").map(String::as_str),
        Some("server")
    );
    assert_eq!(
        served
            .fields
            .get("network.peer.address")
            .map(String::as_str),
        Some("127.0.0.1")
    );
    assert!(served.fields.contains_key("network.peer.port"));
    assert_eq!(
        served
            .fields
            .get("rpc.response.status_code")
            .map(String::as_str),
        Some("OK")
    );
    assert_eq!(
        served.events,
        ["in hello"],
        "the handler's event is inside its span"
    );

    // A failure, recorded on both spans.
    for kind in ["rpc.client", "rpc.server"] {
        let (_, refused) = capture.one(kind, "refuse");
        for (field, value) in [
            ("rpc.response.status_code", "PERMISSION_DENIED"),
            ("error.type", "Status"),
            ("otel.status_code", "ERROR"),
        ] {
            assert_eq!(
                refused.fields.get(field).map(String::as_str),
                Some(value),
                "{kind} {field}"
            );
        }
        assert!(refused.fields["otel.status_message"].contains("not you"));
    }

    // The stream: one span each side, ended OK.
    for kind in ["rpc.client", "rpc.server"] {
        let (_, stream) = capture.one(kind, "count");
        assert_eq!(stream.fields["rpc.response.status_code"], "OK", "{kind}");
        assert!(stream.closed);
    }

    // A handler's own call is inside the span of the call it serves.
    let (relay_id, _) = capture.one("rpc.server", "relay");
    let nested = capture.of("rpc.client", "hello");
    assert_eq!(nested.len(), 2, "the test's call and the relayed one");
    let (_, inner) = nested.last().cloned().expect("the relayed call");
    assert_eq!(inner.parent, Some(relay_id));
    assert_eq!(
        inner.fields.get("server.address").map(String::as_str),
        Some(last_addr.to_string().as_str())
    );
}
