//! Calls over NATS: queue groups that share calls, every kind of call,
//! deadlines and cancels that reach the handler, the errors NATS itself
//! reports, targeted calls, and stream credit.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::nats::NatsChannel;
use rpc_runtime::{RpcError, Streaming};
use tokio::task::JoinSet;

use crate::common::nats::NatsProcess;
use crate::replica::{client, connect, replicas, until, OddNumber, ReplicaClient, PROMPT};

#[tokio::test]
async fn three_servers_in_a_queue_group_share_3000_calls() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 3).await;
    let client = client(&nats).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let mut answered = Vec::new();
            loop {
                let id = next.fetch_add(1, Ordering::SeqCst);
                if id >= 3000 {
                    return answered;
                }
                answered.push(client.hit(id).await.expect("every call succeeds"));
            }
        });
    }
    let mut shares = [0usize; 3];
    while let Some(answered) = tasks.join_next().await {
        for number in answered.unwrap() {
            shares[number as usize] += 1;
        }
    }
    println!("shares of 3000 calls over three servers: {shares:?}");
    assert_eq!(shares.iter().sum::<usize>(), 3000);
    for (number, share) in shares.iter().enumerate() {
        assert!(*share > 0, "server {number} took no call: {shares:?}");
        assert_eq!(seen[number].hits.lock().unwrap().len(), *share);
    }
    // Every call ran exactly once.
    let ran: HashSet<u64> = seen
        .iter()
        .flat_map(|s| s.hits.lock().unwrap().clone())
        .collect();
    assert_eq!(ran.len(), 3000);
}

#[tokio::test]
async fn no_server_for_the_service_fails_at_once_with_its_own_error() {
    let nats = NatsProcess::start();
    let client = client(&nats).await;
    let started = std::time::Instant::now();
    let error = client.hit(1).await.expect_err("nobody serves it");
    assert!(
        matches!(&error, RpcError::Unavailable { message } if message.contains("Replica")),
        "{error:?}"
    );
    // Not the call's deadline (PROMPT): NATS says so at once.
    assert!(started.elapsed() < PROMPT / 2, "{:?}", started.elapsed());
    // Idempotent calls too: nothing to retry on.
    let error = client.fetch(1).await.expect_err("nobody serves it");
    assert!(matches!(error, RpcError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn every_kind_of_call_works_over_nats() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;

    assert_eq!(client.hit(7).await.unwrap(), 0);
    assert_eq!(client.fetch(8).await.unwrap(), 0);

    client.note(9).await.unwrap();
    until(&seen[0], || seen[0].hits.lock().unwrap().contains(&9)).await;

    let items: Vec<u32> = client
        .count(100)
        .await
        .unwrap()
        .map(|item| item.unwrap())
        .collect()
        .await;
    assert_eq!(items, (0..100).collect::<Vec<_>>());

    let sent = Streaming::from_stream(futures::stream::iter(1..=100u64));
    assert_eq!(client.total(sent).await.unwrap(), (5050, 0));

    let sent = Streaming::from_stream(futures::stream::iter(1..=50u64));
    let doubled: Vec<u64> = client
        .double(sent)
        .await
        .unwrap()
        .map(|item| item.unwrap())
        .collect()
        .await;
    assert_eq!(doubled, (1..=50u64).map(|i| i * 2).collect::<Vec<_>>());

    assert_eq!(client.even(4).await.unwrap(), Ok(4));
    assert_eq!(client.even(5).await.unwrap(), Err(OddNumber(5)));

    let value = client
        .with_metadata("tenant", "blue")
        .header("tenant".to_owned())
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_deadline_stops_the_handler_and_fails_the_call() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let quick = client.with_timeout(Duration::from_millis(200));
    let error = quick.stall().await.expect_err("never answers");
    assert!(
        matches!(error, RpcError::DeadlineExceeded { .. }),
        "{error:?}"
    );
    until(&seen[0], || seen[0].stopped.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test]
async fn dropping_a_call_stops_its_handler() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.stall().await }
    });
    until(&seen[0], || seen[0].stalled.load(Ordering::SeqCst) == 1).await;
    call.abort();
    until(&seen[0], || seen[0].stopped.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test]
async fn a_call_over_max_payload_fails_alone_and_unsent() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    // nats-server's default max_payload is 1 MiB.
    let error = client
        .echo(vec![7; 2 * 1024 * 1024])
        .await
        .expect_err("too large for NATS");
    assert!(matches!(error, RpcError::FrameTooLarge { .. }), "{error:?}");
    // The channel goes on.
    assert_eq!(client.echo(vec![7; 1000]).await.unwrap(), 1000);
}

#[tokio::test]
async fn a_targeted_call_reaches_the_named_server() {
    let nats = NatsProcess::start();
    let (servers, seen) = replicas(&nats, 3).await;
    let client = client(&nats).await;
    let instance = servers[2].instance();
    assert_eq!(instance, "replica-2");
    let channel = NatsChannel::builder(connect(&nats).await)
        .timeout(PROMPT)
        .build()
        .unwrap()
        .instance(&instance)
        .unwrap();
    let targeted = ReplicaClient::new(channel);
    for id in 0..50 {
        assert_eq!(targeted.hit(id).await.unwrap(), 2);
    }
    assert_eq!(seen[2].hits.lock().unwrap().len(), 50);
    // A stream, pinned to it as well.
    let items = targeted.count(20).await.unwrap().count().await;
    assert_eq!(items, 20);
    drop(client);
    // A server by a name nobody has.
    let nobody = ReplicaClient::new(
        NatsChannel::new(connect(&nats).await)
            .instance("replica-9")
            .unwrap(),
    );
    let error = nobody.hit(1).await.expect_err("no such server");
    assert!(matches!(error, RpcError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_slow_consumer_holds_the_server_stream_within_its_window() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let mut stream = client.count(1000).await.unwrap();
    // Take a few, then stop reading: the server produces no more than the
    // stream's window ahead.
    for expected in 0..5 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let produced = seen[0].produced.load(Ordering::SeqCst);
    assert!(
        produced <= 5 + 16 + 16,
        "the server ran ahead of its credit: {produced} items produced"
    );
    // Reading on, everything arrives.
    let rest = stream.count().await;
    assert_eq!(rest, 995);
}

#[tokio::test]
async fn a_handler_sees_the_caller_by_its_inbox_and_cannot_call_back() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let client = client(&nats).await;
    let (peer, can_call_back) = client.origin().await.unwrap();
    assert!(peer.starts_with("broker inbox _INBOX."), "{peer}");
    assert!(!can_call_back, "callers over NATS serve no callbacks");
}

#[tokio::test]
async fn a_plain_nats_request_is_answered_on_its_own_reply_subject() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    for id in [1u8, 3] {
        // `hit(40 + id)` as docs/PROTOCOL.md section 10 describes it: the
        // frame without its length prefix, sent with a stock request (whose
        // reply subject does not end in the call's id).
        let frame = crate::common::wire::request_to("Replica", id, "hit", &[40 + id]);
        let answer = tokio::time::timeout(
            PROMPT,
            plain.request("rpc.call.Replica", frame[4..].to_vec().into()),
        )
        .await
        .expect("an answer in time")
        .expect("an answer");
        // Response (variant 1) to `id`, status Ok (0), the server's number 0.
        assert_eq!(&answer.payload[..], [1, id, 0, 0]);
    }
    assert_eq!(*seen[0].hits.lock().unwrap(), [41, 43]);
}
