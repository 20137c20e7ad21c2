//! Streams: a method that returns `Streaming<T>`, takes one, or both, over
//! TCP and in memory, with flow control, cancellation, deadlines and errors.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::{rpc_service, transport::memory, Channel, RpcError, Server, Streaming};
use tokio::sync::Semaphore;

#[rpc_service]
trait Feed {
    /// `count` numbers from `start`, one every `every_ms` milliseconds.
    async fn ticks(&self, start: u64, count: u32, every_ms: u64) -> Streaming<u64>;
    /// Numbers from 0 for as long as the caller takes them; counts how many
    /// were produced, and signals when the producer is dropped.
    async fn endless(&self) -> Streaming<u64>;
    /// `ok` items, then an error.
    async fn failing(&self, ok: u32) -> Streaming<String>;
    /// A plain call, to interleave with streams.
    async fn add(&self, a: u64, b: u64) -> u64;
    /// The sum of a stream the caller sends; an error item is returned as
    /// the error's text.
    async fn sum(&self, numbers: Streaming<i64>) -> Result<i64, String>;
    /// Takes the first item, waits a moment, returns it.
    async fn first(&self, numbers: Streaming<u64>) -> Option<u64>;
    /// Drops the caller's stream at once, then waits before answering.
    async fn ignore(&self, numbers: Streaming<u64>) -> u32;
    /// Both ways: each line comes back prefixed with the room.
    async fn chat(&self, room: String, inbox: Streaming<String>) -> Streaming<String>;
}

#[derive(Clone)]
struct FeedImpl {
    produced: Arc<AtomicU64>,
    dropped: Arc<Semaphore>,
}

impl FeedImpl {
    fn new() -> Self {
        FeedImpl {
            produced: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(Semaphore::new(0)),
        }
    }
}

/// Signals when the producer is dropped.
struct DropSignal(Arc<Semaphore>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

impl Feed for FeedImpl {
    async fn ticks(&self, start: u64, count: u32, every_ms: u64) -> Streaming<u64> {
        let items =
            futures::stream::iter(start..start + u64::from(count)).then(move |n| async move {
                if every_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(every_ms)).await;
                }
                n
            });
        Streaming::from_stream(items)
    }

    async fn endless(&self) -> Streaming<u64> {
        let produced = self.produced.clone();
        let signal = DropSignal(self.dropped.clone());
        Streaming::from_stream(futures::stream::iter(0..).map(move |n| {
            let _keep = &signal;
            produced.fetch_add(1, Ordering::SeqCst);
            n
        }))
    }

    async fn failing(&self, ok: u32) -> Streaming<String> {
        let items = (0..=ok).map(move |i| {
            if i < ok {
                Ok(format!("item {i}"))
            } else {
                Err(rpc_runtime::Status::resource_exhausted("the source ran dry").into())
            }
        });
        Streaming::try_from_stream(futures::stream::iter(items))
    }

    async fn add(&self, a: u64, b: u64) -> u64 {
        a + b
    }

    async fn sum(&self, mut numbers: Streaming<i64>) -> Result<i64, String> {
        let mut total = 0;
        while let Some(n) = numbers.next().await {
            total += n.map_err(|e| e.to_string())?;
        }
        Ok(total)
    }

    async fn first(&self, mut numbers: Streaming<u64>) -> Option<u64> {
        let first = numbers.next().await.and_then(Result::ok);
        // Time for the caller's producer to run ahead, if it could.
        tokio::time::sleep(Duration::from_millis(100)).await;
        first
    }

    async fn ignore(&self, numbers: Streaming<u64>) -> u32 {
        drop(numbers);
        tokio::time::sleep(Duration::from_millis(300)).await;
        7
    }

    async fn chat(&self, room: String, inbox: Streaming<String>) -> Streaming<String> {
        Streaming::try_from_stream(
            inbox.map(move |line| line.map(|line| format!("[{room}] {line}"))),
        )
    }
}

/// A producer on the caller's side: counts what it yields, signals when
/// dropped.
fn counting_producer(produced: Arc<AtomicU64>, dropped: Arc<Semaphore>) -> Streaming<u64> {
    let signal = DropSignal(dropped);
    Streaming::from_stream(futures::stream::iter(0..).map(move |n| {
        let _keep = &signal;
        produced.fetch_add(1, Ordering::SeqCst);
        n
    }))
}

async fn feed_server() -> (Server, FeedImpl, FeedClient) {
    let imp = FeedImpl::new();
    let server = Server::builder()
        .add_service(FeedServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = FeedClient::connect(server.local_addr()).await.unwrap();
    (server, imp, client)
}

async fn collect<T>(stream: Streaming<T>) -> Vec<Result<T, RpcError>> {
    tokio::time::timeout(Duration::from_secs(10), stream.collect())
        .await
        .expect("the stream ended")
}

#[tokio::test]
async fn items_arrive_in_order_and_the_stream_ends() {
    let (server, _imp, client) = feed_server().await;
    // More items than the window, so credit must be granted along the way.
    let items: Vec<u64> = collect(client.ticks(5, 100, 0).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, (5..105).collect::<Vec<_>>());
    // An empty stream is a normal end too.
    assert!(collect(client.ticks(0, 0, 0).await.unwrap())
        .await
        .is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn streams_in_memory() {
    let (listener, addr) = memory::listener();
    let server = Server::builder()
        .add_service(FeedServer::new(FeedImpl::new()))
        .serve(listener)
        .unwrap();
    let channel = Channel::builder()
        .connect_io(addr.connect().unwrap(), "memory")
        .await
        .unwrap();
    let client = FeedClient::new(channel);
    let items: Vec<u64> = collect(client.ticks(0, 40, 1).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, (0..40).collect::<Vec<_>>());
    server.shutdown().await;
}

#[tokio::test]
async fn a_producer_error_is_the_last_item() {
    let (server, _imp, client) = feed_server().await;
    let items = collect(client.failing(3).await.unwrap()).await;
    assert_eq!(items.len(), 4, "{items:?}");
    for (i, item) in items.iter().take(3).enumerate() {
        assert_eq!(item.as_ref().unwrap(), &format!("item {i}"));
    }
    match &items[3] {
        Err(RpcError::Status(status)) => {
            assert_eq!(status.code(), rpc_runtime::Code::RESOURCE_EXHAUSTED);
            assert_eq!(status.message(), "the source ran dry");
        }
        other => panic!("expected the producer's error, got {other:?}"),
    }
    // The connection is fine.
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    server.shutdown().await;
}

/// A consumer that takes a few items and waits: the producer stops at the
/// window instead of running ahead.
#[tokio::test]
async fn a_slow_consumer_holds_the_producer_to_the_window() {
    let (server, imp, client) = feed_server().await;
    let mut stream = client.endless().await.unwrap();
    for expected in 0..10 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    // Give the producer every chance to run ahead (it would produce
    // millions of items in this time if nothing held it back).
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let produced = imp.produced.load(Ordering::SeqCst);
    // Taken (10), plus the window of 16, plus credit granted at the eighth
    // item: at most 10 + 16 + 8.
    assert!(
        (10..=34).contains(&produced),
        "the producer ran {produced} items ahead"
    );
    // Taking more lets it go on.
    for expected in 10..100 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    assert!(imp.produced.load(Ordering::SeqCst) <= 100 + 24);
    drop(stream);
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_the_stream_stops_the_producer() {
    let (server, imp, client) = feed_server().await;
    let mut stream = client.endless().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    drop(stream);
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the producer was not dropped")
        .unwrap()
        .forget();
    common::until_idle(&server).await;
    let stopped_at = imp.produced.load(Ordering::SeqCst);
    assert!(stopped_at <= 1 + 16 + 8, "{stopped_at}");
    assert_eq!(client.add(1, 1).await.unwrap(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_deadline_covers_the_whole_stream() {
    let (server, imp, client) = feed_server().await;
    // Twenty items 20 ms apart cannot make it in 100 ms.
    let short = client.with_timeout(Duration::from_millis(100));
    let items = collect(short.ticks(0, 20, 20).await.unwrap()).await;
    let (last, first) = items.split_last().unwrap();
    assert!(first.iter().all(Result::is_ok));
    assert!(first.len() < 20, "{} items", first.len());
    assert!(
        matches!(last, Err(RpcError::DeadlineExceeded { timeout }) if *timeout == Duration::from_millis(100)),
        "{last:?}"
    );
    // The same through the reader's sweeps: a channel whose default
    // deadline is short.
    let channel = Channel::builder()
        .timeout(Duration::from_millis(150))
        .connect(server.local_addr())
        .await
        .unwrap();
    let swept = FeedClient::new(channel);
    let items = collect(swept.ticks(0, 20, 20).await.unwrap()).await;
    assert!(
        matches!(items.last(), Some(Err(RpcError::DeadlineExceeded { .. }))),
        "{items:?}"
    );
    // An endless stream ends at its deadline too, and its producer stops.
    let items = collect(short.endless().await.unwrap()).await;
    assert!(matches!(
        items.last(),
        Some(Err(RpcError::DeadlineExceeded { .. }))
    ));
    tokio::time::timeout(Duration::from_secs(2), imp.dropped.acquire())
        .await
        .expect("the producer was not dropped")
        .unwrap()
        .forget();
    server.shutdown().await;
}

/// 100 streams on one connection at once, with plain calls between them:
/// every stream gets exactly its own items, in order.
#[tokio::test]
async fn a_hundred_streams_share_a_connection_with_plain_calls() {
    let (server, _imp, client) = feed_server().await;
    let mut tasks = Vec::new();
    for s in 0..100u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let start = s * 1_000;
            let stream = client.ticks(start, 50, 0).await.unwrap();
            let items: Vec<u64> = collect(stream)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(items, (start..start + 50).collect::<Vec<_>>());
            assert_eq!(client.add(s, 1).await.unwrap(), s + 1);
        }));
    }
    for i in 0..200 {
        assert_eq!(client.add(i, i).await.unwrap(), 2 * i);
    }
    for task in tasks {
        task.await.unwrap();
    }
    server.shutdown().await;
}

/// A slow stream never holds up a plain call on the same connection.
#[tokio::test]
async fn a_busy_stream_does_not_starve_plain_calls() {
    let (server, _imp, client) = feed_server().await;
    let mut stream = client.endless().await.unwrap();
    // The stream is flowing (and its consumer is not keeping up).
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    for i in 0..20 {
        let sum = tokio::time::timeout(Duration::from_secs(2), client.add(i, 1))
            .await
            .expect("a plain call was held up");
        assert_eq!(sum.unwrap(), i + 1);
        assert_eq!(stream.next().await.unwrap().unwrap(), i + 1);
    }
    // (A graceful shutdown would let the endless stream run its grace
    // period out.)
    drop(stream);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_of_an_unknown_method_fails_as_its_only_item() {
    let (server, _imp, _client) = feed_server().await;
    let channel = Channel::connect(server.local_addr()).await.unwrap();
    let stream: Streaming<u64> = channel
        .call_streaming_with(&rpc_runtime::CallOptions::new(), "Feed", "nope", &())
        .await
        .unwrap();
    let items = collect(stream).await;
    assert!(
        matches!(&items[..], [Err(RpcError::UnknownMethod { method, .. })] if method == "nope"),
        "{items:?}"
    );
    // A plain method called as a stream, and a stream called as a plain one:
    // each side says what went wrong instead of misreading the answer.
    let stream: Streaming<u64> = channel
        .call_streaming_with(
            &rpc_runtime::CallOptions::new(),
            "Feed",
            "add",
            &(1u64, 2u64),
        )
        .await
        .unwrap();
    let items = collect(stream).await;
    assert!(
        matches!(&items[..], [Err(RpcError::BadRequest { message })] if message.contains("one value")),
        "{items:?}"
    );
    let plain: Result<u64, RpcError> = channel.call("Feed", "endless", &()).await;
    assert!(
        matches!(&plain, Err(RpcError::BadRequest { message }) if message.contains("stream")),
        "{plain:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_fails_with_its_connection() {
    let (server, _imp, client) = feed_server().await;
    let mut stream = client.endless().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    server.abort().await;
    let rest = collect(stream).await;
    assert!(
        matches!(rest.last(), Some(Err(RpcError::ConnectionLost { .. }))),
        "{:?}",
        rest.last()
    );
}

#[tokio::test]
async fn a_caller_streams_its_argument() {
    let (server, _imp, client) = feed_server().await;
    // Far more than the window: credit flows back as the handler reads.
    let total = client.sum(Streaming::from_iter(1..=1000)).await.unwrap();
    assert_eq!(total, Ok(500_500));
    assert_eq!(client.sum(Streaming::empty()).await.unwrap(), Ok(0));
    server.shutdown().await;
}

#[tokio::test]
async fn an_error_in_the_callers_stream_reaches_the_handler() {
    let (server, _imp, client) = feed_server().await;
    let items = vec![
        Ok(1),
        Ok(2),
        Err(rpc_runtime::Status::invalid_argument("bad input").into()),
        Ok(100),
    ];
    let total = client
        .sum(Streaming::try_from_stream(futures::stream::iter(items)))
        .await
        .unwrap();
    let message = total.unwrap_err();
    assert!(message.contains("bad input"), "{message}");
    server.shutdown().await;
}

/// A handler that reads slowly holds the caller's producer to the window,
/// and when the call ends, the producer stops.
#[tokio::test]
async fn a_slow_handler_holds_the_callers_producer_to_the_window() {
    let (server, _imp, client) = feed_server().await;
    let produced = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(Semaphore::new(0));
    let first = client
        .first(counting_producer(produced.clone(), dropped.clone()))
        .await
        .unwrap();
    assert_eq!(first, Some(0));
    tokio::time::timeout(Duration::from_secs(2), dropped.acquire())
        .await
        .expect("the producer was not dropped when the call ended")
        .unwrap()
        .forget();
    let produced = produced.load(Ordering::SeqCst);
    assert!(
        (1..=16).contains(&produced),
        "the producer ran {produced} items ahead of a window of 16"
    );
    server.shutdown().await;
}

/// A handler that drops its caller's stream stops the caller's producer at
/// once, while the call goes on.
#[tokio::test]
async fn a_handler_that_drops_the_stream_stops_the_callers_producer() {
    let (server, _imp, client) = feed_server().await;
    let produced = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(Semaphore::new(0));
    let call = tokio::spawn({
        let client = client.clone();
        let producer = counting_producer(produced.clone(), dropped.clone());
        async move { client.ignore(producer).await }
    });
    // Well before the handler answers (it waits 300 ms).
    tokio::time::timeout(Duration::from_millis(250), dropped.acquire())
        .await
        .expect("the producer was not stopped when the handler dropped the stream")
        .unwrap()
        .forget();
    assert!(!call.is_finished());
    assert_eq!(call.await.unwrap().unwrap(), 7);
    assert!(produced.load(Ordering::SeqCst) <= 16);
    server.shutdown().await;
}

#[tokio::test]
async fn both_ways_at_once() {
    let (server, _imp, client) = feed_server().await;
    let lines = (0..100).map(|i| format!("line {i}"));
    let replies: Vec<String> = collect(
        client
            .chat("lobby".to_owned(), Streaming::from_iter(lines))
            .await
            .unwrap(),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("[lobby] line {i}")).collect();
    assert_eq!(replies, expected);

    // Interactively: one line out, its reply back, and so on.
    let (tx, rx) = futures::channel::mpsc::unbounded::<String>();
    let mut replies = client
        .chat("desk".to_owned(), Streaming::from_stream(rx))
        .await
        .unwrap();
    for i in 0..20 {
        tx.unbounded_send(format!("ping {i}")).unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(2), replies.next())
            .await
            .expect("a reply")
            .unwrap()
            .unwrap();
        assert_eq!(reply, format!("[desk] ping {i}"));
    }
    drop(tx);
    assert!(
        replies.next().await.is_none(),
        "the end of the caller's stream ends the chat"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn both_ways_in_memory() {
    let (listener, addr) = memory::listener();
    let server = Server::builder()
        .add_service(FeedServer::new(FeedImpl::new()))
        .serve(listener)
        .unwrap();
    let channel = Channel::builder()
        .connect_io(addr.connect().unwrap(), "memory")
        .await
        .unwrap();
    let client = FeedClient::new(channel);
    assert_eq!(
        client.sum(Streaming::from_iter(1..=100)).await.unwrap(),
        Ok(5050)
    );
    let replies = collect(
        client
            .chat(
                "m".to_owned(),
                Streaming::from_iter(["a".to_owned(), "b".to_owned()]),
            )
            .await
            .unwrap(),
    )
    .await;
    let replies: Vec<String> = replies.into_iter().map(Result::unwrap).collect();
    assert_eq!(replies, ["[m] a", "[m] b"]);
    server.shutdown().await;
}

/// Dropping the caller's end of a two-way call stops both producers.
#[tokio::test]
async fn dropping_a_two_way_call_stops_both_sides() {
    let (server, _imp, client) = feed_server().await;
    let dropped = Arc::new(Semaphore::new(0));
    let produced = Arc::new(AtomicU64::new(0));
    let lines = counting_producer(produced, dropped.clone()).map(|n| n.map(|n| n.to_string()));
    let mut replies = client
        .chat("x".to_owned(), Streaming::try_from_stream(lines))
        .await
        .unwrap();
    assert_eq!(replies.next().await.unwrap().unwrap(), "[x] 0");
    drop(replies);
    tokio::time::timeout(Duration::from_secs(2), dropped.acquire())
        .await
        .expect("the caller's producer was not stopped")
        .unwrap()
        .forget();
    common::until_idle(&server).await;
    server.shutdown().await;
}

/// Calling a method with a stream it does not take, or without the stream
/// it takes, fails that call with a message instead of misreading it.
#[tokio::test]
async fn a_stream_sent_to_the_wrong_method_is_refused() {
    let (server, _imp, _client) = feed_server().await;
    let channel = Channel::connect(server.local_addr()).await.unwrap();
    let options = rpc_runtime::CallOptions::new();
    let result: Result<u64, RpcError> = channel
        .call_with_stream(
            &options,
            "Feed",
            "add",
            &(1u64, 2u64),
            Streaming::from_iter([1u8]),
        )
        .await;
    assert!(
        matches!(&result, Err(RpcError::BadRequest { message }) if message.contains("takes none")),
        "{result:?}"
    );
    let result: Result<Result<i64, String>, RpcError> = channel.call("Feed", "sum", &()).await;
    assert!(
        matches!(&result, Err(RpcError::BadRequest { message }) if message.contains("sends none")),
        "{result:?}"
    );
    server.shutdown().await;
}
