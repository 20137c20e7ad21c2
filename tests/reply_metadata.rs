//! Metadata a handler attaches to its answer, read by the caller through a
//! `ReplyMetadata` slot: on values, errors and a stream's end, only when the
//! caller asks, and bounded.

use rpc_runtime::{
    rpc_service, CallContext, Code, ReplyMetadata, RpcError, Server, Status, StreamExt, Streaming,
};

#[rpc_service]
trait Tagged {
    /// `n` doubled, tagged with who served it.
    async fn double(&self, n: u32) -> u32;
    /// Nothing, tagged.
    async fn touch(&self);
    /// Always fails with a status, tagged.
    async fn refuse(&self) -> Result<u32, Status>;
    /// `n` items, the end tagged with how many.
    async fn items(&self, n: u32) -> Streaming<u32>;
    /// The sum of a stream, tagged.
    async fn sum(&self, numbers: Streaming<u32>) -> u32;
    /// Tags the answer with `size` bytes.
    async fn big(&self, size: u32) -> u32;
}

struct Impl;

fn tag(key: &str, value: String) {
    let cx = CallContext::current().expect("a handler has a context");
    cx.set_reply_metadata(key, value);
}

impl Tagged for Impl {
    async fn double(&self, n: u32) -> u32 {
        tag("served-by", "replica-2".into());
        tag("asked", n.to_string());
        n * 2
    }
    async fn touch(&self) {
        tag("touched", "yes".into());
    }
    async fn refuse(&self) -> Result<u32, Status> {
        tag("why", "policy".into());
        Err(Status::permission_denied("no").with_details(vec![7]))
    }
    async fn items(&self, n: u32) -> Streaming<u32> {
        tag("count", n.to_string());
        Streaming::from_iter(0..n)
    }
    async fn sum(&self, numbers: Streaming<u32>) -> u32 {
        tag("summed", "yes".into());
        numbers
            .map(|n| n.unwrap_or(0))
            .fold(0, |a, b| async move { a + b })
            .await
    }
    async fn big(&self, size: u32) -> u32 {
        tag("blob", "x".repeat(size as usize));
        size
    }
}

async fn client() -> (Server, TaggedClient) {
    let server = Server::builder()
        .add_service(TaggedServer::new(Impl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = TaggedClient::connect(server.local_addr()).await.unwrap();
    (server, client)
}

fn text(reply: &ReplyMetadata, key: &str) -> Option<String> {
    reply
        .get()
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_handler_tags_its_answer_and_the_caller_reads_it() {
    let (server, client) = client().await;
    let reply = ReplyMetadata::new();
    let tagged = client.with_reply_metadata(&reply);
    assert_eq!(tagged.double(21).await.unwrap(), 42);
    assert_eq!(text(&reply, "served-by").as_deref(), Some("replica-2"));
    assert_eq!(text(&reply, "asked").as_deref(), Some("21"));
    // A unit answer, whose value takes no bytes.
    tagged.touch().await.unwrap();
    assert_eq!(text(&reply, "touched").as_deref(), Some("yes"));
    // Without asking, the answers are the same and carry none.
    assert_eq!(client.double(2).await.unwrap(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn an_error_and_a_streams_end_carry_it_too() {
    let (server, client) = client().await;
    let reply = ReplyMetadata::new();
    let tagged = client.with_reply_metadata(&reply);
    match tagged.refuse().await {
        Err(RpcError::Status(status)) => {
            assert_eq!(status.code(), Code::PERMISSION_DENIED);
            assert_eq!(&status.details()[..], &[7]);
        }
        other => panic!("expected the status, got {other:?}"),
    }
    assert_eq!(text(&reply, "why").as_deref(), Some("policy"));

    let items: Vec<u32> = tagged
        .items(3)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(items, [0, 1, 2]);
    assert_eq!(text(&reply, "count").as_deref(), Some("3"));

    let total = tagged.sum(Streaming::from_iter([1, 2, 3])).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(text(&reply, "summed").as_deref(), Some("yes"));
    server.shutdown().await;
}

#[tokio::test]
async fn reply_metadata_is_bounded() {
    let (server, client) = client().await;
    let reply = ReplyMetadata::new();
    let tagged = client.with_reply_metadata(&reply);
    assert_eq!(tagged.big(100).await.unwrap(), 100);
    let refused = tagged.big(20_000).await;
    assert!(
        matches!(refused, Err(RpcError::Encode { .. })),
        "{refused:?}"
    );
    // The connection is fine.
    assert_eq!(tagged.double(1).await.unwrap(), 2);
    server.shutdown().await;
}
