//! TLS and mutual TLS with certificates made at test time: a good handshake
//! works, and a wrong CA, an expired certificate, a wrong server name and a
//! peer without TLS each fail with a clear error while the server keeps
//! serving.

use std::path::PathBuf;

use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rpc_runtime::tls::{self, rustls};
use rpc_runtime::{rpc_service, CallContext, Channel, RpcError, Server};

#[rpc_service]
trait Whoami {
    /// Adds two numbers.
    async fn add(&self, a: u64, b: u64) -> u64;
    /// The caller's verified certificate subject and DNS names, if any.
    async fn whoami(&self) -> Option<(String, Vec<String>)>;
}

struct Impl;

impl Whoami for Impl {
    async fn add(&self, a: u64, b: u64) -> u64 {
        a + b
    }
    async fn whoami(&self) -> Option<(String, Vec<String>)> {
        let cx = CallContext::current()?;
        let identity = cx.peer_identity()?;
        Some((identity.subject().to_owned(), identity.dns_names().to_vec()))
    }
}

/// A certificate authority that signs test certificates, written as PEM
/// files so the loading helpers are exercised too.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    dir: PathBuf,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "rpc-tls-{}-{}-{}",
            std::process::id(),
            name.replace(' ', "-"),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            dir,
        }
    }

    /// Writes `pem` to a file in this CA's directory; returns its path.
    fn write(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }

    fn roots(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        tls::load_certs(self.write("ca.pem", &self.cert_pem)).unwrap()
    }

    /// A certificate for `names` (subject `CN=cn`), valid now unless
    /// `expired`; returns the chain and key as loaded from PEM files.
    fn issue(
        &self,
        cn: &str,
        names: &[&str],
        expired: bool,
    ) -> (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_path = self.write(&format!("{cn}.pem"), &cert.pem());
        let key_path = self.write(&format!("{cn}.key"), &key.serialize_pem());
        (
            tls::load_certs(cert_path).unwrap(),
            tls::load_private_key(key_path).unwrap(),
        )
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

async fn tls_server(ca: &Ca, client_roots: Option<&Ca>, expired: bool) -> Server {
    let (certs, key) = ca.issue("localhost", &["localhost"], expired);
    let config = tls::server_config(certs, key, client_roots.map(Ca::roots)).unwrap();
    Server::builder()
        .add_service(WhoamiServer::new(Impl))
        .tls(config)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

async fn tls_client(server: &Server, roots: &Ca, name: &str) -> Result<WhoamiClient, RpcError> {
    let config = tls::client_config(roots.roots(), None).unwrap();
    let channel = Channel::builder()
        .reconnect(false)
        .tls(config, name)?
        .connect(server.local_addr())
        .await?;
    Ok(WhoamiClient::new(channel))
}

fn tls_message(result: Result<WhoamiClient, RpcError>) -> String {
    match result {
        Err(RpcError::Tls { message, .. }) => message,
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("expected a TLS error, got a connection"),
    }
}

#[tokio::test]
async fn calls_work_over_tls() {
    let ca = Ca::new("test ca");
    let server = tls_server(&ca, None, false).await;
    let client = tls_client(&server, &ca, "localhost").await.unwrap();
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    // Without client certificates there is no identity to see.
    assert_eq!(client.whoami().await.unwrap(), None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_signed_by_an_unknown_ca_is_refused() {
    let ca = Ca::new("test ca");
    let other = Ca::new("other ca");
    let server = tls_server(&ca, None, false).await;
    let message = tls_message(tls_client(&server, &other, "localhost").await);
    assert!(message.contains("UnknownIssuer"), "{message}");
    // The server keeps serving.
    let good = tls_client(&server, &ca, "localhost").await.unwrap();
    assert_eq!(good.add(1, 1).await.unwrap(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let ca = Ca::new("test ca");
    let server = tls_server(&ca, None, true).await;
    let message = tls_message(tls_client(&server, &ca, "localhost").await);
    assert!(message.contains("expired"), "{message}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let ca = Ca::new("test ca");
    let server = tls_server(&ca, None, false).await;
    let message = tls_message(tls_client(&server, &ca, "rpc.example.com").await);
    assert!(message.contains("not valid for name"), "{message}");
    let good = tls_client(&server, &ca, "localhost").await.unwrap();
    assert_eq!(good.add(2, 2).await.unwrap(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn a_plaintext_client_is_refused_and_the_server_keeps_serving() {
    let ca = Ca::new("test ca");
    let server = tls_server(&ca, None, false).await;
    let plain = Channel::builder()
        .reconnect(false)
        .connect(server.local_addr())
        .await;
    match plain {
        Err(RpcError::NotAServer { reason, .. }) => {
            assert!(reason.contains("TLS"), "{reason}");
        }
        other => panic!("expected NotAServer, got {other:?}"),
    }
    let good = tls_client(&server, &ca, "localhost").await.unwrap();
    assert_eq!(good.add(3, 4).await.unwrap(), 7);
    server.shutdown().await;
}

#[tokio::test]
async fn a_tls_client_against_a_plaintext_server_fails_clearly() {
    let ca = Ca::new("test ca");
    let server = Server::builder()
        .add_service(WhoamiServer::new(Impl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let result = tls_client(&server, &ca, "localhost").await;
    assert!(
        matches!(result, Err(RpcError::Tls { .. })),
        "{:?}",
        result.err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_shows_the_clients_identity_and_refuses_clients_without_one() {
    let ca = Ca::new("test ca");
    let clients = Ca::new("clients ca");
    let server = tls_server(&ca, Some(&clients), false).await;

    let identity = clients.issue("alice", &["alice.example.com"], false);
    let config = tls::client_config(ca.roots(), Some(identity)).unwrap();
    let channel = Channel::builder()
        .tls(config, "localhost")
        .unwrap()
        .connect(server.local_addr())
        .await
        .unwrap();
    let alice = WhoamiClient::new(channel);
    let (subject, names) = alice.whoami().await.unwrap().expect("an identity");
    assert_eq!(subject, "CN=alice");
    assert_eq!(names, ["alice.example.com"]);

    // No client certificate, or one from a CA the server does not trust.
    let anonymous = tls_client(&server, &ca, "localhost").await;
    assert!(
        matches!(&anonymous, Err(RpcError::Tls { message, .. }) if message.contains("CertificateRequired")),
        "{:?}",
        anonymous.err()
    );
    let stranger = Ca::new("stranger ca").issue("mallory", &["mallory.example.com"], false);
    let config = tls::client_config(ca.roots(), Some(stranger)).unwrap();
    let result = Channel::builder()
        .reconnect(false)
        .tls(config, "localhost")
        .unwrap()
        .connect(server.local_addr())
        .await;
    assert!(
        matches!(result, Err(RpcError::Tls { .. })),
        "{:?}",
        result.err()
    );

    // Alice is still served.
    assert_eq!(alice.add(5, 6).await.unwrap(), 11);
    server.shutdown().await;
}

#[test]
fn loading_missing_or_empty_files_fails_with_the_path() {
    let missing = tls::load_certs("/nonexistent/certs.pem").unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/certs.pem"),
        "{missing}"
    );
    let dir = std::env::temp_dir().join(format!("rpc-tls-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let error = tls::load_certs(&empty).unwrap_err();
    assert!(error.to_string().contains("no certificate"), "{error}");
    assert!(tls::load_private_key(&empty).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
