//! Scaling out with NATS: three servers of a service in one queue group
//! and a client, all through a `nats-server`. Midway one server dies
//! (aborted, as a crashed process would); the client goes on. At the end
//! it prints each server's share and what became of each kind of call:
//! idempotent ones all answered (those on the dead server were sent
//! again), others answered or failed saying they may have run, none run
//! twice.
//!
//! ```text
//! cargo run --example nats_replicas                 # starts nats-server itself
//! NATS_URL=127.0.0.1:4222 cargo run --example nats_replicas
//! ```

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_runtime::nats::{self, NatsChannel, ServeOptions};
use rpc_runtime::{rpc_service, Server};

/// A counter service, replicated.
#[rpc_service]
pub trait Counter {
    /// Records `id` (not safe to run twice); returns the server's number.
    async fn record(&self, id: u64) -> u32;
    /// Reads (safe to run twice); returns the server's number.
    #[rpc(idempotent)]
    async fn read(&self, id: u64) -> u32;
}

struct Replica {
    number: u32,
    /// Every id `record` ran with, to check none ran twice.
    recorded: Arc<Mutex<Vec<u64>>>,
}

impl Counter for Replica {
    async fn record(&self, id: u64) -> u32 {
        self.recorded.lock().unwrap().push(id);
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.number
    }

    async fn read(&self, _id: u64) -> u32 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.number
    }
}

const CALLS: u64 = 3_000;
const WORKERS: u64 = 16;

/// A `nats-server` of the example's own, killed at the end.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `nats-server` on a free loopback port; its address.
fn start_broker() -> Result<(Broker, String), Box<dyn std::error::Error>> {
    let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned());
    let binary =
        if binary == "nats-server" && std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server".to_owned()
        } else {
            binary
        };
    let mut child = Command::new(&binary)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {binary} ({e}); install nats-server or set NATS_URL"))?;
    let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let broker = Broker(child);
    let marker = "Listening for client connections on ";
    for line in lines.by_ref() {
        let line = line?;
        if let Some(at) = line.find(marker) {
            let addr = line[at + marker.len()..].trim().to_owned();
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((broker, addr));
        }
    }
    Err("nats-server exited before listening".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_broker, url) = match std::env::var("NATS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let (broker, url) = start_broker()?;
            (Some(broker), url)
        }
    };
    let mut servers = Vec::new();
    let mut recorded = Vec::new();
    for number in 0..3 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let replica = Replica {
            number,
            recorded: Arc::clone(&log),
        };
        let builder = Server::builder().add_service(CounterServer::new(replica));
        let options = ServeOptions::new().instance(format!("counter-{number}"));
        let server = nats::serve(nats::async_nats::connect(&url).await?, builder, options).await?;
        servers.push(Some(server));
        recorded.push(log);
    }
    let channel = NatsChannel::builder(nats::async_nats::connect(&url).await?)
        .timeout(Duration::from_secs(5))
        .liveness(Duration::from_millis(250))
        .build()?;
    let client = CounterClient::new(channel);

    let every = client.fanout().read(0).await;
    println!(
        "fanout reached {:?}",
        every.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );

    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let (client, next) = (client.clone(), Arc::clone(&next));
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if id >= CALLS {
                    return results;
                }
                let idempotent = worker % 2 == 0;
                let result = if idempotent {
                    client.read(id).await
                } else {
                    client.record(id).await
                };
                results.push((idempotent, result));
            }
        });
    }
    // Midway, server 0 dies.
    while next.load(std::sync::atomic::Ordering::SeqCst) < CALLS / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(server) = servers[0].take() {
        server.abort().await;
        println!("counter-0 killed after {} calls", CALLS / 2);
    }

    let mut shares = [0u64; 3];
    let (mut lost, mut answered) = (0, 0);
    while let Some(results) = workers.join_next().await {
        for (idempotent, result) in results? {
            match result {
                Ok(number) => {
                    shares[number as usize] += 1;
                    answered += 1;
                }
                Err(error) if !idempotent => {
                    lost += 1;
                    println!("a non-idempotent call failed: {error}");
                }
                Err(error) => return Err(format!("an idempotent call failed: {error}").into()),
            }
        }
    }
    let ran: Vec<u64> = recorded
        .iter()
        .flat_map(|log| log.lock().unwrap().clone())
        .collect();
    let unique: HashSet<u64> = ran.iter().copied().collect();
    println!("shares of {answered} answered calls over the three servers: {shares:?}");
    println!(
        "{lost} non-idempotent calls failed with the server that died; none ran twice: {}",
        unique.len() == ran.len()
    );
    if unique.len() != ran.len() {
        return Err("a call ran twice".into());
    }
    for server in servers.into_iter().flatten() {
        server.shutdown().await;
    }
    Ok(())
}
