//! The protocol over two kinds of link: TCP (a byte stream, framed) and the
//! in-memory link that carries whole frames as messages. Every case runs on
//! both, so everything above the link is shown not to depend on bytes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::link::memory::{self, MemoryLinkAddr};
use rpc_runtime::{
    rpc_service, Channel, ChannelBuilder, RpcError, Server, ServerBuilder, Streaming,
};
use tokio::sync::Semaphore;

#[rpc_service]
trait Suite {
    async fn add(&self, a: u32, b: u32) -> u32;
    async fn divide(&self, a: u32, b: u32) -> Result<u32, String>;
    /// Waits on the gate; reports its drop.
    async fn hang(&self) -> u32;
    #[rpc(oneway)]
    async fn log(&self, line: String);
    async fn logged(&self) -> usize;
    async fn numbers(&self, n: u32) -> Streaming<u32>;
    async fn total(&self, values: Streaming<u32>) -> u64;
    async fn doubled(&self, values: Streaming<u32>) -> Streaming<u32>;
    /// Calls the caller's `Back.echo(n)`.
    async fn call_back(&self, n: u32) -> Result<u32, String>;
}

#[rpc_service]
trait Back {
    async fn echo(&self, n: u32) -> u32;
}

#[derive(Clone)]
struct SuiteImpl {
    gate: Arc<Semaphore>,
    started: Arc<Semaphore>,
    dropped: Arc<Semaphore>,
    lines: Arc<AtomicUsize>,
    logged: Arc<Semaphore>,
}

struct OnDrop(Arc<Semaphore>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

impl Suite for SuiteImpl {
    async fn add(&self, a: u32, b: u32) -> u32 {
        a + b
    }
    async fn divide(&self, a: u32, b: u32) -> Result<u32, String> {
        a.checked_div(b).ok_or_else(|| "divided by zero".to_owned())
    }
    async fn hang(&self) -> u32 {
        let _dropped = OnDrop(Arc::clone(&self.dropped));
        self.started.add_permits(1);
        self.gate.acquire().await.unwrap().forget();
        1
    }
    async fn log(&self, _line: String) {
        self.lines.fetch_add(1, Ordering::SeqCst);
        self.logged.add_permits(1);
    }
    async fn logged(&self) -> usize {
        self.lines.load(Ordering::SeqCst)
    }
    async fn numbers(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
    async fn total(&self, mut values: Streaming<u32>) -> u64 {
        let mut total = 0;
        while let Some(Ok(value)) = values.next().await {
            total += u64::from(value);
        }
        total
    }
    async fn doubled(&self, values: Streaming<u32>) -> Streaming<u32> {
        Streaming::try_from_stream(values.map(|value| value.map(|v| v * 2)))
    }
    async fn call_back(&self, n: u32) -> Result<u32, String> {
        let back = BackClient::caller().ok_or("the caller serves nothing")?;
        back.echo(n).await.map_err(|e| e.to_string())
    }
}

struct BackImpl;

impl Back for BackImpl {
    async fn echo(&self, n: u32) -> u32 {
        n + 1000
    }
}

#[derive(Clone, Copy, Debug)]
enum Over {
    Tcp,
    MemoryLink,
}

enum Served {
    Tcp(Server<SocketAddr>),
    Link(Server<MemoryLinkAddr>),
}

impl Served {
    async fn channel(&self, builder: ChannelBuilder) -> Result<Channel, RpcError> {
        match self {
            Served::Tcp(server) => builder.connect(server.local_addr()).await,
            Served::Link(server) => builder.connect_memory_link(&server.local_addr()).await,
        }
    }

    async fn client(&self) -> SuiteClient {
        SuiteClient::new(self.channel(Channel::builder()).await.unwrap())
    }

    fn in_flight(&self) -> usize {
        match self {
            Served::Tcp(server) => server.in_flight(),
            Served::Link(server) => server.in_flight(),
        }
    }

    async fn shutdown(self) {
        match self {
            Served::Tcp(server) => server.shutdown().await,
            Served::Link(server) => server.shutdown().await,
        }
    }
}

fn suite() -> SuiteImpl {
    SuiteImpl {
        gate: Arc::new(Semaphore::new(0)),
        started: Arc::new(Semaphore::new(0)),
        dropped: Arc::new(Semaphore::new(0)),
        lines: Arc::default(),
        logged: Arc::new(Semaphore::new(0)),
    }
}

async fn serve(over: Over, imp: &SuiteImpl) -> Served {
    let builder: ServerBuilder = Server::builder().add_service(SuiteServer::new(imp.clone()));
    match over {
        Over::Tcp => Served::Tcp(builder.bind("127.0.0.1:0").await.unwrap()),
        Over::MemoryLink => {
            let (listener, _) = memory::listener();
            Served::Link(builder.serve_links(listener).unwrap())
        }
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took too long"))
}

async fn until_idle(server: &Served) {
    within("the server to go idle", async {
        while server.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

async fn unary(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let client = server.client().await;
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    assert_eq!(
        client.divide(1, 0).await.unwrap(),
        Err("divided by zero".to_owned())
    );
    let calls = (0..100).map(|i| client.add(i, i));
    let sums = futures::future::join_all(calls).await;
    assert!(sums
        .into_iter()
        .enumerate()
        .all(|(i, s)| s.unwrap() == 2 * i as u32));
    server.shutdown().await;
}

async fn oneway(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let client = server.client().await;
    client.log("one".into()).await.unwrap();
    within("the one-way call", imp.logged.acquire())
        .await
        .unwrap()
        .forget();
    assert_eq!(client.logged().await.unwrap(), 1);
    server.shutdown().await;
}

async fn deadline(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let client = server.client().await;
    let late = client.with_timeout(Duration::from_millis(50)).hang().await;
    assert!(
        matches!(late, Err(RpcError::DeadlineExceeded { .. })),
        "{late:?}"
    );
    within("the handler to stop", imp.dropped.acquire())
        .await
        .unwrap()
        .forget();
    until_idle(&server).await;
    assert_eq!(client.add(1, 1).await.unwrap(), 2);
    server.shutdown().await;
}

async fn cancel(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let client = server.client().await;
    tokio::select! {
        result = client.hang() => panic!("the call ended: {result:?}"),
        permit = imp.started.acquire() => permit.unwrap().forget(),
    }
    within("the cancel", imp.dropped.acquire())
        .await
        .unwrap()
        .forget();
    until_idle(&server).await;
    server.shutdown().await;
}

async fn streams(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let client = server.client().await;
    // More than a window (16) each way, so credit flows both ways.
    let numbers: Vec<u32> = within("the answer stream", async {
        client
            .numbers(40)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await
    })
    .await;
    assert_eq!(numbers, (0..40).collect::<Vec<_>>());
    let total = within(
        "the sent stream",
        client.total(Streaming::from_iter(1..=40)),
    )
    .await
    .unwrap();
    assert_eq!(total, 820);
    let doubled: Vec<u32> = within("both ways", async {
        let answers = client.doubled(Streaming::from_iter(0..40)).await.unwrap();
        answers.map(Result::unwrap).collect().await
    })
    .await;
    assert_eq!(doubled, (0..40).map(|v| v * 2).collect::<Vec<_>>());
    server.shutdown().await;
}

async fn callbacks(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let channel = server
        .channel(Channel::builder().serve(BackServer::new(BackImpl)))
        .await
        .unwrap();
    let client = SuiteClient::new(channel);
    assert_eq!(
        within("a callback", client.call_back(7)).await.unwrap(),
        Ok(1007)
    );
    server.shutdown().await;
}

async fn goodbye(over: Over) {
    let imp = suite();
    let server = serve(over, &imp).await;
    let client = server.client().await;
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.hang().await }
    });
    within("the call to start", imp.started.acquire())
        .await
        .unwrap()
        .forget();
    // Shutdown lets the running call finish and answers it, then says
    // goodbye; the client's next call cannot reach the stopped server.
    let shutdown = tokio::spawn(server.shutdown());
    imp.gate.add_permits(1);
    assert_eq!(
        within("the running call", running).await.unwrap().unwrap(),
        1
    );
    within("the shutdown", shutdown).await.unwrap();
    let after = client.add(1, 2).await;
    assert!(after.is_err(), "{after:?}");
}

macro_rules! over_both {
    ($($case:ident),* $(,)?) => {
        mod tcp {
            $(#[tokio::test] async fn $case() { super::$case(super::Over::Tcp).await })*
        }
        mod memory_link {
            $(#[tokio::test] async fn $case() { super::$case(super::Over::MemoryLink).await })*
        }
    };
}

over_both!(unary, oneway, deadline, cancel, streams, callbacks, goodbye);
