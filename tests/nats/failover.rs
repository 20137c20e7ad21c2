//! Servers and NATS servers that go away: calls that were in flight keep
//! their promises (an idempotent call goes again, another fails and never
//! runs twice), and calls resume.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpc_runtime::RpcError;
use tokio::task::JoinSet;

use crate::common::nats::NatsProcess;
use crate::replica::{
    channel, client, connect, replicas, serve_one, until, ReplicaClient, Seen, PROMPT,
};

/// Every id run by any server, with repeats.
fn all_hits(seen: &[Arc<Seen>]) -> Vec<u64> {
    seen.iter()
        .flat_map(|s| s.hits.lock().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn a_server_killed_mid_run_loses_no_idempotent_call_and_runs_nothing_twice() {
    let nats = NatsProcess::start();
    let (mut servers, seen) = replicas(&nats, 3).await;
    // Server 0 answers slowly, so calls are in flight on it when it dies.
    seen[0].delay_ms.store(300, Ordering::SeqCst);
    let client = client(&nats).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for worker in 0..12u64 {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut results = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::SeqCst);
                if id >= 600 {
                    return results;
                }
                // Half the workers make idempotent calls.
                let result = if worker % 2 == 0 {
                    client.fetch(id).await.map(|n| (true, n))
                } else {
                    client.hit(id).await.map(|n| (false, n))
                };
                results.push((id, worker % 2 == 0, result));
            }
        });
    }
    // Once server 0 holds calls of both kinds, it dies.
    until(&seen[0], || {
        seen[0].hits.lock().unwrap().len() >= 2 && seen[0].fetches.load(Ordering::SeqCst) >= 2
    })
    .await;
    let killed = Instant::now();
    servers.remove(0).abort().await;
    let mut lost = 0;
    let mut answered = HashSet::new();
    let mut slowest = Duration::ZERO;
    while let Some(results) = tasks.join_next().await {
        for (id, idempotent, result) in results.unwrap() {
            match result {
                Ok(_) => {
                    answered.insert(id);
                }
                Err(error) => {
                    assert!(!idempotent, "idempotent call {id} failed: {error:?}");
                    assert!(
                        matches!(&error, RpcError::ConnectionLost { .. }),
                        "call {id}: {error:?}"
                    );
                    assert!(error.to_string().contains("may have run"), "{error}");
                    lost += 1;
                }
            }
        }
        slowest = slowest.max(killed.elapsed());
    }
    println!("after the kill: {lost} non-idempotent calls failed; all done {slowest:?} after it");
    assert!(lost > 0, "calls were in flight on the server that died");
    assert_eq!(answered.len() + lost, 600);
    // No non-idempotent call ran twice.
    let hits = all_hits(&seen);
    let unique: HashSet<u64> = hits.iter().copied().collect();
    assert_eq!(unique.len(), hits.len(), "a call ran twice");
}

#[tokio::test]
async fn a_server_shutting_down_hands_its_calls_to_the_others() {
    let nats = NatsProcess::start();
    let (mut servers, seen) = replicas(&nats, 2).await;
    let client = client(&nats).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for worker in 0..8u64 {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut failed = 0;
            loop {
                let id = next.fetch_add(1, Ordering::SeqCst);
                if id >= 2000 {
                    return failed;
                }
                if worker % 2 == 0 {
                    client
                        .fetch(id)
                        .await
                        .expect("no idempotent call fails during a graceful shutdown");
                } else if let Err(error) = client.hit(id).await {
                    // NATS may drop a call on its way to the server that is
                    // leaving; nobody can tell whether it ran, and the
                    // error says so.
                    assert!(error.to_string().contains("may have run"), "{error}");
                    failed += 1;
                }
            }
        });
    }
    until(&seen[0], || seen[0].hits.lock().unwrap().len() >= 100).await;
    servers.remove(0).shutdown().await;
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        failed += done.unwrap();
    }
    println!("graceful shutdown: {failed} of ~1000 non-idempotent calls lost on their way");
    let hits = all_hits(&seen);
    assert_eq!(
        hits.iter().copied().collect::<HashSet<_>>().len(),
        hits.len()
    );
    assert!(failed <= 10, "{failed} calls lost to a graceful shutdown");
}

/// Calls `fetch` until one succeeds, within `PROMPT`; how long it took.
async fn until_answered(client: &ReplicaClient<rpc_runtime::nats::NatsChannel>) -> Duration {
    let started = Instant::now();
    loop {
        match client.fetch(0).await {
            Ok(_) => return started.elapsed(),
            Err(error) => {
                assert!(
                    started.elapsed() < PROMPT * 2,
                    "calls never resumed: {error:?}"
                );
                assert!(
                    matches!(
                        error,
                        RpcError::ConnectionLost { .. } | RpcError::Unavailable { .. }
                    ),
                    "{error:?}"
                );
                // NATS gives no event to wait for: look again shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn calls_resume_after_the_nats_server_restarts() {
    let mut nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    assert_eq!(client.hit(1).await.unwrap(), 0);
    nats.restart();
    let resumed = until_answered(&client).await;
    println!("calls resumed {resumed:?} after the NATS server restarted");
    assert_eq!(client.hit(2).await.unwrap(), 0);
}

#[tokio::test]
async fn calls_cross_a_cluster_and_fail_over_to_the_other_node() {
    let a = NatsProcess::clustered("rpc-test", &[]);
    let b = NatsProcess::clustered("rpc-test", &[a.route_port.expect("a route port")]);
    // One server on each node; the client on node A, knowing both.
    let (_on_a, seen_a) = serve_one(&a, 0).await;
    let (_on_b, seen_b) = serve_one(&b, 1).await;
    let nats = async_nats::ConnectOptions::new()
        .retain_servers_order()
        .connect(
            [a.url(), b.url()]
                .map(|url| {
                    url.parse::<async_nats::ServerAddr>()
                        .expect("a NATS address")
                })
                .as_slice(),
        )
        .await
        .expect("connect to the cluster");
    let client = ReplicaClient::new(channel(nats));
    // The node learns of the other's subscriptions through its route.
    let targeted = ReplicaClient::new(channel(connect(&a).await).instance("replica-1").unwrap());
    until_answered(&targeted).await;
    assert_eq!(
        targeted.hit(10).await.unwrap(),
        1,
        "a call crossed the cluster"
    );
    for id in 100..200 {
        client.hit(id).await.unwrap();
    }
    assert!(!seen_b.hits.lock().unwrap().is_empty());
    // The client's node dies: the client moves to node B (and so does
    // server 0, which learned of node B from node A).
    let mut a = a;
    let before = seen_a.hits.lock().unwrap().len() + seen_b.hits.lock().unwrap().len();
    a.kill();
    let resumed = until_answered(&client).await;
    println!("calls resumed {resumed:?} after the client's NATS node died");
    for id in 200..300 {
        client.hit(id).await.expect("calls go on through node B");
    }
    let after = seen_a.hits.lock().unwrap().len() + seen_b.hits.lock().unwrap().len();
    assert_eq!(after - before, 100);
}
