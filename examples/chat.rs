//! A stream both ways: every client in a room sends its lines and receives
//! everyone's, over one call each, in one process.
//!
//! ```text
//! cargo run --example chat
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::{rpc_service, RpcError, Server, Streaming};
use tokio::sync::broadcast;

/// Chat rooms.
#[rpc_service]
pub trait Chat {
    /// Joins `room` as `name`: sends `lines`, receives every line said in
    /// the room from now on (one's own included), as `name: line`.
    async fn join(&self, room: String, name: String, lines: Streaming<String>)
        -> Streaming<String>;
}

/// Rooms by name, each a broadcast channel.
#[derive(Clone, Default)]
struct Rooms(Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>);

impl Chat for Rooms {
    async fn join(
        &self,
        room: String,
        name: String,
        lines: Streaming<String>,
    ) -> Streaming<String> {
        let said = {
            let mut rooms = self.0.lock().unwrap_or_else(|e| e.into_inner());
            rooms
                .entry(room)
                .or_insert_with(|| broadcast::channel(256).0)
                .clone()
        };
        let heard = said.subscribe();
        // What this member says goes to the room, until their stream ends.
        tokio::spawn(async move {
            let mut lines = lines;
            while let Some(Ok(line)) = lines.next().await {
                let _ = said.send(format!("{name}: {line}"));
            }
        });
        let heard = futures::stream::unfold(heard, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(line) => return Some((line, rx)),
                    // Missed lines are skipped; the member hears the rest.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Streaming::from_stream(heard)
    }
}

/// Prints what `who` hears until `last`.
async fn listen_until(
    hears: &mut Streaming<String>,
    who: &str,
    last: &str,
) -> Result<(), RpcError> {
    while let Some(line) = hears.next().await {
        let line = line?;
        println!("{who} hears  {line}");
        if line == last {
            break;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .add_service(ChatServer::new(Rooms::default()))
        .bind("127.0.0.1:0")
        .await?;
    let client = ChatClient::connect(server.local_addr())
        .await?
        .with_timeout(Duration::from_secs(60));

    // Two members; each one's lines come from a channel this program feeds.
    let (ada_says, ada_lines) = futures::channel::mpsc::unbounded::<String>();
    let (bob_says, bob_lines) = futures::channel::mpsc::unbounded::<String>();
    let mut ada_hears = client
        .join(
            "lobby".into(),
            "ada".into(),
            Streaming::from_stream(ada_lines),
        )
        .await?;
    let mut bob_hears = client
        .join(
            "lobby".into(),
            "bob".into(),
            Streaming::from_stream(bob_lines),
        )
        .await?;
    // A member is in the room once they hear their own first line.
    ada_says.unbounded_send("(here)".into())?;
    listen_until(&mut ada_hears, "ada", "ada: (here)").await?;
    bob_says.unbounded_send("(here)".into())?;
    listen_until(&mut bob_hears, "bob", "bob: (here)").await?;

    bob_says.unbounded_send("hi ada".into())?;
    listen_until(&mut ada_hears, "ada", "bob: hi ada").await?;
    ada_says.unbounded_send("hi bob, how are you?".into())?;
    listen_until(&mut bob_hears, "bob", "ada: hi bob, how are you?").await?;
    drop((ada_hears, bob_hears));
    server.shutdown().await;
    Ok(())
}
