//! Reconnecting: a channel whose connection broke opens a new one on the next
//! call; calls that were pending on the broken connection fail and are not
//! sent again, except idempotent ones; reconnect attempts back off.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Calc, CalculatorClient, CalculatorServer};
use rpc_runtime::{rpc_service, Channel, RpcError, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Everything here must happen within this; far more than any loopback round
/// trip or any backoff pause the tests configure.
const PROMPT: Duration = Duration::from_secs(1);

#[rpc_service]
trait Ledger {
    /// Not idempotent: every run appends an entry. Its first run never
    /// finishes; it returns the number of runs so far.
    async fn append(&self, entry: u32) -> usize;
    /// Safe to run twice. Its first run never finishes.
    #[rpc(idempotent)]
    async fn balance(&self, account: u32) -> u64;
    /// How many times `append` has run.
    async fn appends(&self) -> usize;
    /// Never finishes.
    async fn hang(&self);
}

/// What the test sees of the server's handlers.
struct Runs {
    appends: AtomicUsize,
    balances: AtomicUsize,
    /// One permit each time a handler starts a run that never finishes.
    stuck: Semaphore,
}

impl Runs {
    fn new() -> Self {
        Runs {
            appends: AtomicUsize::new(0),
            balances: AtomicUsize::new(0),
            stuck: Semaphore::new(0),
        }
    }

    /// Waits until `n` handler runs are stuck on the server.
    async fn stuck(&self, n: u32) {
        tokio::time::timeout(PROMPT, self.stuck.acquire_many(n))
            .await
            .expect("the call never started on the server")
            .unwrap()
            .forget();
    }
}

struct LedgerImpl(Arc<Runs>);

impl LedgerImpl {
    async fn get_stuck(&self) {
        self.0.stuck.add_permits(1);
        std::future::pending::<()>().await;
    }
}

impl Ledger for LedgerImpl {
    async fn append(&self, _entry: u32) -> usize {
        let run = self.0.appends.fetch_add(1, Ordering::SeqCst) + 1;
        if run == 1 {
            self.get_stuck().await;
        }
        run
    }
    async fn balance(&self, account: u32) -> u64 {
        if self.0.balances.fetch_add(1, Ordering::SeqCst) == 0 {
            self.get_stuck().await;
        }
        u64::from(account) * 100
    }
    async fn appends(&self) -> usize {
        self.0.appends.load(Ordering::SeqCst)
    }
    async fn hang(&self) {
        self.get_stuck().await;
    }
}

/// A ledger and a calculator server on `addr`.
async fn ledger_server_at(addr: SocketAddr) -> (Server, Arc<Runs>) {
    let runs = Arc::new(Runs::new());
    let server = Server::builder()
        .add_service(LedgerServer::new(LedgerImpl(Arc::clone(&runs))))
        .add_service(CalculatorServer::new(Calc))
        .bind(addr)
        .await
        .expect("bind a loopback port");
    (server, runs)
}

async fn ledger_server() -> (Server, Arc<Runs>) {
    ledger_server_at("127.0.0.1:0".parse().unwrap()).await
}

/// Awaits a call spawned earlier, which must end promptly.
async fn finished<T>(call: JoinHandle<T>) -> T {
    tokio::time::timeout(PROMPT, call)
        .await
        .expect("the call hung")
        .expect("the call's task panicked")
}

fn connection_lost_reason<T: std::fmt::Debug>(result: Result<T, RpcError>) -> Arc<str> {
    match result {
        Err(RpcError::ConnectionLost { reason }) => reason,
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
}

/// A TCP proxy in front of a server whose connections the test can cut, as
/// when the network path between client and server dies.
struct Proxy {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let links = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn({
            let accepted = Arc::clone(&accepted);
            let links = Arc::clone(&links);
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    // Counted before the server can greet through the
                    // proxy, so before the client's dial can complete.
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let link = tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Proxy {
            addr,
            accepted,
            links,
        }
    }

    /// Connections the proxy has accepted (dials that reached it).
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes every connection through the proxy, both sides.
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

#[tokio::test]
async fn a_channel_reconnects_to_a_new_server_on_the_same_address() {
    let (first, runs) = ledger_server().await;
    let addr = first.local_addr();
    let channel = Channel::connect(addr).await.unwrap();
    let ledger = LedgerClient::new(channel.clone());
    let calc = CalculatorClient::new(channel.clone());
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);

    // A call pending on the server tells the test when the client has seen
    // the connection go.
    let pending = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.hang().await }
    });
    runs.stuck(1).await;
    first.abort().await;
    connection_lost_reason(finished(pending).await);
    assert!(channel.is_closed());

    // A new server on the same port; the next call reaches it.
    let (second, _) = ledger_server_at(addr).await;
    assert_eq!(second.connections(), 0);
    let answer = tokio::time::timeout(PROMPT, calc.add(2, 3)).await.unwrap();
    assert_eq!(answer.unwrap(), 5);
    assert!(!channel.is_closed());
    assert_eq!(second.connections(), 1, "the call went to the new server");
    // Every client on the channel uses the new connection.
    assert_eq!(ledger.appends().await.unwrap(), 0);
    assert_eq!(second.connections(), 1);
    second.abort().await;
}

/// The server's idle timeout. Each call must reach the server within it of
/// the connection opening (a request that crosses the server's goodbye is
/// lost), so not too short for a loaded machine.
const IDLE: Duration = Duration::from_millis(150);

#[tokio::test]
async fn a_connection_closed_as_idle_is_reopened_by_the_next_call() {
    let server = Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .idle_timeout(Some(IDLE))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = CalculatorClient::connect(server.local_addr())
        .await
        .unwrap();
    for round in 0..3i64 {
        assert_eq!(client.add(round, 1).await.unwrap(), round + 1);
        // The server says goodbye after IDLE without calls. Nothing can be
        // awaited for the client to take note of it, so poll, briefly.
        tokio::time::timeout(PROMPT, async {
            while !client.channel().is_closed() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the server never closed the idle connection");
    }
    // And once more on a fresh connection, through a second client.
    let again = CalculatorClient::new(client.channel().clone());
    assert_eq!(again.add(40, 2).await.unwrap(), 42);
    assert!(!client.channel().is_closed());
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_pending_when_the_connection_breaks_fails_and_is_not_sent_again() {
    let (server, runs) = ledger_server().await;
    let proxy = Proxy::start(server.local_addr()).await;
    let client = LedgerClient::connect(proxy.addr).await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.append(7).await }
    });
    // The call runs on the server when the connection breaks.
    runs.stuck(1).await;
    proxy.cut();
    let reason = connection_lost_reason(finished(call).await);
    assert!(!reason.is_empty());

    // Sending it again would have needed a new connection, and the call
    // returned without dialing one.
    assert_eq!(proxy.accepted(), 1);
    assert_eq!(runs.appends.load(Ordering::SeqCst), 1);
    // The channel itself recovers: the next call reconnects, and the server
    // confirms that `append` ran exactly once.
    assert_eq!(client.appends().await.unwrap(), 1);
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(runs.appends.load(Ordering::SeqCst), 1);
    server.abort().await;
}

#[tokio::test]
async fn an_idempotent_call_is_sent_again_when_the_connection_breaks_mid_call() {
    let (server, runs) = ledger_server().await;
    let proxy = Proxy::start(server.local_addr()).await;
    let client = LedgerClient::connect(proxy.addr)
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.balance(3).await }
    });
    // The first run is stuck on the server; break its connection.
    runs.stuck(1).await;
    assert_eq!(proxy.accepted(), 1);
    proxy.cut();
    // The call was sent again on a new connection and answered by the second
    // run, well within its deadline.
    assert_eq!(finished(call).await.unwrap(), 300);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(runs.balances.load(Ordering::SeqCst), 2);
    assert_eq!(proxy.accepted(), 2);
    assert!(!client.channel().is_closed());
    server.abort().await;
}

use common::wire::SERVER_HELLO_RANGED as SERVER_HELLO;

/// Reads one frame's payload; `None` when the peer closed the connection.
async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let mut payload = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// Greets a client like a server; `false` if it did not greet first.
async fn greet(stream: &mut TcpStream) -> bool {
    match read_frame(stream).await {
        Some(hello) if hello.starts_with(b"RRPC\x00") => {
            stream.write_all(&SERVER_HELLO).await.is_ok()
        }
        _ => false,
    }
}

/// A fake server that greets every connection and hangs up as soon as it
/// reads one of the first `hang_ups` requests, breaking that call mid-way;
/// it answers every later request with the value `100u64`. Counts the
/// requests it read.
async fn flaky_server(hang_ups: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let requests = Arc::clone(&requests);
        async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    if !greet(&mut stream).await {
                        return;
                    }
                    while let Some(frame) = read_frame(&mut stream).await {
                        // Requests are variant 0; ignore pings and cancels.
                        if frame.first() != Some(&0) {
                            continue;
                        }
                        if requests.fetch_add(1, Ordering::SeqCst) < hang_ups {
                            return;
                        }
                        // Response (1), the request's id (the client counts
                        // from 1; below 251 it is one byte), status Ok (0),
                        // then the value: 100.
                        let id = frame[1];
                        assert!(id < 251, "{frame:02x?}");
                        let answer = [0, 0, 0, 4, 1, id, 0, 100];
                        if stream.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn idempotent_calls_are_sent_again_a_bounded_number_of_times() {
    let (addr, requests) = flaky_server(usize::MAX).await;
    let channel = Channel::builder()
        .idempotent_retries(1)
        .connect(addr)
        .await
        .unwrap();
    let client = LedgerClient::new(channel).with_timeout(Duration::from_secs(2));

    // Idempotent: sent once, then once again; then the error is the caller's.
    let result = tokio::time::timeout(PROMPT, client.balance(1)).await;
    connection_lost_reason(result.expect("the call hung"));
    assert_eq!(requests.load(Ordering::SeqCst), 2);

    // Not idempotent: sent once.
    let result = tokio::time::timeout(PROMPT, client.append(1)).await;
    connection_lost_reason(result.expect("the call hung"));
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_idempotent_call_with_unlimited_retries_is_sent_until_it_gets_through() {
    let (addr, requests) = flaky_server(5).await;
    let channel = Channel::builder()
        .idempotent_retries(u32::MAX)
        .connect(addr)
        .await
        .unwrap();
    let client = LedgerClient::new(channel).with_timeout(Duration::from_secs(2));
    let result = tokio::time::timeout(PROMPT, client.balance(1)).await;
    assert_eq!(result.expect("the call hung").unwrap(), 100);
    assert_eq!(requests.load(Ordering::SeqCst), 6);
    // A call that is not idempotent gets the server's answer at once.
    assert_eq!(client.appends().await.unwrap(), 100);
    assert_eq!(requests.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn without_reconnect_later_calls_fail_with_the_reason_and_never_dial() {
    let (first, runs) = ledger_server().await;
    let addr = first.local_addr();
    let channel = Channel::builder()
        .reconnect(false)
        .connect(addr)
        .await
        .unwrap();
    let client = LedgerClient::new(channel);
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.hang().await }
    });
    runs.stuck(1).await;
    first.abort().await;
    let reason = connection_lost_reason(finished(pending).await);

    // A server is back on the address: a channel that dialed would reach it.
    let (second, _) = ledger_server_at(addr).await;
    for _ in 0..3 {
        let later = tokio::time::timeout(PROMPT, client.appends()).await;
        let later = connection_lost_reason(later.expect("the call hung"));
        assert_eq!(later, reason, "later calls fail with the closed reason");
    }
    // An idempotent call is not retried into a new connection either.
    let later = tokio::time::timeout(PROMPT, client.balance(1)).await;
    assert_eq!(connection_lost_reason(later.unwrap()), reason);
    assert!(client.channel().is_closed());
    assert_eq!(second.connections(), 0, "the channel dialed again");
    second.abort().await;
}

/// A listener that greets its first connection and hangs up on it when the
/// first request arrives; every later connection (a reconnect attempt) is
/// accepted and closed at once, which the dialer reports as `NotAServer`.
/// Counts the connections it accepted.
async fn one_shot_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dials = Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let dials = Arc::clone(&dials);
        async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                if dials.fetch_add(1, Ordering::SeqCst) == 0 && greet(&mut stream).await {
                    let _ = read_frame(&mut stream).await;
                }
            }
        }
    });
    (addr, dials)
}

#[tokio::test]
async fn failed_reconnects_back_off_before_dialing_again() {
    let (addr, dials) = one_shot_server().await;
    let channel = Channel::builder()
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .timeout(PROMPT)
        .connect(addr)
        .await
        .unwrap();
    let client = CalculatorClient::new(channel);
    connection_lost_reason(client.add(1, 1).await);
    assert_eq!(dials.load(Ordering::SeqCst), 1);

    // The first reconnect dials at once, and fails.
    let first_attempt = Instant::now();
    let result = client.add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::NotAServer { .. })),
        "{result:?}"
    );
    assert_eq!(dials.load(Ordering::SeqCst), 2);

    // A call that cannot wait out the pause (50 to 100 ms) fails at once
    // with the reason, without dialing.
    let short = client.with_timeout(Duration::from_millis(30));
    let started = Instant::now();
    let result = short.add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::NotAServer { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(30), "it waited");
    assert_eq!(dials.load(Ordering::SeqCst), 2);
    // A call with time to wait dials once the pause is over.
    let result = client.add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::NotAServer { .. })),
        "{result:?}"
    );
    let waited = first_attempt.elapsed();
    assert!(waited >= Duration::from_millis(40), "{waited:?}");
    assert_eq!(dials.load(Ordering::SeqCst), 3, "one dial per pause");

    // After a second failure the pause has doubled (100 to 200 ms): a call
    // given 80 ms still does not dial.
    let result = client
        .with_timeout(Duration::from_millis(80))
        .add(1, 1)
        .await;
    assert!(
        matches!(result, Err(RpcError::NotAServer { .. })),
        "{result:?}"
    );
    assert_eq!(dials.load(Ordering::SeqCst), 3);
    let result = client.add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::NotAServer { .. })),
        "{result:?}"
    );
    assert_eq!(dials.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn reconnecting_to_an_address_where_nothing_listens_backs_off() {
    let (server, runs) = ledger_server().await;
    let channel = Channel::builder()
        .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .timeout(PROMPT)
        .connect(server.local_addr())
        .await
        .unwrap();
    let ledger = LedgerClient::new(channel.clone());
    let calc = CalculatorClient::new(channel);
    let pending = tokio::spawn(async move { ledger.hang().await });
    runs.stuck(1).await;
    server.abort().await;
    connection_lost_reason(finished(pending).await);

    let first_attempt = Instant::now();
    let result = calc.add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::Connect { .. })),
        "{result:?}"
    );
    // Refused connections fail at once; during the pause, a call that
    // cannot wait it out fails with the same reason, without dialing.
    let result = calc.with_timeout(Duration::from_millis(30)).add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::Connect { .. })),
        "{result:?}"
    );
    let result = calc.add(1, 1).await;
    assert!(
        matches!(result, Err(RpcError::Connect { .. })),
        "{result:?}"
    );
    let waited = first_attempt.elapsed();
    assert!(waited >= Duration::from_millis(40), "{waited:?}");
}

/// A server that says goodbye for idleness (code 11) or shutdown (code 6)
/// promises it did not run what it did not answer: a call caught in that
/// goodbye is sent again on a new connection, even a non-idempotent one.
/// Any other goodbye (here, code 8) makes no such promise.
async fn goodbye_then_answer(code: u8) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut connection = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            connection += 1;
            if read_frame(&mut stream).await.is_none() {
                continue;
            }
            stream.write_all(&SERVER_HELLO).await.unwrap();
            let Some(request) = read_frame(&mut stream).await else {
                continue;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            let id = request[1];
            if connection == 1 {
                // Goodbye (2), the code, an empty message.
                stream.write_all(&[0, 0, 0, 3, 2, code, 0]).await.unwrap();
            } else {
                // Response (1), the id, Ok (0), the i64 42 (zigzag 84).
                stream.write_all(&[0, 0, 0, 4, 1, id, 0, 84]).await.unwrap();
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
            }
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn calls_caught_in_an_idle_or_shutdown_goodbye_are_sent_again() {
    for code in [11, 6] {
        let (addr, requests) = goodbye_then_answer(code).await;
        let client = CalculatorClient::connect(addr).await.unwrap();
        let result = tokio::time::timeout(PROMPT, client.add(40, 2))
            .await
            .unwrap();
        assert_eq!(result.unwrap(), 42, "goodbye code {code}");
        assert_eq!(requests.load(Ordering::SeqCst), 2, "goodbye code {code}");
    }
}

#[tokio::test]
async fn calls_caught_in_another_goodbye_are_not_sent_again() {
    let (addr, requests) = goodbye_then_answer(8).await;
    let client = CalculatorClient::connect(addr).await.unwrap();
    let result = tokio::time::timeout(PROMPT, client.add(40, 2))
        .await
        .unwrap();
    assert!(
        matches!(result, Err(RpcError::ConnectionLost { .. })),
        "{result:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
