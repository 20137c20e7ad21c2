//! The health service every server answers: check and watch, statuses set
//! by hand, not serving once shutdown begins, and a balanced channel that
//! follows it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Calc, CalculatorClient, CalculatorServer};
use futures::StreamExt;
use rpc_runtime::balance::{Discover, EndpointState};
use rpc_runtime::health::{HealthClient, ServingStatus};
use rpc_runtime::{rpc_service, Channel, Server};

const PROMPT: Duration = Duration::from_secs(5);

async fn calculator() -> Server {
    Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .shutdown_grace(PROMPT)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn check_reports_the_server_its_services_and_unknown_ones() {
    let server = calculator().await;
    let health = HealthClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(
        health.check(String::new()).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health.check("Calculator".into()).await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        health.check("Nope".into()).await.unwrap(),
        ServingStatus::ServiceUnknown
    );
    // The health and reflection services are hosted too, and reflection
    // lists them: they are reported like the others.
    for hosted in ["rpc.health.v1.Health", "rpc.reflection.v1.Reflection"] {
        assert_eq!(
            health.check(hosted.into()).await.unwrap(),
            ServingStatus::Serving,
            "{hosted}"
        );
    }
    server.health().set("Calculator", ServingStatus::NotServing);
    assert_eq!(
        health.check("Calculator".into()).await.unwrap(),
        ServingStatus::NotServing
    );
    server.shutdown().await;
}

/// The next status of `watch`, within `PROMPT`; `None` once it ended.
async fn next(watch: &mut rpc_runtime::Streaming<ServingStatus>) -> Option<ServingStatus> {
    tokio::time::timeout(PROMPT, watch.next())
        .await
        .expect("a status arrives")
        .map(Result::unwrap)
}

#[tokio::test]
async fn watch_sends_the_status_now_then_every_change_and_ends_at_shutdown() {
    let server = calculator().await;
    let health = HealthClient::connect(server.local_addr())
        .await
        .unwrap()
        .without_timeout();
    let mut watch = health.watch("Calculator".into()).await.unwrap();
    assert_eq!(next(&mut watch).await.unwrap(), ServingStatus::Serving);
    server.health().set("Calculator", ServingStatus::NotServing);
    assert_eq!(next(&mut watch).await.unwrap(), ServingStatus::NotServing);
    // Setting the same status again says nothing new.
    server.health().set("Calculator", ServingStatus::NotServing);
    server.health().set("Calculator", ServingStatus::Serving);
    assert_eq!(next(&mut watch).await.unwrap(), ServingStatus::Serving);

    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(next(&mut watch).await.unwrap(), ServingStatus::NotServing);
    assert!(next(&mut watch).await.is_none(), "the stream ends");
    tokio::time::timeout(PROMPT, shutdown)
        .await
        .expect("a watch does not hold up shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_watch_of_an_unknown_service_says_so_and_sees_it_appear() {
    let server = calculator().await;
    let health = HealthClient::connect(server.local_addr())
        .await
        .unwrap()
        .without_timeout();
    let mut watch = health.watch("Later".into()).await.unwrap();
    assert_eq!(
        watch.next().await.unwrap().unwrap(),
        ServingStatus::ServiceUnknown
    );
    server.health().set("Later", ServingStatus::Serving);
    assert_eq!(watch.next().await.unwrap().unwrap(), ServingStatus::Serving);
    server.shutdown().await;
}

/// Waits until `channel` says `endpoint` is in a state `wanted` accepts.
async fn until_state(
    channel: &rpc_runtime::balance::BalancedChannel,
    endpoint: &str,
    wanted: impl Fn(&EndpointState) -> bool,
) {
    tokio::time::timeout(PROMPT, async {
        loop {
            let states = channel.endpoints();
            if states.iter().any(|(key, s)| key == endpoint && wanted(s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{endpoint} never got there: {:?}", channel.endpoints()));
}

#[rpc_service]
trait Napper {
    /// Returns after `ms` milliseconds.
    async fn nap(&self, ms: u64);
    /// Returns `x`, and counts the call.
    async fn echo(&self, x: u64) -> u64;
}

struct NapperImpl(Arc<AtomicUsize>);

impl Napper for NapperImpl {
    async fn nap(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    async fn echo(&self, x: u64) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst);
        x
    }
}

async fn napper(calls: &Arc<AtomicUsize>) -> Server {
    Server::builder()
        .add_service(NapperServer::new(NapperImpl(Arc::clone(calls))))
        .shutdown_grace(PROMPT)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_balanced_channel_sends_nothing_to_a_server_that_says_it_is_not_serving() {
    let (calls_a, calls_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, b) = (napper(&calls_a).await, napper(&calls_b).await);
    let (key_a, key_b) = (a.local_addr().to_string(), b.local_addr().to_string());
    let channel = Channel::builder()
        .timeout(PROMPT)
        .balance(Discover::fixed([key_a.clone(), key_b.clone()]));
    let client = NapperClient::new(channel.clone());
    client.echo(1).await.unwrap();
    until_state(&channel, &key_b, EndpointState::is_ready).await;

    b.health().set("", ServingStatus::NotServing);
    until_state(&channel, &key_b, |s| matches!(s, EndpointState::Draining)).await;
    let before = calls_b.load(Ordering::SeqCst);
    for i in 0..200 {
        client.echo(i).await.unwrap();
    }
    assert_eq!(calls_b.load(Ordering::SeqCst), before, "nothing reached b");
    let targeted = NapperClient::new(channel.endpoint(&key_b));
    assert_eq!(
        targeted.echo(4).await.unwrap(),
        4,
        "targeted calls still reach it"
    );

    b.health().set("", ServingStatus::Serving);
    until_state(&channel, &key_b, EndpointState::is_ready).await;
    // Calls from several tasks at once (one caller alone goes wherever
    // answered fastest last).
    let before = calls_b.load(Ordering::SeqCst);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        tasks.spawn(async move {
            for i in 0..50 {
                client.echo(i).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert!(
        calls_b.load(Ordering::SeqCst) > before,
        "b takes calls again"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_draining_server_gets_no_new_calls_while_its_last_ones_finish() {
    let (calls_a, calls_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, b) = (napper(&calls_a).await, napper(&calls_b).await);
    let key_b = b.local_addr().to_string();
    let channel = Channel::builder()
        .timeout(PROMPT)
        .balance(Discover::fixed([a.local_addr().to_string(), key_b.clone()]));
    let client = NapperClient::new(channel.clone());
    client.echo(1).await.unwrap();
    until_state(&channel, &key_b, EndpointState::is_ready).await;
    // A long call on `b` keeps its connection open while it drains.
    let on_b = NapperClient::new(channel.endpoint(&key_b));
    let nap = tokio::spawn(async move { on_b.nap(400).await });
    tokio::time::timeout(PROMPT, async {
        while b.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the nap starts on b (beside its health watch)");
    let shutdown = tokio::spawn(b.shutdown());
    until_state(&channel, &key_b, |s| matches!(s, EndpointState::Draining)).await;
    let before = calls_b.load(Ordering::SeqCst);
    for i in 0..100 {
        assert_eq!(client.echo(i).await.unwrap(), i);
    }
    assert_eq!(
        calls_b.load(Ordering::SeqCst),
        before,
        "nothing new reached b"
    );
    nap.await.unwrap().unwrap();
    shutdown.await.unwrap();
    a.shutdown().await;
}

#[tokio::test]
async fn without_health_checks_a_not_serving_server_still_takes_calls() {
    let server = calculator().await;
    server.health().set("", ServingStatus::NotServing);
    let channel = Channel::builder()
        .timeout(PROMPT)
        .health_checks(false)
        .balance(Discover::fixed([server.local_addr().to_string()]));
    let client = CalculatorClient::new(channel);
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    server.shutdown().await;
}
