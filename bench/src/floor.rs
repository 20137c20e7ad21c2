//! The raw floor: tokio, `LengthDelimitedCodec`, bincode, request ids and
//! batched flushes, and nothing else — what any framework on this design
//! has to add its features on top of.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

#[derive(Serialize, Deserialize)]
enum Request {
    Add(u64, u64),
    Echo(#[serde(with = "serde_bytes")] Vec<u8>),
}

#[derive(Serialize, Deserialize)]
enum Response {
    Add(u64),
    Echo(#[serde(with = "serde_bytes")] Vec<u8>),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(64 << 20)
        .new_codec()
}

fn encode<T: Serialize>(id: u64, value: &T) -> Bytes {
    let mut out = bincode::serde::encode_to_vec(id, config()).unwrap_or_default();
    let body = bincode::serde::encode_to_vec(value, config()).unwrap_or_default();
    out.extend_from_slice(&body);
    Bytes::from(out)
}

fn decode<T: serde::de::DeserializeOwned>(frame: &[u8]) -> Option<(u64, T)> {
    let (id, used): (u64, usize) = bincode::serde::decode_from_slice(frame, config()).ok()?;
    let (value, _): (T, usize) =
        bincode::serde::decode_from_slice(frame.get(used..)?, config()).ok()?;
    Some((id, value))
}

/// Serves until the process ends: one task per connection, answering in
/// place and flushing only when no further request is already buffered.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let (r, w) = stream.into_split();
            let mut reader = FramedRead::new(r, codec());
            let mut writer = FramedWrite::new(w, codec());
            while let Some(Ok(frame)) = reader.next().await {
                let mut frame: BytesMut = frame;
                loop {
                    let Some((id, request)) = decode::<Request>(&frame) else {
                        return;
                    };
                    let response = match request {
                        Request::Add(a, b) => Response::Add(a.wrapping_add(b)),
                        Request::Echo(data) => Response::Echo(data),
                    };
                    if writer.feed(encode(id, &response)).await.is_err() {
                        return;
                    }
                    match reader.next().now_or_never() {
                        Some(Some(Ok(next))) => frame = next,
                        Some(_) => return,
                        None => break,
                    }
                }
                if SinkExt::<Bytes>::flush(&mut writer).await.is_err() {
                    return;
                }
            }
        });
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>;

/// A multiplexed connection: a writer task that batches, a reader task that
/// matches answers to callers by id.
#[derive(Clone)]
pub struct FloorClient {
    queue: mpsc::Sender<Bytes>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

/// One connection.
pub async fn connect(addr: SocketAddr) -> std::io::Result<FloorClient> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    let (queue, mut rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(async move {
        let mut writer = FramedWrite::new(w, codec());
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 64).await > 0 {
            for frame in batch.drain(..) {
                if writer.feed(frame).await.is_err() {
                    return;
                }
            }
            if rx.is_empty() {
                // One turn for the callers to add to the batch before the
                // system call: without it, a write per call.
                tokio::task::yield_now().await;
                if rx.is_empty() && SinkExt::<Bytes>::flush(&mut writer).await.is_err() {
                    return;
                }
            }
        }
    });
    let pending: Pending = Arc::default();
    let reader_pending = pending.clone();
    tokio::spawn(async move {
        let mut reader = FramedRead::new(r, codec());
        while let Some(Ok(frame)) = reader.next().await {
            let frame = frame.freeze();
            let Ok((id, used)) = bincode::serde::decode_from_slice::<u64, _>(&frame, config())
            else {
                return;
            };
            let waiter = reader_pending
                .lock()
                .map(|mut p| p.remove(&id))
                .ok()
                .flatten();
            if let Some(waiter) = waiter {
                let _ = waiter.send(frame.slice(used..));
            }
        }
    });
    Ok(FloorClient {
        queue,
        pending,
        next_id: Arc::new(AtomicU64::new(0)),
    })
}

impl FloorClient {
    async fn call(&self, request: &Request) -> Option<Response> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().ok()?.insert(id, tx);
        self.queue.send(encode(id, request)).await.ok()?;
        let body = rx.await.ok()?;
        bincode::serde::decode_from_slice(&body, config())
            .ok()
            .map(|(r, _)| r)
    }

    /// A small call.
    pub async fn add(&self, a: u64, b: u64) -> Option<u64> {
        match self.call(&Request::Add(a, b)).await? {
            Response::Add(sum) => Some(sum),
            Response::Echo(_) => None,
        }
    }

    /// A bulk call.
    pub async fn echo(&self, data: Vec<u8>) -> Option<Vec<u8>> {
        match self.call(&Request::Echo(data)).await? {
            Response::Echo(data) => Some(data),
            Response::Add(_) => None,
        }
    }
}
