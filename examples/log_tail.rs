//! A server stream: a client follows a log that the server appends to, the
//! way `tail -f` does, in one process.
//!
//! ```text
//! cargo run --example log_tail
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_runtime::{rpc_service, RpcError, Server, Status, StreamExt, Streaming};
use tokio::sync::broadcast;

/// A log that clients can follow.
#[rpc_service]
pub trait Log {
    /// Appends a line.
    async fn append(&self, line: String);
    /// The last `back` lines, then every new line as it is appended.
    async fn follow(&self, back: u32) -> Streaming<String>;
}

/// The lines so far, and a channel that announces new ones.
struct MemoryLog {
    lines: Mutex<Vec<String>>,
    appended: broadcast::Sender<String>,
}

/// The log, shared by every call.
#[derive(Clone)]
struct SharedLog(Arc<MemoryLog>);

impl Log for SharedLog {
    async fn append(&self, line: String) {
        let mut lines = self.0.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.push(line.clone());
        // Nobody following is fine.
        let _ = self.0.appended.send(line);
    }

    async fn follow(&self, back: u32) -> Streaming<String> {
        // Subscribe before reading the backlog, so no line falls between.
        let new_lines = self.0.appended.subscribe();
        let backlog: Vec<String> = {
            let lines = self.0.lines.lock().unwrap_or_else(|e| e.into_inner());
            let from = lines.len().saturating_sub(back as usize);
            lines.get(from..).unwrap_or_default().to_vec()
        };
        let live = futures::stream::unfold(new_lines, |mut rx| async move {
            match rx.recv().await {
                Ok(line) => Some((Ok(line), rx)),
                // A follower that fell a whole channel behind is told so;
                // its stream ends there.
                Err(broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(RpcError::from(Status::resource_exhausted(format!(
                        "fell behind by {n} lines"
                    )))),
                    rx,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Streaming::try_from_stream(futures::stream::iter(backlog.into_iter().map(Ok)).chain(live))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (appended, _) = broadcast::channel(1024);
    let log = SharedLog(Arc::new(MemoryLog {
        lines: Mutex::new(Vec::new()),
        appended,
    }));
    let server = Server::builder()
        .add_service(LogServer::new(log))
        .bind("127.0.0.1:0")
        .await?;
    let client = LogClient::connect(server.local_addr()).await?;

    for i in 1..=5 {
        client.append(format!("boot step {i}")).await?;
    }
    // The last two lines, then whatever comes next; a long deadline, since
    // a follow runs for as long as it is read.
    let mut tail = client
        .with_timeout(Duration::from_secs(3600))
        .follow(2)
        .await?;
    let writer = tokio::spawn({
        let client = client.clone();
        async move {
            for i in 1..=3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                client.append(format!("request {i} served")).await?;
            }
            Ok::<_, RpcError>(())
        }
    });
    for _ in 0..5 {
        match tail.next().await {
            Some(line) => println!("tail: {}", line?),
            None => break,
        }
    }
    // Dropping the stream stops the follow on the server.
    drop(tail);
    writer.await??;
    server.shutdown().await;
    Ok(())
}
