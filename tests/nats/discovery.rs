//! Every server at once: fanout over the fanout subject, and what NATS
//! tooling sees of the servers through the micro discovery protocol.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::service::{Info, PingResponse, Stats};
use futures::StreamExt;
use rpc_runtime::RpcError;

use crate::common::nats::NatsProcess;
use crate::replica::{client, connect, replicas, until, PROMPT};

/// The first `n` answers to a request on `subject`.
async fn gather(nats: &async_nats::Client, subject: &str, n: usize) -> Vec<bytes::Bytes> {
    let inbox = nats.new_inbox();
    let mut answers = nats.subscribe(inbox.clone()).await.unwrap();
    nats.publish_with_reply(subject.to_owned(), inbox, bytes::Bytes::new())
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < n {
        let answer = tokio::time::timeout(PROMPT, answers.next())
            .await
            .unwrap_or_else(|_| panic!("{n} answers on {subject}, got {}", got.len()))
            .unwrap();
        got.push(answer.payload);
    }
    got
}

#[tokio::test]
async fn a_fanout_reaches_all_three_servers() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 3).await;
    let client = client(&nats).await;
    let replies = client.fanout().hit(5).await;
    let names: Vec<&str> = replies.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["replica-0", "replica-1", "replica-2"]);
    for (number, (_, answer)) in replies.iter().enumerate() {
        assert_eq!(*answer.as_ref().unwrap(), number as u32);
        assert_eq!(*seen[number].hits.lock().unwrap(), [5]);
    }
    // One-way: every server runs it.
    let sent = client.fanout().note(6).await;
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|(_, result)| result.is_ok()));
    for s in &seen {
        until(s, || s.hits.lock().unwrap().contains(&6)).await;
    }
}

#[tokio::test]
async fn a_fanout_lists_a_server_that_does_not_answer_in_time() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 2).await;
    seen[1].delay_ms.store(2_000, Ordering::SeqCst);
    let client = client(&nats).await.with_timeout(Duration::from_millis(300));
    let replies = client.fanout().fetch(1).await;
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].1.as_ref().copied().unwrap(), 0);
    assert!(
        matches!(replies[1].1, Err(RpcError::DeadlineExceeded { .. })),
        "{:?}",
        replies[1]
    );
}

#[tokio::test]
async fn nats_tooling_discovers_the_services_and_their_endpoints() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 2).await;
    let client = client(&nats).await;
    for id in 0..10 {
        client.hit(id).await.unwrap();
    }
    let tool = connect(&nats).await;

    // Two servers, each with the test's service and the health and
    // reflection services.
    let pings = gather(&tool, "$SRV.PING", 6).await;
    let mut seen: Vec<(String, String)> = pings
        .iter()
        .map(|ping| {
            let ping: PingResponse = serde_json::from_slice(ping).expect("a micro ping response");
            (ping.name, ping.id)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("Replica".to_owned(), "replica-0".to_owned()),
            ("Replica".to_owned(), "replica-1".to_owned()),
            ("rpc_health_v1_Health".to_owned(), "replica-0".to_owned()),
            ("rpc_health_v1_Health".to_owned(), "replica-1".to_owned()),
            (
                "rpc_reflection_v1_Reflection".to_owned(),
                "replica-0".to_owned()
            ),
            (
                "rpc_reflection_v1_Reflection".to_owned(),
                "replica-1".to_owned()
            ),
        ]
    );

    let info = gather(&tool, "$SRV.INFO.Replica.replica-1", 1).await;
    let info: Info = serde_json::from_slice(&info[0]).expect("a micro info response");
    assert_eq!(info.id, "replica-1");
    let mut endpoints: Vec<&str> = info.endpoints.iter().map(|e| e.name.as_str()).collect();
    endpoints.sort_unstable();
    assert_eq!(
        endpoints,
        [
            "count", "double", "echo", "even", "evens", "fetch", "header", "hit", "note", "origin",
            "stall", "total"
        ]
    );
    assert!(info
        .endpoints
        .iter()
        .all(|e| e.subject == "rpc.call.Replica" && e.queue_group == "Replica"));

    // Every call is counted once, by the server that ran it.
    let mut hits = 0;
    for stats in gather(&tool, "$SRV.STATS.Replica", 2).await {
        let stats: Stats = serde_json::from_slice(&stats).expect("a micro stats response");
        let hit = stats.endpoints.iter().find(|e| e.name == "hit").unwrap();
        hits += hit.requests;
        assert_eq!(hit.errors, 0);
    }
    assert_eq!(hits, 10);
}
