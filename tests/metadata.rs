//! Per-call metadata and interceptors: metadata reaches the handler,
//! interceptors (per server and per service) refuse calls with typed errors,
//! values stay out of `Debug`, and oversized metadata is refused without
//! harming the connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rpc_runtime::{
    rpc_service, CallContext, CallInfo, Channel, Intercepted, Metadata, MetadataValue, RpcError,
    Server,
};

#[rpc_service]
trait Echo {
    /// The value of metadata entry `key`: text, or bytes.
    async fn header(&self, key: String) -> Option<(Option<String>, Vec<u8>)>;
    /// How many metadata entries the call carried.
    async fn count(&self) -> usize;
}

#[rpc_service]
trait Admin {
    /// Only for admins.
    async fn reset(&self) -> bool;
}

#[derive(Clone, Default)]
struct Impl {
    ran: Arc<AtomicUsize>,
}

impl Echo for Impl {
    async fn header(&self, key: String) -> Option<(Option<String>, Vec<u8>)> {
        self.ran.fetch_add(1, Ordering::SeqCst);
        let cx = CallContext::current()?;
        let value = cx.metadata().get(&key)?;
        Some((value.as_str().map(str::to_owned), value.as_bytes().to_vec()))
    }
    async fn count(&self) -> usize {
        self.ran.fetch_add(1, Ordering::SeqCst);
        CallContext::current().map_or(0, |cx| cx.metadata().len())
    }
}

impl Admin for Impl {
    async fn reset(&self) -> bool {
        self.ran.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// Bearer-token authentication: a token is required, and must be known.
fn bearer(call: &CallInfo<'_>) -> Result<(), RpcError> {
    match call
        .metadata
        .get("authorization")
        .and_then(MetadataValue::as_str)
    {
        Some("Bearer user-token" | "Bearer admin-token") => Ok(()),
        Some(_) => Err(RpcError::Unauthenticated {
            message: "unknown token".to_owned(),
        }),
        None => Err(RpcError::Unauthenticated {
            message: "no bearer token".to_owned(),
        }),
    }
}

/// Authorization for the admin service: the admin token only.
fn admins_only(call: &CallInfo<'_>) -> Result<(), RpcError> {
    match call
        .metadata
        .get("authorization")
        .and_then(MetadataValue::as_str)
    {
        Some("Bearer admin-token") => Ok(()),
        _ => Err(RpcError::PermissionDenied {
            message: format!("{}.{} is for admins", call.service, call.method),
        }),
    }
}

#[tokio::test]
async fn metadata_reaches_the_handler() {
    let imp = Impl::default();
    let server = Server::builder()
        .add_service(EchoServer::new(imp.clone()))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = EchoClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(client.count().await.unwrap(), 0);
    assert_eq!(client.header("x-user".into()).await.unwrap(), None);

    let tagged = client
        .with_metadata("x-user", "ada")
        .with_metadata("trace-bin", vec![0u8, 1, 255]);
    assert_eq!(
        tagged.header("x-user".into()).await.unwrap(),
        Some((Some("ada".to_owned()), b"ada".to_vec()))
    );
    assert_eq!(
        tagged.header("trace-bin".into()).await.unwrap(),
        Some((None, vec![0, 1, 255]))
    );
    assert_eq!(tagged.count().await.unwrap(), 2);
    // The original client is unchanged, and shares the connection.
    assert_eq!(client.count().await.unwrap(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_interceptor_refuses_calls_without_credentials() {
    let imp = Impl::default();
    let server = Server::builder()
        .add_service(EchoServer::new(imp.clone()))
        .intercept(bearer)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = EchoClient::connect(server.local_addr()).await.unwrap();

    let anonymous = client.count().await;
    assert!(
        matches!(&anonymous, Err(RpcError::Unauthenticated { message }) if message == "no bearer token"),
        "{anonymous:?}"
    );
    let forged = client
        .with_metadata("authorization", "Bearer guessed")
        .count()
        .await;
    assert!(
        matches!(&forged, Err(RpcError::Unauthenticated { message }) if message == "unknown token"),
        "{forged:?}"
    );
    assert_eq!(imp.ran.load(Ordering::SeqCst), 0, "no handler ran");

    let user = client.with_metadata("authorization", "Bearer user-token");
    assert_eq!(user.count().await.unwrap(), 1);
    assert_eq!(imp.ran.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_service_interceptor_guards_only_its_service() {
    let imp = Impl::default();
    let server = Server::builder()
        .add_service(EchoServer::new(imp.clone()))
        .add_service(Intercepted::new(AdminServer::new(imp.clone()), admins_only))
        .intercept(bearer)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let channel = Channel::connect(server.local_addr()).await.unwrap();
    let user_echo =
        EchoClient::new(channel.clone()).with_metadata("authorization", "Bearer user-token");
    let user_admin =
        AdminClient::new(channel.clone()).with_metadata("authorization", "Bearer user-token");
    let admin = AdminClient::new(channel).with_metadata("authorization", "Bearer admin-token");

    assert_eq!(user_echo.count().await.unwrap(), 1);
    let denied = user_admin.reset().await;
    assert!(
        matches!(&denied, Err(RpcError::PermissionDenied { message }) if message == "Admin.reset is for admins"),
        "{denied:?}"
    );
    assert!(admin.reset().await.unwrap());
    // The server's interceptor runs first: no token is unauthenticated, not
    // denied.
    let anonymous = AdminClient::new(Channel::connect(server.local_addr()).await.unwrap())
        .reset()
        .await;
    assert!(
        matches!(anonymous, Err(RpcError::Unauthenticated { .. })),
        "{anonymous:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_metadata_is_refused_and_the_connection_goes_on() {
    let imp = Impl::default();
    let server = Server::builder()
        .add_service(EchoServer::new(imp.clone()))
        .max_metadata_size(1024)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = EchoClient::connect(server.local_addr()).await.unwrap();
    let big = client.with_metadata("blob", vec![7u8; 4096]);
    let refused = big.count().await;
    assert!(
        matches!(&refused, Err(RpcError::BadRequest { message }) if message.contains("1024")),
        "{refused:?}"
    );
    assert_eq!(imp.ran.load(Ordering::SeqCst), 0);
    // Within the limit, on the same connection.
    let small = client.with_metadata("blob", vec![7u8; 512]);
    assert_eq!(small.count().await.unwrap(), 1);
    server.shutdown().await;
}

#[test]
fn metadata_values_stay_out_of_debug() {
    let metadata = Metadata::new()
        .with("authorization", "Bearer s3cr3t")
        .with("key-bin", vec![0xde_u8, 0xad]);
    let shown = format!("{metadata:?}");
    assert!(shown.contains("authorization"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(!shown.contains("222"), "{shown}");
    let opted_in = format!("{:?}", metadata.debug_values());
    assert!(opted_in.contains("s3cr3t"), "{opted_in}");
    let options = rpc_runtime::CallOptions::new().metadata("authorization", "Bearer s3cr3t");
    assert!(!format!("{options:?}").contains("s3cr3t"));
}
