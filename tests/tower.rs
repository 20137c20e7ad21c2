//! tower on both sides, with tower's own layers over real sockets: a
//! generated client over a tower stack (timeout, concurrency limit, load
//! shedding, retries with a budget that copy the raw call), and a server
//! whose dispatch is wrapped in layers (concurrency limit, timeout, an
//! async authentication layer).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rpc_runtime::call::{Invoke, RawCall, RawReply};
use rpc_runtime::service::{Body, Request};
use rpc_runtime::tower::{BoxError, CallService, RetryCalls, TowerChannel};
use rpc_runtime::{
    rpc_service, CallOptions, Channel, Code, RpcError, Server, ServerBuilder, Status, StreamExt,
    Streaming,
};
use tokio::sync::Notify;

/// Bound on every wait in these tests.
const PROMPT: Duration = Duration::from_secs(5);

#[rpc_service(name = "towered.Work")]
trait Work {
    /// `n + 1`, recorded as run.
    async fn bump(&self, n: u32) -> u32;
    /// The same, safe to send again.
    #[rpc(idempotent)]
    async fn fetch(&self, n: u32) -> u32;
    /// Waits until released (or `PROMPT`), counting how many wait at once.
    async fn hold(&self) -> usize;
    /// `0..n`.
    async fn count(&self, n: u32) -> Streaming<u32>;
}

#[derive(Default)]
struct Seen {
    runs: AtomicUsize,
    holding: AtomicUsize,
    most: AtomicUsize,
    release: Notify,
}

#[derive(Clone, Default)]
struct Worker(Arc<Seen>);

impl Work for Worker {
    async fn bump(&self, n: u32) -> u32 {
        self.0.runs.fetch_add(1, Ordering::SeqCst);
        n + 1
    }
    async fn fetch(&self, n: u32) -> u32 {
        self.0.runs.fetch_add(1, Ordering::SeqCst);
        n + 1
    }
    async fn hold(&self) -> usize {
        let now = self.0.holding.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most.fetch_max(now, Ordering::SeqCst);
        let _ = tokio::time::timeout(PROMPT, self.0.release.notified()).await;
        self.0.holding.fetch_sub(1, Ordering::SeqCst);
        now
    }
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
}

async fn serve(builder: ServerBuilder, worker: &Worker) -> Server {
    builder
        .add_service(WorkServer::new(worker.clone()))
        .bind("127.0.0.1:0")
        .await
        .expect("bind")
}

async fn channel(server: &Server) -> Channel {
    Channel::connect(server.local_addr())
        .await
        .expect("connect")
}

/// Waits (bounded) until `seen` has `n` calls holding.
async fn holding(seen: &Seen, n: usize) {
    tokio::time::timeout(PROMPT, async {
        while seen.holding.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the calls arrived");
}

#[tokio::test]
async fn a_generated_client_runs_over_a_tower_stack() {
    let worker = Worker::default();
    let server = serve(Server::builder(), &worker).await;
    let stack = tower::ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .service(CallService::new(channel(&server).await));
    let client = WorkClient::new(TowerChannel::new(stack));
    assert_eq!(client.bump(1).await.expect("bump"), 2);
    let items: Vec<u32> = client
        .count(3)
        .await
        .expect("a stream through the stack")
        .map(|item| item.expect("item"))
        .collect()
        .await;
    assert_eq!(items, [0, 1, 2]);
    // A channel is a tower service of raw calls itself.
    let direct = WorkClient::new(TowerChannel::new(
        tower::ServiceBuilder::new()
            .concurrency_limit(4)
            .service(channel(&server).await),
    ));
    assert_eq!(direct.bump(2).await.expect("over the channel itself"), 3);
    // The stack's timeout, as the caller sees it.
    let late = client.hold().await;
    assert!(
        matches!(
            late,
            Err(RpcError::Layer {
                code: Code::DEADLINE_EXCEEDED,
                ..
            })
        ),
        "{late:?}"
    );
    worker.0.release.notify_waiters();
    server.shutdown().await;
}

#[tokio::test]
async fn a_concurrency_limit_and_load_shedding_on_the_client() {
    let worker = Worker::default();
    let server = serve(Server::builder(), &worker).await;
    let shared = channel(&server).await;
    // One at a time: a second call waits for the first.
    let limited = WorkClient::new(TowerChannel::new(
        tower::ServiceBuilder::new()
            .concurrency_limit(1)
            .service(CallService::new(shared.clone())),
    ));
    let first = tokio::spawn({
        let client = limited.clone();
        async move { client.hold().await }
    });
    holding(&worker.0, 1).await;
    let second = tokio::spawn({
        let client = limited.clone();
        async move { client.hold().await }
    });
    // The second has not reached the server while the first holds.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(worker.0.holding.load(Ordering::SeqCst), 1);
    // Shedding instead of waiting: over the limit fails at once.
    let shedding = WorkClient::new(TowerChannel::new(
        tower::ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(1)
            .service(CallService::new(shared)),
    ));
    let held = tokio::spawn({
        let client = shedding.clone();
        async move { client.hold().await }
    });
    holding(&worker.0, 2).await;
    let shed = shedding.bump(1).await;
    assert!(
        matches!(
            shed,
            Err(RpcError::Layer {
                code: Code::UNAVAILABLE,
                ..
            })
        ),
        "{shed:?}"
    );
    for _ in 0..3 {
        worker.0.release.notify_waiters();
        tokio::task::yield_now().await;
    }
    let released =
        |result: Result<Result<usize, RpcError>, _>| result.expect("joined").expect("held");
    assert_eq!(released(first.await), 1);
    tokio::time::timeout(PROMPT, async {
        loop {
            worker.0.release.notify_waiters();
            if second.is_finished() && held.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the held calls finished");
    assert!(second.await.expect("joined").is_ok());
    assert!(held.await.expect("joined").is_ok());
    server.shutdown().await;
}

/// A carrier that fails the first `failures` calls with `error` before
/// they are sent, then lets `inner` carry them: a stand-in for an outage.
#[derive(Clone)]
struct Flaky<C> {
    inner: C,
    failures: Arc<AtomicUsize>,
    error: RpcError,
    attempts: Arc<AtomicUsize>,
}

impl<C: Invoke> Invoke for Flaky<C> {
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let error = self.error.clone();
        let inner = self.inner.clone();
        async move {
            if fail {
                return Err(error);
            }
            inner.invoke(call).await
        }
    }
}

fn flaky<C: Invoke>(inner: C, failures: usize, error: RpcError) -> (Flaky<C>, Arc<AtomicUsize>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        inner,
        failures: Arc::new(AtomicUsize::new(failures)),
        error,
        attempts: Arc::clone(&attempts),
    };
    (flaky, attempts)
}

#[tokio::test]
async fn tower_retry_copies_raw_calls_and_retries_only_what_is_safe() {
    let worker = Worker::default();
    let server = serve(Server::builder(), &worker).await;
    let channel = channel(&server).await;
    let retried = |carrier| {
        TowerChannel::new(
            tower::ServiceBuilder::new()
                .retry(RetryCalls::new(3, Duration::from_secs(10), 10, 0.5))
                .service(CallService::new(carrier)),
        )
    };

    // Not run anywhere: any call goes again; it runs once, on the server.
    let busy = RpcError::Unavailable {
        message: "no server ready".into(),
    };
    let (carrier, attempts) = flaky(channel.clone(), 2, busy);
    let client = WorkClient::new(retried(carrier));
    assert_eq!(client.bump(41).await.expect("retried"), 42);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "two failures, then through"
    );
    assert_eq!(worker.0.runs.load(Ordering::SeqCst), 1);

    // A broken connection: only an idempotent call may have run twice.
    let lost = RpcError::ConnectionLost {
        reason: "reset".into(),
    };
    let (carrier, attempts) = flaky(channel.clone(), 1, lost.clone());
    let client = WorkClient::new(retried(carrier));
    assert!(matches!(
        client.bump(1).await,
        Err(RpcError::ConnectionLost { .. })
    ));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "not idempotent: not sent again"
    );
    let (carrier, attempts) = flaky(channel.clone(), 1, lost);
    let client = WorkClient::new(retried(carrier));
    assert_eq!(client.fetch(1).await.expect("idempotent, retried"), 2);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    // Out of attempts: the last error.
    let busy = RpcError::Unavailable {
        message: "still down".into(),
    };
    let (carrier, attempts) = flaky(channel, 10, busy);
    let client = WorkClient::new(retried(carrier));
    assert!(matches!(
        client.bump(1).await,
        Err(RpcError::Unavailable { .. })
    ));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        4,
        "the call and three retries"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_servers_layers_limit_concurrency_and_time_out_its_calls() {
    let worker = Worker::default();
    let server = serve(
        Server::builder()
            .layer(tower::limit::ConcurrencyLimitLayer::new(1))
            .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(
                200,
            ))),
        &worker,
    )
    .await;
    let client = WorkClient::new(channel(&server).await);
    // Over every connection: one call runs at a time.
    let other = WorkClient::new(channel(&server).await);
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.hold().await }
    });
    holding(&worker.0, 1).await;
    let second = tokio::spawn(async move { other.bump(1).await });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        worker.0.runs.load(Ordering::SeqCst),
        0,
        "waits for the limit"
    );
    // The server's timeout ends the held call, as DEADLINE_EXCEEDED.
    let timed_out = first.await.expect("joined");
    match timed_out {
        Err(RpcError::Status(status)) => assert_eq!(status.code(), Code::DEADLINE_EXCEEDED),
        other => panic!("{other:?}"),
    }
    assert_eq!(second.await.expect("joined").expect("ran after"), 2);
    assert_eq!(worker.0.most.load(Ordering::SeqCst), 1);
    // The health service is behind the layers too, and answers.
    let health = rpc_runtime::health::HealthClient::new(channel(&server).await);
    assert!(health.check(String::new()).await.is_ok());
    server.shutdown().await;
}

/// An async check of a call's credentials, as a tower layer: it looks the
/// token up (here: waits a moment), then lets the call through or fails it.
#[derive(Clone)]
struct Authenticate<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Authenticate<S>
where
    S: tower::Service<Request, Response = Body, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Body;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Body, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let token = request
            .context()
            .metadata()
            .get("authorization")
            .and_then(|value| value.as_str())
            .map(str::to_owned);
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if token.as_deref() != Some("Bearer open-sesame") {
                return Err(Box::new(Status::unauthenticated("who are you?")) as BoxError);
            }
            inner.call(request).await
        })
    }
}

#[tokio::test]
async fn an_async_authentication_layer_on_the_server() {
    let worker = Worker::default();
    let layer = tower::layer::layer_fn(|inner| Authenticate { inner });
    let server = serve(Server::builder().layer(layer), &worker).await;
    let anonymous = WorkClient::new(channel(&server).await);
    match anonymous.bump(1).await {
        Err(RpcError::Status(status)) => {
            assert_eq!(status.code(), Code::UNAUTHENTICATED);
            assert_eq!(status.message(), "who are you?");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        worker.0.runs.load(Ordering::SeqCst),
        0,
        "never reached the handler"
    );
    let known = WorkClient::new(channel(&server).await)
        .with_options(CallOptions::new().metadata("authorization", "Bearer open-sesame"));
    assert_eq!(known.bump(1).await.expect("let through"), 2);
    server.shutdown().await;
}
