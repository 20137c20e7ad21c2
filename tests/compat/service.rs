//! The service of the compatibility suite, and the calls that check it.
//!
//! This one file compiles twice: into `tests/compat.rs`, against the
//! current runtime, and into the peer (`peer/main.rs`), against the runtime
//! of the old commit. So both sides agree on every wire name by
//! construction, and only API that both runtimes have may appear here.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::{rpc_service, Code, RpcError, Status, Streaming};
use serde::{Deserialize, Serialize};

/// An application error, carried inside the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MathError {
    /// Division by zero.
    DivideByZero,
}

#[rpc_service]
pub trait Compat {
    /// A plain call.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// An application error.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// The name of `key`, or a `NOT_FOUND` status with the key as details.
    async fn lookup(&self, key: u32) -> Result<String, Status>;
    /// One-way: adds `n` to the notes.
    #[rpc(oneway)]
    async fn note(&self, n: u64);
    /// The sum of the notes so far.
    async fn noted(&self) -> u64;
    /// `0..n`.
    async fn count(&self, n: u32) -> Streaming<u32>;
    /// `0..n`, then the stream ends with a `RESOURCE_EXHAUSTED` status.
    async fn count_then_fail(&self, n: u32) -> Streaming<u32>;
    /// The sum of the caller's stream.
    async fn total(&self, values: Streaming<u32>) -> u32;
    /// Both ways: each value of the caller's stream times `factor`.
    async fn scale(&self, factor: u32, values: Streaming<u32>) -> Streaming<u32>;
    /// A large payload, back as it came.
    async fn echo(&self, bytes: Vec<u8>) -> Vec<u8>;
    /// The protocol version and whether zstd was settled, as the server
    /// sees the connection; `None` from a server that cannot tell.
    async fn negotiated(&self) -> Option<(u32, bool)>;
}

/// What a server knows of the connection of the call it runs.
pub type Negotiated = fn() -> Option<(u32, bool)>;

/// The implementation both builds serve.
#[derive(Clone)]
pub struct Impl {
    notes: Arc<AtomicU64>,
    negotiated: Negotiated,
}

impl Impl {
    pub fn new(negotiated: Negotiated) -> Impl {
        Impl {
            notes: Arc::default(),
            negotiated,
        }
    }
}

impl Compat for Impl {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError> {
        a.checked_div(b).ok_or(MathError::DivideByZero)
    }
    async fn lookup(&self, key: u32) -> Result<String, Status> {
        match key {
            1 => Ok("one".to_owned()),
            _ => {
                Err(Status::not_found(format!("no key {key}"))
                    .with_details(key.to_le_bytes().to_vec()))
            }
        }
    }
    async fn note(&self, n: u64) {
        self.notes.fetch_add(n, Ordering::SeqCst);
    }
    async fn noted(&self) -> u64 {
        self.notes.load(Ordering::SeqCst)
    }
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(0..n)
    }
    async fn count_then_fail(&self, n: u32) -> Streaming<u32> {
        let items = (0..n)
            .map(Ok)
            .chain([Err(Status::resource_exhausted("ran dry").into())]);
        Streaming::try_from_stream(futures::stream::iter(items))
    }
    async fn total(&self, values: Streaming<u32>) -> u32 {
        values
            .filter_map(|v| async move { v.ok() })
            .fold(0, |sum, v| async move { sum + v })
            .await
    }
    async fn scale(&self, factor: u32, values: Streaming<u32>) -> Streaming<u32> {
        Streaming::try_from_stream(values.map(move |v| v.map(|v| v * factor)))
    }
    async fn echo(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }
    async fn negotiated(&self) -> Option<(u32, bool)> {
        (self.negotiated)()
    }
}

/// The size of the large payload: compressed when both sides accept zstd.
pub const LARGE: usize = 64 * 1024;

/// `len` bytes of text, which compresses well.
pub fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// How long any one call (with its streams) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the call `name` (within [`CALL_TIMEOUT`]); its error names it.
async fn call<T>(name: &str, call: impl Future<Output = Result<T, RpcError>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(format!("{name}: {error:?}")),
        Err(_) => Err(format!("{name}: no answer within {CALL_TIMEOUT:?}")),
    }
}

/// Checks that `name` answered `want`.
fn expect<T: PartialEq + std::fmt::Debug>(name: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{name}: got {got:?}, expected {want:?}"))
    }
}

/// The items of an answer stream, within [`CALL_TIMEOUT`] from the call.
async fn items<T>(
    name: &str,
    stream: impl Future<Output = Result<Streaming<T>, RpcError>>,
) -> Result<Vec<Result<T, RpcError>>, String> {
    call(name, async { Ok(stream.await?.collect::<Vec<_>>().await) }).await
}

/// The values of `items`, or the first error.
fn values<T>(name: &str, items: Vec<Result<T, RpcError>>) -> Result<Vec<T>, String> {
    items
        .into_iter()
        .map(|item| item.map_err(|e| format!("{name}: an item failed: {e:?}")))
        .collect()
}

/// Makes every kind of call through `client` and checks each answer; an
/// error names the call that failed. Returns what the server says it
/// negotiated (see [`Compat::negotiated`]).
pub async fn check_calls<C: rpc_runtime::Invoke>(
    client: &CompatClient<C>,
) -> Result<Option<(u32, bool)>, String> {
    check(client, true).await
}

/// [`check_calls`] through a channel that spreads calls over several
/// servers (a NATS queue group): the one-way calls are sent, but where
/// they landed cannot be added up.
pub async fn check_spread_calls<C: rpc_runtime::Invoke>(
    client: &CompatClient<C>,
) -> Result<Option<(u32, bool)>, String> {
    check(client, false).await
}

async fn check<C: rpc_runtime::Invoke>(
    client: &CompatClient<C>,
    one_server: bool,
) -> Result<Option<(u32, bool)>, String> {
    expect("add", call("add", client.add(2, 40)).await?, 42)?;
    expect("divide", call("divide", client.divide(7, 2)).await?, Ok(3))?;
    expect(
        "divide by zero",
        call("divide", client.divide(1, 0)).await?,
        Err(MathError::DivideByZero),
    )?;

    expect(
        "lookup",
        call("lookup", client.lookup(1)).await?,
        "one".to_owned(),
    )?;
    match tokio::time::timeout(CALL_TIMEOUT, client.lookup(9)).await {
        Ok(Err(RpcError::Status(status))) => expect(
            "lookup's status",
            (status.code(), status.message(), status.details().as_ref()),
            (Code::NOT_FOUND, "no key 9", &9u32.to_le_bytes()[..]),
        )?,
        other => {
            return Err(format!(
                "lookup(9): expected a NOT_FOUND status, got {other:?}"
            ))
        }
    }

    for n in [1, 2, 3] {
        call("note", client.note(n)).await?;
    }
    // A one-way call's effect shows after it has run, not when it was sent.
    let noted = tokio::time::timeout(CALL_TIMEOUT, async {
        if !one_server {
            return Ok(());
        }
        loop {
            match client.noted().await {
                Ok(6) => return Ok(()),
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(error) => return Err(format!("noted: {error:?}")),
            }
        }
    });
    noted
        .await
        .map_err(|_| "note: the notes did not add up to 6 in time".to_owned())??;

    // More items than a stream's window, so credit is granted on the way.
    let counted = values("count", items("count", client.count(100)).await?)?;
    expect("count", counted, (0..100).collect())?;
    let mut failed = items("count_then_fail", client.count_then_fail(3)).await?;
    match failed.pop() {
        Some(Err(RpcError::Status(status))) => expect(
            "count_then_fail's status",
            (status.code(), status.message()),
            (Code::RESOURCE_EXHAUSTED, "ran dry"),
        )?,
        other => {
            return Err(format!(
                "count_then_fail: expected a status last, got {other:?}"
            ))
        }
    }
    expect(
        "count_then_fail",
        values("count_then_fail", failed)?,
        vec![0, 1, 2],
    )?;

    let total = call("total", client.total(Streaming::from_iter(1..=1000))).await?;
    expect("total", total, 500_500)?;
    let scaled = values(
        "scale",
        items("scale", client.scale(3, Streaming::from_iter(0..50))).await?,
    )?;
    expect("scale", scaled, (0..50).map(|v| v * 3).collect())?;

    let payload = text(LARGE);
    let echoed = call("echo", client.echo(payload.clone())).await?;
    if echoed != payload {
        return Err(format!(
            "echo: {} bytes came back unlike the {} sent",
            echoed.len(),
            payload.len()
        ));
    }

    call("negotiated", client.negotiated()).await
}
