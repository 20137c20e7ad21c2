//! Handlers that fail with a `Status`: one `RpcError::Status` for the
//! caller, codes clear of the runtime's, details, streams ending with a
//! status, and a status passed on from a call the handler made.

use rpc_runtime::{rpc_service, Code, RpcError, Server, Status, StreamExt, Streaming};

#[rpc_service]
trait Shelf {
    /// The book at `position`, or `NOT_FOUND` with the shelf's size as
    /// details.
    async fn title(&self, position: u32) -> Result<String, Status>;
    /// Always fails with the application's own code.
    async fn own_code(&self) -> Result<(), rpc_runtime::Status>;
    /// Titles, then the stream ends with a status.
    async fn titles_then_fail(&self) -> Streaming<String>;
    /// The total length of the titles sent; a status for an empty one.
    async fn measure(&self, titles: Streaming<String>) -> Result<u64, Status>;
    /// `title` of another shelf, passing its failure on with `?`.
    async fn relay(&self, position: u32) -> Result<String, Status>;
}

struct Books {
    titles: Vec<String>,
    other: Option<ShelfClient>,
}

impl Shelf for Books {
    async fn title(&self, position: u32) -> Result<String, Status> {
        self.titles.get(position as usize).cloned().ok_or_else(|| {
            Status::not_found(format!("no book at {position}"))
                .with_details(vec![u8::try_from(self.titles.len()).unwrap_or(u8::MAX)])
        })
    }
    async fn own_code(&self) -> Result<(), Status> {
        Err(Status::new(Code::new(4242), "mine"))
    }
    async fn titles_then_fail(&self) -> Streaming<String> {
        let items: Vec<Result<String, RpcError>> = vec![
            Ok("first".into()),
            Err(Status::resource_exhausted("out of books").into()),
        ];
        Streaming::try_from_stream(futures::stream::iter(items))
    }
    async fn measure(&self, mut titles: Streaming<String>) -> Result<u64, Status> {
        let mut total = 0;
        while let Some(title) = titles.next().await {
            let title = title?;
            if title.is_empty() {
                return Err(Status::invalid_argument("an empty title"));
            }
            total += title.len() as u64;
        }
        Ok(total)
    }
    async fn relay(&self, position: u32) -> Result<String, Status> {
        let other = self
            .other
            .as_ref()
            .ok_or_else(|| Status::internal("no other shelf"))?;
        Ok(other.title(position).await?)
    }
}

async fn shelf(titles: &[&str], other: Option<ShelfClient>) -> Server {
    Server::builder()
        .add_service(ShelfServer::new(Books {
            titles: titles.iter().map(|t| (*t).to_owned()).collect(),
            other,
        }))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

fn status_of<T: std::fmt::Debug>(result: Result<T, RpcError>) -> Status {
    match result {
        Err(RpcError::Status(status)) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

#[tokio::test]
async fn a_status_is_the_callers_error_with_its_code_message_and_details() {
    let server = shelf(&["Dune", "Emma"], None).await;
    let client = ShelfClient::connect(server.local_addr()).await.unwrap();
    // One `?` for the caller: the value itself.
    let title: String = client.title(1).await.unwrap();
    assert_eq!(title, "Emma");

    let status = status_of(client.title(7).await);
    assert_eq!(status.code(), Code::NOT_FOUND);
    assert_eq!(status.message(), "no book at 7");
    assert_eq!(&status.details()[..], &[2]);
    assert_eq!(status.to_string(), "NOT_FOUND: no book at 7");

    // An application's own code, clear of the runtime's.
    let status = status_of(client.own_code().await);
    assert_eq!(status.code().get(), 4242);
    assert!(status.details().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn streams_end_with_a_status_both_ways() {
    let server = shelf(&[], None).await;
    let client = ShelfClient::connect(server.local_addr()).await.unwrap();
    let items: Vec<_> = client.titles_then_fail().await.unwrap().collect().await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), "first");
    let status = status_of(items[1].clone());
    assert_eq!(status.code(), Code::RESOURCE_EXHAUSTED);

    let total = client
        .measure(Streaming::from_iter(["ab".to_owned(), "cde".to_owned()]))
        .await
        .unwrap();
    assert_eq!(total, 5);
    let status = status_of(
        client
            .measure(Streaming::from_iter(["ab".to_owned(), String::new()]))
            .await,
    );
    assert_eq!(status.code(), Code::INVALID_ARGUMENT);

    // The caller's stream ending with a status reaches the handler as one.
    let sent: Vec<Result<String, RpcError>> = vec![
        Ok("x".into()),
        Err(Status::aborted("caller gave up")
            .with_details(vec![9])
            .into()),
    ];
    let status = status_of(
        client
            .measure(Streaming::try_from_stream(futures::stream::iter(sent)))
            .await,
    );
    assert_eq!(status.code(), Code::ABORTED);
    assert_eq!(status.message(), "caller gave up");
    assert_eq!(&status.details()[..], &[9]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_handler_passes_a_status_on_with_question_mark() {
    let downstream = shelf(&["Dune"], None).await;
    let other = ShelfClient::connect(downstream.local_addr()).await.unwrap();
    let upstream = shelf(&[], Some(other)).await;
    let client = ShelfClient::connect(upstream.local_addr()).await.unwrap();
    assert_eq!(client.relay(0).await.unwrap(), "Dune");
    let status = status_of(client.relay(3).await);
    assert_eq!(status.code(), Code::NOT_FOUND);
    assert_eq!(&status.details()[..], &[1]);

    // A failure of the call itself becomes the closest status.
    downstream.shutdown().await;
    let status = status_of(client.relay(0).await);
    assert_eq!(status.code(), Code::UNAVAILABLE, "{status}");
    upstream.shutdown().await;
}

#[test]
fn codes_name_themselves_and_saturate() {
    assert_eq!(Code::NOT_FOUND.get(), 5);
    assert_eq!(format!("{:?}", Code::UNAVAILABLE), "UNAVAILABLE");
    assert_eq!(Code::new(77).to_string(), "code 77");
    assert_eq!(Code::new(u32::MAX).get(), Code::MAX);
    let status = Status::from(RpcError::DeadlineExceeded {
        timeout: std::time::Duration::from_secs(1),
    });
    assert_eq!(status.code(), Code::DEADLINE_EXCEEDED);
}
