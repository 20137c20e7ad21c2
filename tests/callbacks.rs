//! Calls in both directions: a client serves a service on the connection it
//! dialed, and the server's handlers call it back through that connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::{rpc_service, transport::memory, Channel, RpcError, Server, Streaming};
use tokio::sync::Semaphore;

/// What a client offers the server.
#[rpc_service]
trait Notifier {
    /// Doubles `n`.
    async fn double(&self, n: u64) -> u64;
    /// Never finishes on its own.
    async fn slow(&self) -> u64;
    /// The numbers below `n`.
    async fn numbers(&self, n: u32) -> Streaming<u32>;
    /// Sleeps `ms` milliseconds, then returns them.
    async fn nap(&self, ms: u64) -> u64;
}

/// What the server offers, calling its callers back.
#[rpc_service]
trait Hub {
    /// Calls the caller's `double` `n` times at once; the sum of the answers.
    async fn fan_back(&self, n: u64) -> Result<u64, String>;
    /// Whether the caller can be called back.
    async fn can_call_back(&self) -> bool;
    /// Calls the caller's `slow` with a 50 ms deadline; how that ended.
    async fn impatient(&self) -> String;
    /// Calls the caller's `slow`, recording how that ended. One-way, so it
    /// runs on when its caller goes away (calls with answers are stopped).
    #[rpc(oneway)]
    async fn wait_on_caller(&self);
    /// The caller's `numbers(n)`, collected.
    async fn pull(&self, n: u32) -> Result<Vec<u32>, String>;
    /// Starts the caller's `slow`, and gives up on it after 50 ms by
    /// dropping the call.
    async fn abandon(&self) -> bool;
    /// Keeps a client for the caller, for calling it back later.
    async fn remember(&self) -> bool;
}

#[derive(Clone)]
struct NotifierImpl {
    /// A permit per `slow` started.
    started: Arc<Semaphore>,
    /// A permit per `slow` stopped (dropped).
    stopped: Arc<Semaphore>,
    finished: Arc<AtomicBool>,
}

impl NotifierImpl {
    fn new() -> Self {
        NotifierImpl {
            started: Arc::new(Semaphore::new(0)),
            stopped: Arc::new(Semaphore::new(0)),
            finished: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Adds a permit when dropped.
struct Signal(Arc<Semaphore>);

impl Drop for Signal {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

impl Notifier for NotifierImpl {
    async fn double(&self, n: u64) -> u64 {
        // Wait a little, so the calls really are in flight together.
        tokio::task::yield_now().await;
        n * 2
    }
    async fn slow(&self) -> u64 {
        let _stopped = Signal(self.stopped.clone());
        self.started.add_permits(1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        self.finished.store(true, Ordering::SeqCst);
        0
    }
    async fn numbers(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
    async fn nap(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

#[derive(Clone)]
struct HubImpl {
    /// How the last `wait_on_caller` callback ended.
    outcome: Arc<Mutex<Option<Result<u64, RpcError>>>>,
    recorded: Arc<Semaphore>,
    /// A client for a caller, kept by `remember`.
    remembered: Arc<Mutex<Option<NotifierClient>>>,
}

impl Default for HubImpl {
    fn default() -> Self {
        HubImpl {
            outcome: Arc::default(),
            recorded: Arc::new(Semaphore::new(0)),
            remembered: Arc::default(),
        }
    }
}

impl Hub for HubImpl {
    async fn fan_back(&self, n: u64) -> Result<u64, String> {
        let caller = NotifierClient::caller().ok_or("the caller cannot be called back")?;
        let answers = futures::future::join_all((0..n).map(|i| caller.double(i))).await;
        answers
            .into_iter()
            .map(|answer| answer.map_err(|e| e.to_string()))
            .sum()
    }
    async fn can_call_back(&self) -> bool {
        NotifierClient::caller().is_some()
    }
    async fn impatient(&self) -> String {
        let Some(caller) = NotifierClient::caller() else {
            return "no caller".to_owned();
        };
        match caller.with_timeout(Duration::from_millis(50)).slow().await {
            Err(RpcError::DeadlineExceeded { .. }) => "deadline".to_owned(),
            other => format!("{other:?}"),
        }
    }
    async fn wait_on_caller(&self) {
        let outcome = match NotifierClient::caller() {
            Some(caller) => caller.slow().await,
            None => Err(RpcError::Protocol {
                message: "no caller".to_owned(),
            }),
        };
        *self.outcome.lock().unwrap() = Some(outcome);
        self.recorded.add_permits(1);
    }
    async fn remember(&self) -> bool {
        let caller = NotifierClient::caller();
        let found = caller.is_some();
        *self.remembered.lock().unwrap() = caller;
        found
    }
    async fn abandon(&self) -> bool {
        let Some(caller) = NotifierClient::caller() else {
            return false;
        };
        tokio::select! {
            _ = caller.slow() => false,
            () = tokio::time::sleep(Duration::from_millis(50)) => true,
        }
    }
    async fn pull(&self, n: u32) -> Result<Vec<u32>, String> {
        let caller = NotifierClient::caller().ok_or("no caller")?;
        let numbers = caller.numbers(n).await.map_err(|e| e.to_string())?;
        numbers
            .map(|n| n.map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }
}

async fn hub_server() -> (Server, HubImpl) {
    let hub = HubImpl::default();
    let server = Server::builder()
        .add_service(HubServer::new(hub.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    (server, hub)
}

async fn serving_client(server: &Server, notifier: &NotifierImpl) -> HubClient {
    let channel = Channel::builder()
        .serve(NotifierServer::new(notifier.clone()))
        .connect(server.local_addr())
        .await
        .unwrap();
    HubClient::new(channel)
}

fn within<T>(
    what: &str,
    future: impl std::future::Future<Output = T>,
) -> impl std::future::Future<Output = T> {
    let what = what.to_owned();
    async move {
        tokio::time::timeout(Duration::from_secs(5), future)
            .await
            .unwrap_or_else(|_| panic!("{what} took too long"))
    }
}

#[tokio::test]
async fn a_server_calls_its_caller_back_a_thousand_times_at_once() {
    let (server, _hub) = hub_server().await;
    let notifier = NotifierImpl::new();
    let hub = serving_client(&server, &notifier).await;
    let sum = within("the callbacks", hub.fan_back(1000)).await.unwrap();
    // 2 * (0 + 1 + ... + 999)
    assert_eq!(sum, Ok(999_000));
    // Plain calls still work on the same connection, and again.
    assert!(hub.can_call_back().await.unwrap());
    assert_eq!(hub.fan_back(10).await.unwrap(), Ok(90));
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_serves_nothing_cannot_be_called_back() {
    let (server, _hub) = hub_server().await;
    let hub = HubClient::connect(server.local_addr()).await.unwrap();
    assert!(!hub.can_call_back().await.unwrap());
    assert_eq!(
        hub.fan_back(3).await.unwrap(),
        Err("the caller cannot be called back".to_owned())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_callbacks_deadline_stops_the_clients_handler() {
    let (server, _hub) = hub_server().await;
    let notifier = NotifierImpl::new();
    let hub = serving_client(&server, &notifier).await;
    assert_eq!(
        within("the call", hub.impatient()).await.unwrap(),
        "deadline"
    );
    // The deadline travelled to the client, which stopped its handler.
    within("the client's handler to stop", notifier.stopped.acquire())
        .await
        .unwrap()
        .forget();
    assert!(!notifier.finished.load(Ordering::SeqCst));
    server.shutdown().await;
}

/// A handler that drops its callback's future cancels the call on the
/// client, which stops its handler.
#[tokio::test]
async fn dropping_a_callback_cancels_it_on_the_client() {
    let (server, _hub) = hub_server().await;
    let notifier = NotifierImpl::new();
    let hub = serving_client(&server, &notifier).await;
    assert!(within("the call", hub.abandon()).await.unwrap());
    within("the client's handler to stop", notifier.stopped.acquire())
        .await
        .unwrap()
        .forget();
    assert!(!notifier.finished.load(Ordering::SeqCst));
    server.shutdown().await;
}

#[tokio::test]
async fn streams_flow_the_other_way_too() {
    let (server, _hub) = hub_server().await;
    let notifier = NotifierImpl::new();
    let hub = serving_client(&server, &notifier).await;
    // More than a window's worth, so credit must flow from server to client.
    let numbers = within("the stream", hub.pull(100)).await.unwrap().unwrap();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());
    server.shutdown().await;
}

/// A client that goes away while the server is calling it back: the
/// server's callback fails with `ConnectionLost` instead of hanging.
#[tokio::test]
async fn a_client_that_goes_away_fails_the_callback() {
    let (server, hub_impl) = hub_server().await;
    let notifier = NotifierImpl::new();
    let hub = serving_client(&server, &notifier).await;
    hub.wait_on_caller().await.unwrap();
    // The server is now inside a callback to the client.
    within("the callback to start", notifier.started.acquire())
        .await
        .unwrap()
        .forget();
    // The client goes away: its channel and connection are dropped.
    drop(hub);
    within("the server to notice", hub_impl.recorded.acquire())
        .await
        .unwrap()
        .forget();
    let outcome = hub_impl.outcome.lock().unwrap().take();
    assert!(
        matches!(outcome, Some(Err(RpcError::ConnectionLost { .. }))),
        "{outcome:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn callbacks_in_memory() {
    let (listener, addr) = memory::listener();
    let server = Server::builder()
        .add_service(HubServer::new(HubImpl::default()))
        .serve(listener)
        .unwrap();
    let channel = Channel::builder()
        .serve(NotifierServer::new(NotifierImpl::new()))
        .connect_io(addr.connect().unwrap(), "memory")
        .await
        .unwrap();
    let hub = HubClient::new(channel);
    assert_eq!(
        within("the callbacks", hub.fan_back(50)).await.unwrap(),
        Ok(2450)
    );
    server.shutdown().await;
}

/// A server that keeps a caller's channel and calls it back later: while
/// that callback waits, the connection is not idle, however short the idle
/// timeout.
#[tokio::test]
async fn a_pending_callback_keeps_the_connection_from_idling_out() {
    let hub_impl = HubImpl::default();
    let server = Server::builder()
        .add_service(HubServer::new(hub_impl.clone()))
        .idle_timeout(Some(Duration::from_millis(100)))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let notifier = NotifierImpl::new();
    let hub = serving_client(&server, &notifier).await;
    assert!(hub.remember().await.unwrap());
    let caller = hub_impl
        .remembered
        .lock()
        .unwrap()
        .clone()
        .expect("a client for the caller");
    // The client makes no calls now; the server's callback runs four idle
    // timeouts long.
    assert_eq!(within("the callback", caller.nap(400)).await.unwrap(), 400);
    server.shutdown().await;
}
