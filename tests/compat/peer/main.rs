//! The peer of the compatibility suite (`tests/compat.rs`): the service of
//! `../service.rs` served or called by an older build of the runtime.
//!
//! The workspace never compiles this file: the suite builds it against the
//! runtime of an old commit, in a crate of its own under the target
//! directory (see `../build.rs` and `Cargo.toml.in`).
//!
//! ```text
//! compat-peer serve --transport tcp|unix|tls|nats --compression on|off [--addr A] [--cert F --key F]
//! compat-peer call --transport tcp|unix|tls|nats --compression on|off --addr A [--ca F] [--spread yes]
//! ```
//!
//! `serve` prints the address it listens on (over NATS, where `--addr` is
//! the NATS server's URL: its instance name) as its first line of output,
//! then serves until its standard input closes. `call` makes every kind of
//! call to the server at `--addr`, prints `negotiated: ` and what the server
//! says it negotiated, and exits 0; or names the failing call on standard
//! error and exits 1. The TLS server name is `localhost`.

#[path = "../service.rs"]
mod service;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use rpc_runtime::{nats, tls, Channel, Compression, Server};
use service::{check_calls, check_spread_calls, CompatClient, CompatServer, Impl};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compat-peer: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("no mode: serve or call")?;
    let options = Options::parse(args)?;
    match mode.as_str() {
        "serve" => serve(&options).await,
        "call" => call(&options).await,
        other => Err(format!("unknown mode {other:?}: serve or call")),
    }
}

/// The `--name value` pairs of the command line.
struct Options(HashMap<String, String>);

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = HashMap::new();
        while let Some(name) = args.next() {
            let name = name
                .strip_prefix("--")
                .ok_or(format!("not an option: {name}"))?
                .to_owned();
            let value = args.next().ok_or(format!("--{name} needs a value"))?;
            options.insert(name, value);
        }
        Ok(Options(options))
    }

    fn get(&self, name: &str) -> Result<&str, String> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or(format!("--{name} is missing"))
    }

    fn compression(&self) -> Result<Compression, String> {
        match self.get("compression")? {
            "on" => Ok(Compression::default()),
            "off" => Ok(Compression::disabled()),
            other => Err(format!("--compression {other}: on or off")),
        }
    }
}

async fn serve(options: &Options) -> Result<(), String> {
    // The old runtime cannot tell a handler what the connection settled on.
    let builder = Server::builder()
        .add_service(CompatServer::new(Impl::new(|| None)))
        .compression(options.compression()?);
    let addr = options.get("addr").unwrap_or("127.0.0.1:0");
    match options.get("transport")? {
        "tcp" => {
            let server = builder
                .bind(addr)
                .await
                .map_err(|e| format!("bind {addr}: {e}"))?;
            println!("{}", server.local_addr());
            stdin_closed().await;
            server.shutdown().await;
        }
        "tls" => {
            let certs = tls::load_certs(options.get("cert")?).map_err(|e| e.to_string())?;
            let key = tls::load_private_key(options.get("key")?).map_err(|e| e.to_string())?;
            let config = tls::server_config(certs, key, None).map_err(|e| e.to_string())?;
            let server = builder
                .tls(config)
                .bind(addr)
                .await
                .map_err(|e| format!("bind {addr}: {e}"))?;
            println!("{}", server.local_addr());
            stdin_closed().await;
            server.shutdown().await;
        }
        "unix" => {
            let server = builder
                .bind_unix(addr)
                .map_err(|e| format!("bind {addr}: {e}"))?;
            println!("{}", server.local_addr().display());
            stdin_closed().await;
            server.shutdown().await;
        }
        "nats" => {
            let nats = nats::async_nats::connect(addr)
                .await
                .map_err(|e| format!("connect to NATS at {addr}: {e}"))?;
            let options = nats::ServeOptions::new().instance("old");
            let server = nats::serve(nats, builder, options)
                .await
                .map_err(|e| format!("serve over NATS: {e}"))?;
            println!("{}", server.instance());
            stdin_closed().await;
            server.shutdown().await;
        }
        other => return Err(format!("--transport {other}: tcp, unix, tls or nats")),
    }
    Ok(())
}

/// Returns when standard input closes (the test's signal to stop), or
/// fails.
async fn stdin_closed() {
    let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
}

async fn call(options: &Options) -> Result<(), String> {
    let builder = Channel::builder()
        .reconnect(false)
        .connect_timeout(Duration::from_secs(5))
        .compression(options.compression()?);
    let addr = options.get("addr")?;
    let channel = match options.get("transport")? {
        "tcp" => builder.connect(addr).await,
        "tls" => {
            let roots = tls::load_certs(options.get("ca")?).map_err(|e| e.to_string())?;
            let config = tls::client_config(roots, None).map_err(|e| e.to_string())?;
            builder
                .tls(config, "localhost")
                .map_err(|e| e.to_string())?
                .connect(addr)
                .await
        }
        "unix" => builder.connect_unix(addr).await,
        "nats" => {
            let nats = nats::async_nats::connect(addr)
                .await
                .map_err(|e| format!("connect to NATS at {addr}: {e}"))?;
            let channel = nats::NatsChannel::builder(nats)
                .build()
                .map_err(|e| format!("a NATS channel: {e:?}"))?;
            let client = CompatClient::new(channel);
            // `--spread yes`: a queue group of several servers.
            let negotiated = if options.get("spread").is_ok_and(|spread| spread == "yes") {
                check_spread_calls(&client).await?
            } else {
                check_calls(&client).await?
            };
            // In a queue group of old and new servers, every one of them.
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..64 {
                if let Ok(one) = client.negotiated().await {
                    seen.insert(one);
                }
            }
            println!("negotiated: {negotiated:?}");
            println!("seen: {seen:?}");
            return Ok(());
        }
        other => return Err(format!("--transport {other}: tcp, unix, tls or nats")),
    }
    .map_err(|e| format!("connect to {addr}: {e:?}"))?;
    let negotiated = check_calls(&CompatClient::new(channel)).await?;
    println!("negotiated: {negotiated:?}");
    Ok(())
}
