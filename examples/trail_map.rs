//! A realistic multi-method service: a map of hiking trails, with a lookup
//! that fails with a status, a listing that refuses a bad request before
//! it streams, a hike recorded as a stream of positions, and a trail chat
//! both ways; every answer says which replica served it (reply metadata).
//! Server and client in one process.
//!
//! ```text
//! cargo run --example trail_map
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_runtime::{
    rpc_service, CallContext, Code, ReplyMetadata, RpcError, Server, Status, StreamExt, Streaming,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// A point on the map, in hundredths of a degree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spot {
    /// North is positive.
    pub lat: i32,
    /// East is positive.
    pub lon: i32,
}

/// A named place on a trail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Landmark {
    /// Where it is.
    pub spot: Spot,
    /// What it is called.
    pub name: String,
}

/// What a recorded hike came to.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hike {
    /// Positions recorded.
    pub positions: u32,
    /// Landmarks passed on the way.
    pub landmarks: u32,
    /// Distance covered, in hundredths of a degree (a taxicab measure).
    pub distance: u32,
}

/// The trail map.
#[rpc_service]
pub trait TrailMap {
    /// The landmark at `spot`; `NOT_FOUND` if there is none.
    async fn landmark(&self, spot: Spot) -> Result<Landmark, Status>;
    /// Every landmark within the box from `low` to `high`, as a stream;
    /// a box whose corners are the wrong way round is refused before any
    /// landmark is sent.
    async fn landmarks(&self, low: Spot, high: Spot) -> Result<Streaming<Landmark>, Status>;
    /// Records a hike from the positions sent, and sums it up.
    async fn record(&self, positions: Streaming<Spot>) -> Result<Hike, Status>;
    /// Joins the chat of the trail at `trail`: says `lines`, hears
    /// everyone's (its own included).
    async fn chat(&self, trail: String, lines: Streaming<String>) -> Streaming<String>;
}

/// One replica of the service.
struct Replica {
    name: &'static str,
    landmarks: HashMap<Spot, String>,
    chats: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

impl Replica {
    /// Tells a caller that asks which replica served it.
    fn sign(&self) {
        if let Some(cx) = CallContext::current() {
            cx.set_reply_metadata("served-by", self.name);
        }
    }
}

impl TrailMap for Arc<Replica> {
    async fn landmark(&self, spot: Spot) -> Result<Landmark, Status> {
        self.sign();
        let name = self.landmarks.get(&spot).ok_or_else(|| {
            Status::not_found(format!("no landmark at {}, {}", spot.lat, spot.lon))
        })?;
        Ok(Landmark {
            spot,
            name: name.clone(),
        })
    }

    async fn landmarks(&self, low: Spot, high: Spot) -> Result<Streaming<Landmark>, Status> {
        self.sign();
        if low.lat > high.lat || low.lon > high.lon {
            return Err(Status::invalid_argument(
                "the box's low corner is above or right of its high corner",
            ));
        }
        let mut found: Vec<Landmark> = self
            .landmarks
            .iter()
            .filter(|(spot, _)| {
                (low.lat..=high.lat).contains(&spot.lat) && (low.lon..=high.lon).contains(&spot.lon)
            })
            .map(|(spot, name)| Landmark {
                spot: *spot,
                name: name.clone(),
            })
            .collect();
        found.sort_by_key(|landmark| (landmark.spot.lat, landmark.spot.lon));
        Ok(Streaming::from_iter(found))
    }

    async fn record(&self, mut positions: Streaming<Spot>) -> Result<Hike, Status> {
        self.sign();
        let mut hike = Hike {
            positions: 0,
            landmarks: 0,
            distance: 0,
        };
        let mut last: Option<Spot> = None;
        while let Some(spot) = positions.next().await {
            // The hiker's stream failing fails the record, with its reason.
            let spot = spot?;
            hike.positions += 1;
            if self.landmarks.contains_key(&spot) {
                hike.landmarks += 1;
            }
            if let Some(last) = last {
                hike.distance += last.lat.abs_diff(spot.lat) + last.lon.abs_diff(spot.lon);
            }
            last = Some(spot);
        }
        if hike.positions == 0 {
            return Err(Status::failed_precondition(
                "a hike needs at least one position",
            ));
        }
        Ok(hike)
    }

    async fn chat(&self, trail: String, lines: Streaming<String>) -> Streaming<String> {
        let said = {
            let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
            chats
                .entry(trail)
                .or_insert_with(|| broadcast::channel(64).0)
                .clone()
        };
        let mut heard = said.subscribe();
        tokio::spawn(async move {
            let mut lines = lines;
            while let Some(Ok(line)) = lines.next().await {
                let _ = said.send(line);
            }
        });
        // A task feeds the answer stream; it stops when the caller hangs up.
        let (sender, stream) = Streaming::channel(16);
        tokio::spawn(async move {
            while let Ok(line) = heard.recv().await {
                if sender.send(line).await.is_err() {
                    return;
                }
            }
        });
        stream
    }
}

fn replica() -> Arc<Replica> {
    let landmarks = [
        ((4610, 790), "Col de la Forclaz"),
        ((4620, 800), "Lac de Champex"),
        ((4630, 820), "Cabane du Mont Fort"),
        ((4700, 850), "Grand Muveran"),
    ];
    Arc::new(Replica {
        name: "replica-1",
        landmarks: landmarks
            .into_iter()
            .map(|((lat, lon), name)| (Spot { lat, lon }, name.to_owned()))
            .collect(),
        chats: Mutex::new(HashMap::new()),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder()
        .add_service(TrailMapServer::new(replica()))
        .bind("127.0.0.1:0")
        .await?;
    let map = TrailMapClient::connect(server.local_addr()).await?;

    // A lookup, and who served it.
    let reply = ReplyMetadata::new();
    let found = map
        .with_reply_metadata(&reply)
        .landmark(Spot {
            lat: 4620,
            lon: 800,
        })
        .await?;
    let served_by = reply
        .get()
        .get("served-by")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    println!(
        "{} (served by {})",
        found.name,
        served_by.unwrap_or_default()
    );

    // A lookup that fails with a status: one `?` away, or matched on.
    match map.landmark(Spot { lat: 0, lon: 0 }).await {
        Err(RpcError::Status(status)) if status.code() == Code::NOT_FOUND => {
            println!("not found: {}", status.message());
        }
        other => return Err(format!("expected NOT_FOUND, got {other:?}").into()),
    }

    // A listing: refused before it starts, or streamed.
    let low = Spot {
        lat: 4600,
        lon: 780,
    };
    let high = Spot {
        lat: 4650,
        lon: 830,
    };
    match map.landmarks(high, low).await {
        Err(RpcError::Status(status)) => println!("refused: {status}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    let mut listed = map.landmarks(low, high).await?;
    while let Some(landmark) = listed.next().await {
        println!("in the box: {}", landmark?.name);
    }

    // A hike, recorded as a stream of positions.
    let path =
        [(4610, 790), (4615, 795), (4620, 800), (4630, 820)].map(|(lat, lon)| Spot { lat, lon });
    let hike = map.record(Streaming::from_iter(path)).await?;
    println!(
        "hike: {} positions, {} landmarks, distance {}",
        hike.positions, hike.landmarks, hike.distance
    );

    // Two hikers chat on a trail; the chat has no deadline.
    let chat = map.without_timeout();
    let (ada_says, ada_lines) = Streaming::channel(4);
    let (bo_says, bo_lines) = Streaming::channel(4);
    let mut ada_hears = chat.chat("tour-du-mont-blanc".into(), ada_lines).await?;
    let mut bo_hears = chat.chat("tour-du-mont-blanc".into(), bo_lines).await?;
    // Both are in the room once each hears their own first line.
    ada_says.send("ada: here".to_owned()).await?;
    wait_for(&mut ada_hears, "ada: here").await?;
    bo_says.send("bo: here".to_owned()).await?;
    wait_for(&mut bo_hears, "bo: here").await?;
    ada_says.send("ada: snow at the col".to_owned()).await?;
    wait_for(&mut bo_hears, "ada: snow at the col").await?;
    println!("bo heard: ada: snow at the col");
    drop((ada_says, bo_says, ada_hears, bo_hears));

    tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await?;
    Ok(())
}

/// Reads `stream` until `line` arrives, within two seconds.
async fn wait_for(
    stream: &mut Streaming<String>,
    line: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(heard) = stream.next().await {
            if heard? == line {
                return Ok(());
            }
        }
        Err::<(), Box<dyn std::error::Error>>(format!("the chat ended before {line:?}").into())
    })
    .await?
}
