//! Over NATS: our NATS transport, and its floor, a raw async-nats
//! request/reply loop carrying the same bincode payloads. Both go
//! through a `nats-server` that `run` starts on loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use futures::StreamExt;
use rpc_runtime::nats::{NatsChannel, ServeOptions};
use rpc_runtime::Server;

use crate::ours::{BenchClient, BenchServer};

/// The environment variable that tells a server process where NATS is.
pub const NATS_URL: &str = "RPC_BENCH_NATS";

/// Large enough for the bulk workload's 1 MiB payload and its header.
const MAX_PAYLOAD: usize = 8 * 1024 * 1024;

/// A `nats-server` process on loopback, killed when dropped.
pub struct NatsServer {
    child: Child,
    pub addr: SocketAddr,
}

impl NatsServer {
    pub fn start() -> Result<Self, String> {
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| {
            if std::path::Path::new("/usr/sbin/nats-server").exists() {
                "/usr/sbin/nats-server".to_owned()
            } else {
                "nats-server".to_owned()
            }
        });
        let config =
            std::env::temp_dir().join(format!("rpc-bench-nats-{}.conf", std::process::id()));
        std::fs::write(&config, format!("max_payload: {MAX_PAYLOAD}\n"))
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {binary} (install nats-server): {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or("nats-server exited before listening")?
                .map_err(|e| e.to_string())?;
            if let Some(at) = line.find("Listening for client connections on ") {
                let addr = &line[at + "Listening for client connections on ".len()..];
                break addr.trim().parse().map_err(|e| format!("{addr:?}: {e}"))?;
            }
        };
        // Keep draining its log so it never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(NatsServer { child, addr })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect_nats(addr: SocketAddr) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .client_capacity(65_536)
        .subscription_capacity(65_536)
        .connect(addr.to_string())
        .await
        .map_err(|e| e.to_string())
}

/// Serves the bench service over NATS (system `nats`) or the raw loop
/// (system `natsfloor`) until the process ends; the NATS server's address.
pub async fn serve(system: &str) -> Result<SocketAddr, String> {
    let url = std::env::var(NATS_URL).map_err(|_| format!("{NATS_URL} is not set"))?;
    let addr: SocketAddr = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    let client = connect_nats(addr).await?;
    if system == "nats" {
        let builder = Server::builder().add_service(BenchServer::new(crate::ours::Impl));
        let server = rpc_runtime::nats::serve(client, builder, ServeOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        // Serves until the process ends.
        std::mem::forget(server);
        return Ok(addr);
    }
    for (subject, add) in [("floor.add", true), ("floor.echo", false)] {
        let mut requests = client
            .queue_subscribe(subject, subject.to_owned())
            .await
            .map_err(|e| e.to_string())?;
        let client = client.clone();
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let Some(reply) = request.reply else { continue };
                let answer = if add {
                    let config = bincode::config::standard();
                    match bincode::serde::decode_from_slice::<(u64, u64), _>(
                        &request.payload,
                        config,
                    ) {
                        Ok(((a, b), _)) => bincode::serde::encode_to_vec(a.wrapping_add(b), config)
                            .map(Bytes::from)
                            .unwrap_or_default(),
                        Err(_) => Bytes::new(),
                    }
                } else {
                    request.payload
                };
                let _ = client.publish(reply, answer).await;
            }
        });
    }
    client.flush().await.map_err(|e| e.to_string())?;
    Ok(addr)
}

/// Our client over NATS.
pub async fn connect_ours(addr: SocketAddr) -> Result<BenchClient<NatsChannel>, String> {
    let client = BenchClient::new(NatsChannel::new(connect_nats(addr).await?));
    // Opens the service's link before the clock starts.
    client.add(0, 0).await.map_err(|e| e.to_string())?;
    Ok(client)
}

/// The floor's client: one NATS connection, request/reply per call.
#[derive(Clone)]
pub struct FloorClient(async_nats::Client);

pub async fn connect_floor(addr: SocketAddr) -> Result<FloorClient, String> {
    Ok(FloorClient(connect_nats(addr).await?))
}

impl FloorClient {
    pub async fn add(&self, a: u64, b: u64) -> Result<u64, String> {
        let config = bincode::config::standard();
        let args = bincode::serde::encode_to_vec((a, b), config).map_err(|e| e.to_string())?;
        let answer = self
            .0
            .request("floor.add", Bytes::from(args))
            .await
            .map_err(|e| e.to_string())?;
        bincode::serde::decode_from_slice(&answer.payload, config)
            .map(|(sum, _)| sum)
            .map_err(|e| e.to_string())
    }

    pub async fn echo(&self, data: &Bytes) -> Result<usize, String> {
        let answer = self
            .0
            .request("floor.echo", data.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(answer.payload.len())
    }
}
