//! Compatibility with older releases: the current build against a peer
//! built from commit 6f8a126, the oldest supported (protocol version 3),
//! each way round, over TCP, a Unix socket and TLS, with compression on
//! and off on both sides, and over NATS; and both builds serving side by
//! side, as in a rolling upgrade (one NATS queue group, one balanced
//! channel).
//!
//! A current listener answers a version-3 dialer in version 3's own
//! layout; a current dialer that meets a version-3 listener dials again
//! with a version-3 greeting. Either way every kind of call in
//! `compat/service.rs` works, and the current side reports version 3, with
//! zstd settled exactly when both sides accept it.
//!
//! Building the peer takes minutes, so these tests are ignored by default;
//! `.ci/run` runs them with `cargo test --test compat -- --ignored`.

#[path = "compat/build.rs"]
mod build;
#[path = "common/nats.rs"]
#[allow(dead_code)]
mod nats_process;
#[path = "compat/old.rs"]
mod old;
#[path = "compat/service.rs"]
mod service;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rpc_runtime::{tls, CallContext, Channel, Compression, Extension, Server};
use service::{check_calls, check_spread_calls, CompatClient, CompatServer, Impl};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    Tcp,
    Unix,
    Tls,
}

/// One cell of the matrix, but for the direction.
#[derive(Clone, Copy, Debug)]
struct Case {
    transport: Transport,
    /// Compression on (zstd accepted and sent) on both sides, or off.
    compression: bool,
}

impl Case {
    fn compression(self) -> Compression {
        if self.compression {
            Compression::default()
        } else {
            Compression::disabled()
        }
    }

    /// What either side reports it settled on: version 3, and zstd when
    /// both sides accept it.
    fn settled(self) -> (u32, bool) {
        (3, self.compression)
    }
}

/// A directory of one case's files (a socket, certificates), removed on
/// drop.
struct Scratch {
    case: Case,
    dir: PathBuf,
}

impl Scratch {
    /// The directory for `case` in `direction`, with certificates for TLS.
    fn new(case: Case, direction: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "rpc-compat-{}-{:?}-{}-{direction}",
            std::process::id(),
            case.transport,
            case.compression
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a scratch directory");
        if case.transport == Transport::Tls {
            write_certificates(&dir);
        }
        Scratch { case, dir }
    }

    /// Where a server of this case listens on a Unix socket.
    fn socket(&self) -> PathBuf {
        self.dir.join("server.sock")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The peer's arguments for this case, but for `--addr`.
    fn peer_args(&self, serve: bool) -> Vec<String> {
        let transport = match self.case.transport {
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
            Transport::Tls => "tls",
        };
        let compression = if self.case.compression { "on" } else { "off" };
        let mut args = vec![
            "--transport".to_owned(),
            transport.to_owned(),
            "--compression".to_owned(),
            compression.to_owned(),
        ];
        let mut file = |option: &str, name: &str| {
            args.push(option.to_owned());
            args.push(self.file(name).display().to_string());
        };
        match (self.case.transport, serve) {
            (Transport::Tls, true) => {
                file("--cert", "server.pem");
                file("--key", "server.key");
            }
            (Transport::Tls, false) => file("--ca", "ca.pem"),
            (Transport::Unix, true) => file("--addr", "server.sock"),
            _ => {}
        }
        args
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A CA (`ca.pem`) and a certificate it signed for `localhost`
/// (`server.pem`, `server.key`), in `dir`.
fn write_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "compat ca");
    let ca_cert = ca.self_signed(&ca_key).expect("a CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server parameters")
        .signed_by(&key, &issuer)
        .expect("a server certificate");
    for (name, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("server.pem", cert.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        fs::write(dir.join(name), pem).expect("write a certificate");
    }
}

/// What the current runtime tells a handler about its connection.
fn current_negotiated() -> Option<(u32, bool)> {
    let negotiated = CallContext::current()?.negotiated();
    Some((
        negotiated.version(),
        negotiated.extensions().contains(Extension::ZSTD),
    ))
}

/// Stops a server of the current build.
type Stop = Box<dyn FnOnce() -> BoxFuture<'static, ()>>;

/// A server of the current build for `scratch`'s case: its address, and
/// how to stop it.
async fn new_server(scratch: &Scratch) -> (String, Stop) {
    let builder = Server::builder()
        .add_service(CompatServer::new(Impl::new(current_negotiated)))
        .compression(scratch.case.compression());
    let builder = match scratch.case.transport {
        Transport::Unix => {
            let path = scratch.socket();
            let server = builder.bind_unix(&path).expect("bind a Unix socket");
            return (
                path.display().to_string(),
                Box::new(move || Box::pin(server.shutdown())),
            );
        }
        Transport::Tcp => builder,
        Transport::Tls => {
            let certs = tls::load_certs(scratch.file("server.pem")).expect("the certificate");
            let key = tls::load_private_key(scratch.file("server.key")).expect("the key");
            builder.tls(tls::server_config(certs, key, None).expect("a TLS configuration"))
        }
    };
    let server = builder
        .bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    (
        server.local_addr().to_string(),
        Box::new(move || Box::pin(server.shutdown())),
    )
}

/// A channel of the current build to `addr`, for `scratch`'s case.
async fn new_channel(scratch: &Scratch, addr: &str) -> Channel {
    let builder = Channel::builder()
        .reconnect(false)
        .connect_timeout(Duration::from_secs(5))
        .compression(scratch.case.compression());
    let channel = match scratch.case.transport {
        Transport::Tcp => builder.connect(addr).await,
        Transport::Unix => builder.connect_unix(addr).await,
        Transport::Tls => {
            let roots = tls::load_certs(scratch.file("ca.pem")).expect("the CA certificate");
            let config = tls::client_config(roots, None).expect("a TLS configuration");
            let builder = builder.tls(config, "localhost").expect("a server name");
            builder.connect(addr).await
        }
    };
    channel.unwrap_or_else(|e| panic!("{:?}: connecting to the old server: {e:?}", scratch.case))
}

/// The old build's client, every kind of call, against a current server;
/// that server saw version 3.
async fn old_client_to_new_server(case: Case) {
    let peer = build::peer();
    let scratch = Scratch::new(case, "old-client");
    let (addr, stop) = new_server(&scratch).await;
    let served = old::call(peer, &scratch.peer_args(false), &addr).await;
    assert_eq!(
        served,
        format!("negotiated: {:?}", Some(case.settled())),
        "{case:?}: what the current server saw of the old client's connection"
    );
    tokio::time::timeout(Duration::from_secs(10), stop())
        .await
        .expect("the current server stopped");
}

/// A current client, every kind of call, against the old build's server;
/// the channel settled on version 3.
async fn new_client_to_old_server(case: Case) {
    let peer = build::peer();
    let scratch = Scratch::new(case, "new-client");
    let server = old::Server::start(peer, &scratch.peer_args(true)).await;
    let channel = new_channel(&scratch, &server.addr).await;
    let negotiated = channel.negotiated().expect("the channel is connected");
    assert_eq!(
        (
            negotiated.version(),
            negotiated.extensions().contains(Extension::ZSTD)
        ),
        case.settled(),
        "{case:?}: what the current client settled on with the old server"
    );
    let served = check_calls(&CompatClient::new(channel.clone()))
        .await
        .unwrap_or_else(|failed| panic!("{case:?}: {failed}"));
    // The old runtime cannot tell its handlers what was negotiated.
    assert_eq!(served, None);
    drop(channel);
    server.stop().await;
}

/// The peer's arguments over NATS at `url`.
fn nats_args(url: &str) -> Vec<String> {
    ["--transport", "nats", "--compression", "off", "--addr", url]
        .map(str::to_owned)
        .to_vec()
}

/// A server of the current build over the NATS server at `url`, named
/// `instance`.
async fn new_nats_server(url: &str, instance: &str) -> rpc_runtime::nats::NatsServer {
    let nats = async_nats::connect(url).await.expect("connect to NATS");
    let builder = Server::builder().add_service(CompatServer::new(Impl::new(current_negotiated)));
    let options = rpc_runtime::nats::ServeOptions::new().instance(instance);
    rpc_runtime::nats::serve(nats, builder, options)
        .await
        .expect("serve over NATS")
}

/// A client of the current build over the NATS server at `url`.
async fn new_nats_client(url: &str) -> CompatClient<rpc_runtime::nats::NatsChannel> {
    let nats = async_nats::connect(url).await.expect("connect to NATS");
    let channel = rpc_runtime::nats::NatsChannel::builder(nats)
        .build()
        .expect("a NATS channel");
    CompatClient::new(channel)
}

/// Over NATS, which has no greeting, a request without a version header
/// is of version 3 (PROTOCOL.md section 10.5): the old build's client and
/// the current server, and the other way round.
#[tokio::test]
#[ignore = "builds a peer from commit 6f8a126 (minutes); .ci/run runs it with --ignored"]
async fn nats_both_ways() {
    let peer = build::peer();
    let nats = nats_process::NatsProcess::start();
    let url = nats.url();
    // The old client, the current server.
    let server = new_nats_server(&url, "new").await;
    let printed = old::call(peer, &nats_args(&url), &url).await;
    assert!(
        printed.starts_with("negotiated: Some((3, false))"),
        "what the current server saw over NATS: {printed}"
    );
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("the current server stopped");
    // The current client, the old server.
    let old_server = old::Server::start(peer, &nats_args(&url)).await;
    assert_eq!(old_server.addr, "old");
    let served = check_calls(&new_nats_client(&url).await)
        .await
        .unwrap_or_else(|failed| panic!("over NATS: {failed}"));
    assert_eq!(served, None, "the old server cannot tell");
    old_server.stop().await;
}

/// A rolling upgrade: an old and a current server in one queue group, and
/// clients of both builds whose calls NATS spreads over both. Every kind
/// of call works whichever server takes it, and both take calls.
#[tokio::test]
#[ignore = "builds a peer from commit 6f8a126 (minutes); .ci/run runs it with --ignored"]
async fn a_nats_queue_group_half_upgraded() {
    let peer = build::peer();
    let nats = nats_process::NatsProcess::start();
    let url = nats.url();
    let old_server = old::Server::start(peer, &nats_args(&url)).await;
    let server = new_nats_server(&url, "new").await;
    // The current client: every kind of call, then until both servers
    // have answered (each call goes to either, at random: 64 tries).
    let client = new_nats_client(&url).await;
    check_spread_calls(&client)
        .await
        .unwrap_or_else(|failed| panic!("a mixed group: {failed}"));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        seen.insert(client.negotiated().await.expect("an answer"));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [None, Some((3, false))],
        "both servers answered the current client"
    );
    // The old client: the same, as it printed it.
    let mut spread = nats_args(&url);
    spread.extend(["--spread".to_owned(), "yes".to_owned()]);
    let printed = old::call(peer, &spread, &url).await;
    assert!(
        printed.ends_with("seen: {None, Some((3, false))}"),
        "both servers answered the old client: {printed}"
    );
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("the current server stopped");
    old_server.stop().await;
}

/// A balanced channel of the current build over an old and a current
/// server: it settles with each on its own, and calls reach both.
#[tokio::test]
#[ignore = "builds a peer from commit 6f8a126 (minutes); .ci/run runs it with --ignored"]
async fn a_balanced_channel_over_an_old_and_a_new_server() {
    let peer = build::peer();
    let case = Case {
        transport: Transport::Tcp,
        compression: true,
    };
    let scratch = Scratch::new(case, "balanced");
    let old_server = old::Server::start(peer, &scratch.peer_args(true)).await;
    let (addr, stop) = new_server(&scratch).await;
    let channel = Channel::builder()
        .connect_timeout(Duration::from_secs(5))
        .balance(rpc_runtime::balance::Discover::fixed([
            old_server.addr.clone(),
            addr.clone(),
        ]));
    let client = CompatClient::new(channel.clone());
    check_spread_calls(&client)
        .await
        .unwrap_or_else(|failed| panic!("a balanced channel: {failed}"));
    // Each server, by name: the old one cannot tell what it settled on;
    // the current one settled on version 4 with zstd.
    for (endpoint, expected) in [(&old_server.addr, None), (&addr, Some((4, true)))] {
        let one = CompatClient::new(channel.endpoint(endpoint));
        assert_eq!(
            one.negotiated().await.expect("an answer"),
            expected,
            "{endpoint}"
        );
    }
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), stop())
        .await
        .expect("the current server stopped");
    old_server.stop().await;
}

macro_rules! matrix {
    ($($name:ident: $direction:ident, $transport:ident, compression $compression:literal;)*) => {$(
        #[tokio::test]
        #[ignore = "builds a peer from commit 6f8a126 (minutes); .ci/run runs it with --ignored"]
        async fn $name() {
            $direction(Case {
                transport: Transport::$transport,
                compression: $compression,
            })
            .await;
        }
    )*};
}

matrix! {
    old_client_new_server_tcp: old_client_to_new_server, Tcp, compression true;
    old_client_new_server_tcp_uncompressed: old_client_to_new_server, Tcp, compression false;
    old_client_new_server_unix: old_client_to_new_server, Unix, compression true;
    old_client_new_server_unix_uncompressed: old_client_to_new_server, Unix, compression false;
    old_client_new_server_tls: old_client_to_new_server, Tls, compression true;
    old_client_new_server_tls_uncompressed: old_client_to_new_server, Tls, compression false;
    new_client_old_server_tcp: new_client_to_old_server, Tcp, compression true;
    new_client_old_server_tcp_uncompressed: new_client_to_old_server, Tcp, compression false;
    new_client_old_server_unix: new_client_to_old_server, Unix, compression true;
    new_client_old_server_unix_uncompressed: new_client_to_old_server, Unix, compression false;
    new_client_old_server_tls: new_client_to_old_server, Tls, compression true;
    new_client_old_server_tls_uncompressed: new_client_to_old_server, Tls, compression false;
}
