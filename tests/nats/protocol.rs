//! Section 10 of docs/PROTOCOL.md as a client in another language meets
//! it: raw frames over a stock NATS client, and the server's answers to
//! requests of other versions, requests nobody can be answered for,
//! frames that do not decode, and its shutdown.

use std::time::Duration;

use async_nats::service::Info;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;

use crate::common::nats::NatsProcess;
use crate::common::wire::{request_to, request_with};
use crate::replica::{connect, replicas, serve_one, PROMPT};

/// The payload of a request frame: the frame without its length prefix.
fn payload(frame: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&frame[4..])
}

/// The next message on `subscription`, within the tests' bound.
async fn next(subscription: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(PROMPT, subscription.next())
        .await
        .expect("a message in time")
        .expect("the subscription is open")
}

/// Publishes `frame` (a request of call `id`) to the Replica service's
/// call subject, with the reply subject `<inbox>.<id>`.
async fn send(nats: &async_nats::Client, inbox: &str, id: u8, frame: &[u8]) {
    nats.publish_with_reply("rpc.call.Replica", format!("{inbox}.{id}"), payload(frame))
        .await
        .unwrap();
}

/// `<inbox>.*` of a new inbox, subscribed, and the inbox.
async fn inbox(nats: &async_nats::Client) -> (String, async_nats::Subscriber) {
    let inbox = nats.new_inbox();
    let subscription = nats.subscribe(format!("{inbox}.*")).await.unwrap();
    nats.flush().await.unwrap();
    (inbox, subscription)
}

#[tokio::test]
async fn a_request_says_its_version_in_a_header_and_others_are_refused() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    let (inbox, mut answers) = inbox(&plain).await;
    // Versions 3 and 4 are run; no header means version 3. Version 9, and
    // a header that is no number, are refused with code 7, unrun, naming
    // the versions the server speaks.
    let cases = [
        (1u8, Some("3"), None),
        (3, Some("4"), None),
        (5, None, None),
        (7, Some("9"), Some(7u8)),
        (9, Some("four"), Some(7)),
    ];
    for (id, version, refused) in cases {
        let mut headers = HeaderMap::new();
        if let Some(version) = version {
            headers.insert("Rpc-Version", version);
        }
        let frame = request_to("Replica", id, "hit", &[40 + id]);
        plain
            .publish_with_reply_and_headers(
                "rpc.call.Replica",
                format!("{inbox}.{id}"),
                headers,
                payload(&frame),
            )
            .await
            .unwrap();
        let answer = next(&mut answers).await;
        match refused {
            // Response (1), id, status Ok (0), the server's number 0.
            None => assert_eq!(&answer.payload[..], [1, id, 0, 0], "{version:?}"),
            // Response (1), id, status Error (1), the code, the message.
            Some(code) => {
                assert_eq!(&answer.payload[..4], [1, id, 1, code], "{answer:?}");
                let text = String::from_utf8_lossy(&answer.payload);
                assert!(text.contains("speaks versions 3 to 4"), "{text}");
            }
        }
    }
    assert_eq!(*seen[0].hits.lock().unwrap(), [41, 43, 45]);
}

#[tokio::test]
async fn discovery_says_the_versions_and_limits_a_greeting_would() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let tool = connect(&nats).await;
    let answer = tokio::time::timeout(
        PROMPT,
        tool.request("$SRV.INFO.Replica.replica-0", Bytes::new()),
    )
    .await
    .expect("an answer in time")
    .unwrap();
    let info: Info = serde_json::from_slice(&answer.payload).unwrap();
    let metadata = |key: &str| info.metadata.get(key).map(String::as_str);
    assert_eq!(metadata("rpc.oldest_version"), Some("3"));
    assert_eq!(metadata("rpc.version"), Some("4"));
    assert_eq!(metadata("rpc.extensions"), Some(""));
    assert_eq!(metadata("rpc.max_in_flight"), Some("1024"));
    // The server's 16 MiB frame limit, cut to what NATS carries (1 MiB by
    // default).
    let max_payload = tool.server_info().max_payload;
    assert_eq!(
        metadata("rpc.max_frame_length"),
        Some(max_payload.min(16 << 20).to_string().as_str())
    );
}

#[tokio::test]
async fn only_a_one_way_request_may_come_without_a_reply_subject() {
    let nats = NatsProcess::start();
    let (servers, seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    // `hit(41)` wants an answer but has nowhere to get it: not run, and no
    // session is opened for it.
    let frame = request_to("Replica", 1, "hit", &[41]);
    plain
        .publish("rpc.call.Replica", payload(&frame))
        .await
        .unwrap();
    // Then `hit(45)` from an inbox: once it is answered, the server has
    // read the first (NATS keeps one publisher's order).
    let (inbox, mut answers) = inbox(&plain).await;
    let frame = request_to("Replica", 5, "hit", &[45]);
    send(&plain, &inbox, 5, &frame).await;
    assert_eq!(&next(&mut answers).await.payload[..], [1, 5, 0, 0]);
    assert_eq!(servers[0].callers(), 1, "a session for the first request");
    assert_eq!(*seen[0].hits.lock().unwrap(), [45]);
    // `note(43)`, one-way (flag 1), needs no reply subject: run.
    let frame = request_with("Replica", 3, "note", None, 1, &[43]);
    plain
        .publish("rpc.call.Replica", payload(&frame))
        .await
        .unwrap();
    crate::replica::until(&seen[0], || seen[0].hits.lock().unwrap().len() == 2).await;
    assert_eq!(*seen[0].hits.lock().unwrap(), [45, 43]);
}

#[tokio::test]
async fn a_frame_that_does_not_decode_ends_the_callers_session_with_goodbye_8() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    let (inbox, mut answers) = inbox(&plain).await;
    // With no session yet, and again after a call opened one.
    for round in 0..2u8 {
        if round == 1 {
            let id = 1;
            let frame = request_to("Replica", id, "hit", &[41]);
            send(&plain, &inbox, id, &frame).await;
            assert_eq!(&next(&mut answers).await.payload[..], [1, id, 0, 0]);
        }
        // A request cut off in its method id.
        plain
            .publish_with_reply(
                "rpc.call.Replica",
                format!("{inbox}.3"),
                Bytes::from_static(&[0, 3, 0x85]),
            )
            .await
            .unwrap();
        let goodbye = next(&mut answers).await;
        assert_eq!(goodbye.subject.as_str(), format!("{inbox}.0"));
        // Goodbye (2), code 8.
        assert_eq!(&goodbye.payload[..2], [2, 8], "{goodbye:?}");
    }
    assert_eq!(*seen[0].hits.lock().unwrap(), [41]);
}

#[tokio::test]
async fn at_shutdown_every_caller_with_a_session_gets_goodbye_6() {
    let nats = NatsProcess::start();
    let (server, _seen) = serve_one(&nats, 0).await;
    let plain = connect(&nats).await;
    let (inbox, mut answers) = inbox(&plain).await;
    let frame = request_to("Replica", 1, "hit", &[41]);
    send(&plain, &inbox, 1, &frame).await;
    assert_eq!(&next(&mut answers).await.payload[..], [1, 1, 0, 0]);
    // No call of this caller runs now; its session lasts until the idle
    // timeout (60 s) or the shutdown.
    tokio::time::timeout(PROMPT, server.shutdown())
        .await
        .expect("a shutdown in time");
    let goodbye = next(&mut answers).await;
    assert_eq!(goodbye.subject.as_str(), format!("{inbox}.0"));
    // Goodbye (2), code 6: shutting down.
    assert_eq!(&goodbye.payload[..2], [2, 6], "{goodbye:?}");
    // Nothing more.
    let more = tokio::time::timeout(Duration::from_millis(100), answers.next()).await;
    assert!(more.is_err(), "{more:?}");
}

#[tokio::test]
async fn a_request_with_an_even_id_ends_the_session_with_goodbye_8() {
    let nats = NatsProcess::start();
    let (_servers, seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    let (inbox, mut answers) = inbox(&plain).await;
    // Ids are odd from a caller (section 3): 2 is the server's own kind.
    let frame = request_to("Replica", 2, "hit", &[42]);
    send(&plain, &inbox, 2, &frame).await;
    let goodbye = next(&mut answers).await;
    assert_eq!(goodbye.subject.as_str(), format!("{inbox}.0"));
    assert_eq!(&goodbye.payload[..2], [2, 8], "{goodbye:?}");
    assert!(seen[0].hits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_health_service_answers_over_nats() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    // `check("Replica")`: the argument is one string.
    let frame = request_to("rpc.health.v1.Health", 1, "check", b"\x07Replica");
    let answer = tokio::time::timeout(
        PROMPT,
        plain.request("rpc.call.rpc.health.v1.Health", payload(&frame)),
    )
    .await
    .expect("an answer in time")
    .expect("an answer");
    // Response (1), id 1, Ok (0), `Serving` (variant 0).
    assert_eq!(&answer.payload[..], [1, 1, 0, 0]);
}

#[tokio::test]
async fn a_refusable_stream_without_accept_streams_without_head_and_names_accept_when_refused() {
    let nats = NatsProcess::start();
    let (_servers, _seen) = replicas(&nats, 1).await;
    let plain = connect(&nats).await;
    let (inbox, mut answers) = inbox(&plain).await;
    // `evens(2)` with STREAM_OUT (4) and no ACCEPT: accepted, so its items
    // and its end, and no `Head` (section 5.8).
    let frame = request_with("Replica", 1, "evens", None, 4, &[2]);
    send(&plain, &inbox, 1, &frame).await;
    let mut got = Vec::new();
    while got.last().is_none_or(|frame: &Bytes| frame[0] != 1) {
        let message = next(&mut answers).await;
        // A claim (`Credit` of 0) may come first if the server was slow.
        if message.payload[..] != [7, 1, 0] {
            got.push(message.payload);
        }
    }
    assert_eq!(got, [&[6, 1, 0][..], &[6, 1, 1], &[1, 1, 0]]);
    // `evens(3)`: refused, and the caller, who did not set ACCEPT, is
    // told what it would have needed.
    let frame = request_with("Replica", 3, "evens", None, 4, &[3]);
    send(&plain, &inbox, 3, &frame).await;
    let answer = loop {
        let message = next(&mut answers).await;
        if message.payload[..] != [7, 3, 0] {
            break message;
        }
    };
    assert_eq!(&answer.payload[..4], [1, 3, 1, 3], "{answer:?}");
    let text = String::from_utf8_lossy(&answer.payload);
    assert!(text.contains("ACCEPT"), "{text}");
}
