//! A server session over the frame-native in-memory link, fed a valid
//! greeting and then an arbitrary sequence of well-formed (and some not)
//! messages, on tokio's paused clock: requests of every kind and flag,
//! cancels, credits, stream items and ends, pings, goodbyes, stray
//! responses, raw frames and pauses. Random bytes rarely get past the
//! greeting; these inputs start where the session does. The server must
//! answer or close, never panic or hang, and shut down afterwards.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rpc_runtime::link::{memory, Link};
use rpc_runtime::service::Bytes;
use rpc_runtime::{rpc_service, Server, Streaming};

#[rpc_service]
trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn slow(&self, ms: u16) -> u16;
    async fn count(&self, n: u32) -> Streaming<u32>;
    async fn total(&self, values: Streaming<u32>) -> u64;
    #[rpc(oneway)]
    async fn note(&self, line: String);
}

struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    async fn slow(&self, ms: u16) -> u16 {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
        ms
    }
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n.min(64))
    }
    async fn total(&self, mut values: Streaming<u32>) -> u64 {
        use futures::StreamExt;
        let mut total = 0u64;
        while let Some(Ok(v)) = values.next().await {
            total += u64::from(v);
        }
        total
    }
    async fn note(&self, _line: String) {}
}

/// A method to call, by wire name (some the service lacks).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Method {
    Add,
    Slow,
    Count,
    Total,
    Note,
    Unknown,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Add => "add",
            Method::Slow => "slow",
            Method::Count => "count",
            Method::Total => "total",
            Method::Note => "note",
            Method::Unknown => "nope",
        }
    }
}

/// One step of the dialer.
#[derive(Arbitrary, Debug)]
enum Step {
    Request {
        id: u16,
        method: Method,
        unknown_service: bool,
        timeout_ms: Option<u16>,
        flags: u8,
        metadata: Option<Vec<(String, String)>>,
        body: Vec<u8>,
    },
    Cancel(u16),
    Credit(u16, u32),
    Item(u16, Vec<u8>),
    End(u16, Option<(u8, String)>),
    Ping(u64),
    Pong(u64),
    Goodbye(u8, String),
    Response(u16),
    Head(u16),
    Raw(Vec<u8>),
    Wait(u16),
}

fn varint(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(0xfb);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(0xfc);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(0xfd);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn status(out: &mut Vec<u8>, error: &Option<(u8, String)>) {
    match error {
        None => out.push(0),
        Some((code, message)) => {
            out.push(1);
            varint(out, u64::from(*code));
            string(out, message);
        }
    }
}

/// The frame payload of a step (`None` for a pause).
fn frame(step: &Step) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match step {
        Step::Request {
            id,
            method,
            unknown_service,
            timeout_ms,
            flags,
            metadata,
            body,
        } => {
            out.push(0);
            varint(&mut out, u64::from(*id));
            let service = if *unknown_service { "Other" } else { "Calculator" };
            out.extend_from_slice(&rpc_runtime::method_id(service, method.name()).to_le_bytes());
            // Milliseconds (unit 1); 0 ms is no time left.
            match timeout_ms {
                None => out.push(0),
                Some(ms) => varint(&mut out, u64::from(*ms) << 2 | 1),
            }
            let flags = if metadata.is_some() { flags | 8 } else { flags & !8 };
            out.push(flags);
            if let Some(entries) = metadata {
                varint(&mut out, entries.len() as u64);
                for (key, value) in entries {
                    string(&mut out, key);
                    out.push(0);
                    string(&mut out, value);
                }
            }
            out.extend_from_slice(body);
        }
        Step::Cancel(id) => {
            out.push(3);
            varint(&mut out, u64::from(*id));
        }
        Step::Credit(id, items) => {
            out.push(7);
            varint(&mut out, u64::from(*id));
            varint(&mut out, u64::from(*items));
        }
        Step::Item(id, body) => {
            out.push(6);
            varint(&mut out, u64::from(*id));
            out.extend_from_slice(body);
        }
        Step::End(id, error) => {
            out.push(8);
            varint(&mut out, u64::from(*id));
            status(&mut out, error);
        }
        Step::Ping(nonce) => {
            out.push(4);
            varint(&mut out, *nonce);
        }
        Step::Pong(nonce) => {
            out.push(5);
            varint(&mut out, *nonce);
        }
        Step::Goodbye(code, message) => {
            out.push(2);
            varint(&mut out, u64::from(*code));
            string(&mut out, message);
        }
        Step::Head(id) => {
            out.push(9);
            varint(&mut out, u64::from(*id));
        }
        Step::Response(id) => {
            out.push(1);
            varint(&mut out, u64::from(*id));
            out.push(0);
        }
        Step::Raw(bytes) => out.extend_from_slice(bytes),
        Step::Wait(_) => return None,
    }
    Some(out)
}

/// A dialer's greeting: `RRPC`, role 0, version 2, 16 MiB frames, serves
/// nothing.
const HELLO: [u8; 12] = [b'R', b'R', b'P', b'C', 0, 2, 0xfc, 0, 0, 0, 1, 0];

fuzz_target!(|steps: Vec<Step>| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (listener, addr) = memory::listener();
        let server = Server::builder()
            .add_service(CalculatorServer::new(Calc))
            .max_in_flight(4)
            .max_frame_length(64 * 1024)
            .serve_links(listener)
            .expect("a server");
        let mut link = addr.connect().expect("a link");
        if link.send(Bytes::from_static(&HELLO)).await.is_err() {
            return;
        }
        // The server's greeting.
        let _ = tokio::time::timeout(Duration::from_secs(1), link.recv(64)).await;
        let (mut reader, mut writer) = link.split(1 << 20, 64 * 1024);
        use futures::{SinkExt, StreamExt};
        for step in steps.iter().take(256) {
            match frame(step) {
                Some(payload) => {
                    // A server that closed or stopped reading ends the run.
                    let sent =
                        tokio::time::timeout(Duration::from_secs(1), writer.send(Bytes::from(payload)))
                            .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
                None => {
                    if let Step::Wait(ms) = step {
                        tokio::time::sleep(Duration::from_millis(u64::from(*ms))).await;
                    }
                }
            }
            // Take what the server has answered so far.
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(1), reader.next()).await
            {}
        }
        // Whatever state the session is in, shutdown ends it (the grace
        // period is 30 s on the paused clock).
        drop(writer);
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), reader.next()).await
        {}
        tokio::time::timeout(Duration::from_secs(60), server.shutdown())
            .await
            .expect("the server shut down");
    });
});
