//! Adding trailing `#[rpc(default)]` arguments without breaking deployed
//! peers: an older client's request ends before them, and the server fills
//! in `Default::default()`; an older server refuses a newer client's extra
//! arguments with `BadRequest`. Two versions of one trait, over real sockets.

use rpc_runtime::{rpc_service, Channel, RpcError, Server};

/// Version 1, as deployed.
#[rpc_service(name = "Search")]
pub trait SearchV1 {
    /// Titles matching `query`.
    async fn search(&self, query: String) -> Vec<String>;
}

/// Version 2: two arguments added at the end.
#[rpc_service(name = "Search")]
pub trait SearchV2 {
    /// Titles matching `query`, at most `limit` of them (0: no limit), only
    /// exact matches if `exact`.
    async fn search(
        &self,
        query: String,
        #[rpc(default)] limit: u32,
        #[rpc(default)] exact: bool,
    ) -> Vec<String>;
}

const TITLES: [&str; 4] = ["dune", "dune messiah", "children of dune", "emma"];

struct V1;
impl SearchV1 for V1 {
    async fn search(&self, query: String) -> Vec<String> {
        TITLES
            .iter()
            .filter(|t| t.contains(query.as_str()))
            .map(|t| (*t).to_owned())
            .collect()
    }
}

struct V2;
impl SearchV2 for V2 {
    async fn search(&self, query: String, limit: u32, exact: bool) -> Vec<String> {
        let found = TITLES
            .iter()
            .filter(|t| {
                if exact {
                    **t == query
                } else {
                    t.contains(query.as_str())
                }
            })
            .map(|t| (*t).to_owned());
        match limit {
            0 => found.collect(),
            n => found.take(n as usize).collect(),
        }
    }
}

async fn serve_v1() -> Server {
    Server::builder()
        .add_service(SearchV1Server::new(V1))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

async fn serve_v2() -> Server {
    Server::builder()
        .add_service(SearchV2Server::new(V2))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn an_old_client_works_with_a_new_server() {
    let server = serve_v2().await;
    let old = SearchV1Client::new(Channel::connect(server.local_addr()).await.unwrap());
    // limit 0 and exact false: every title containing "dune".
    assert_eq!(old.search("dune".into()).await.unwrap().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_client_sends_the_new_arguments() {
    let server = serve_v2().await;
    let new = SearchV2Client::new(Channel::connect(server.local_addr()).await.unwrap());
    assert_eq!(new.search("dune".into(), 2, false).await.unwrap().len(), 2);
    assert_eq!(new.search("dune".into(), 0, true).await.unwrap(), ["dune"]);
    assert_eq!(new.search("dune".into(), 0, false).await.unwrap().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn an_old_server_refuses_a_new_clients_extra_arguments() {
    let server = serve_v1().await;
    let new = SearchV2Client::new(Channel::connect(server.local_addr()).await.unwrap());
    let refused = new.search("dune".into(), 2, true).await;
    assert!(
        matches!(refused, Err(RpcError::BadRequest { .. })),
        "{refused:?}"
    );
    server.shutdown().await;
}
