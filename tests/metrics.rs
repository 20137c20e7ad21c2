//! Metrics through the `metrics` facade: a debugging recorder installed
//! before any call, known calls made over real sockets, and the counts,
//! gauges and histograms both sides recorded for them.
//!
//! One test: the recorder is process-wide.

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rpc_runtime::telemetry::names;
use rpc_runtime::{rpc_service, Channel, RpcError, Server, Status, StreamExt, Streaming};

mod common;

#[rpc_service(name = "metered.Meter")]
trait Meter {
    /// Doubles `n`.
    async fn double(&self, n: u32) -> u32;
    /// Always fails with `NOT_FOUND`.
    async fn missing(&self) -> Result<(), Status>;
    /// Takes longer than its callers wait.
    async fn slow(&self);
    /// `0..n`.
    async fn count(&self, n: u32) -> Streaming<u32>;
    /// The sum of `items`.
    async fn sum(&self, items: Streaming<u32>) -> u32;
}

struct Meters;

impl Meter for Meters {
    async fn double(&self, n: u32) -> u32 {
        n * 2
    }
    async fn missing(&self) -> Result<(), Status> {
        Err(Status::not_found("nothing here"))
    }
    async fn slow(&self) {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
    async fn sum(&self, mut items: Streaming<u32>) -> u32 {
        let mut total = 0;
        while let Some(Ok(item)) = items.next().await {
            total += item;
        }
        total
    }
}

/// A metric's identity: its name and its labels, sorted.
type Id = (String, Vec<(String, String)>);

fn id(name: &str, labels: &[(&str, &str)]) -> Id {
    let mut labels: Vec<_> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

#[tokio::test]
async fn each_side_counts_its_calls_by_method_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the first recorder of this process");

    let server = Server::builder()
        .add_service(MeterServer::new(Meters))
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let channel = Channel::connect(server.local_addr())
        .await
        .expect("connect");
    let client = MeterClient::new(channel);

    for n in 1..=3 {
        assert_eq!(client.double(n).await.expect("double"), n * 2);
    }
    assert!(matches!(client.missing().await, Err(RpcError::Status(_))));
    let hasty = client.clone().with_timeout(Duration::from_millis(50));
    assert!(matches!(
        hasty.slow().await,
        Err(RpcError::DeadlineExceeded { .. })
    ));
    let counted: Vec<u32> = client
        .count(5)
        .await
        .expect("count")
        .map(|item| item.expect("an item"))
        .collect()
        .await;
    assert_eq!(counted, [0, 1, 2, 3, 4]);
    let sum = client
        .sum(Streaming::from_iter([1, 2, 3, 4]))
        .await
        .expect("sum");
    assert_eq!(sum, 10);
    // The server ends the slow call at its deadline, after the caller.
    common::until_idle(&server).await;

    let mut seen: HashMap<Id, DebugValue> = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = key.into_parts();
        let labels = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect::<Vec<_>>();
        let allowed = [names::SERVICE, names::METHOD, names::CODE, names::TRANSPORT];
        for (label, _) in &labels {
            assert!(
                allowed.contains(&label.as_str()),
                "{} has an unbounded label {label}",
                key.name()
            );
        }
        let mut labels = labels;
        labels.sort();
        seen.insert((key.name().to_owned(), labels), value);
    }
    let counter = |name: &str, labels: &[(&str, &str)]| match seen.get(&id(name, labels)) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    };
    let gauge = |name: &str, labels: &[(&str, &str)]| match seen.get(&id(name, labels)) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("{name} {labels:?}: {other:?}"),
    };
    let samples = |name: &str, labels: &[(&str, &str)]| match seen.get(&id(name, labels)) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{name} {labels:?}: {other:?}"),
    };
    let method = |m: &'static str| [("service", "metered.Meter"), ("method", m)];
    let with_code = |m: &'static str, code: &'static str| {
        [("service", "metered.Meter"), ("method", m), ("code", code)]
    };

    let sides = [
        (
            names::CLIENT_CALLS_STARTED,
            names::CLIENT_CALLS_FINISHED,
            names::CLIENT_CALLS_IN_FLIGHT,
            names::CLIENT_CALL_DURATION,
        ),
        (
            names::SERVER_CALLS_STARTED,
            names::SERVER_CALLS_FINISHED,
            names::SERVER_CALLS_IN_FLIGHT,
            names::SERVER_CALL_DURATION,
        ),
    ];
    for (started, finished, in_flight, duration) in sides {
        assert_eq!(counter(started, &method("double")), 3, "{started}");
        assert_eq!(
            counter(finished, &with_code("double", "OK")),
            3,
            "{finished}"
        );
        assert_eq!(samples(duration, &method("double")), 3, "{duration}");
        assert_eq!(counter(finished, &with_code("missing", "NOT_FOUND")), 1);
        assert_eq!(
            counter(finished, &with_code("slow", "DEADLINE_EXCEEDED")),
            1,
            "{finished}"
        );
        assert_eq!(counter(finished, &with_code("count", "OK")), 1);
        assert_eq!(counter(finished, &with_code("sum", "OK")), 1);
        for m in ["double", "missing", "slow", "count", "sum"] {
            assert_eq!(gauge(in_flight, &method(m)), 0.0, "{in_flight} {m}");
        }
    }
    assert_eq!(
        counter(names::CLIENT_STREAM_ITEMS_RECEIVED, &method("count")),
        5
    );
    assert_eq!(
        counter(names::SERVER_STREAM_ITEMS_SENT, &method("count")),
        5
    );
    assert_eq!(counter(names::CLIENT_STREAM_ITEMS_SENT, &method("sum")), 4);
    assert_eq!(
        counter(names::SERVER_STREAM_ITEMS_RECEIVED, &method("sum")),
        4
    );
    assert_eq!(gauge(names::CLIENT_CONNECTIONS, &[]), 1.0);
    assert_eq!(gauge(names::SERVER_CONNECTIONS, &[]), 1.0);
    let sent = counter(names::BYTES_SENT, &[("transport", "stream")]);
    let received = counter(names::BYTES_RECEIVED, &[("transport", "stream")]);
    assert!(
        sent > 0 && received > 0 && received <= sent,
        "{sent} {received}"
    );
    server.shutdown().await;
}
