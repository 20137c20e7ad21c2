//! The task that keeps one endpoint of a balanced channel connected: it
//! dials, publishes the connection as ready, notices when it ends, and
//! dials again with backoff while attempts fail.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::health::{HealthClient, ServingStatus};
use crate::session::Channel;
use crate::streaming::Streaming;
use futures::StreamExt;

use super::super::reconnect::Backoff;
use super::set::{Registry, State};

/// Opens a connection to an endpoint, by its address.
pub(super) type Dial = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Channel, RpcError>> + Send>> + Send + Sync,
>;

/// How an endpoint is kept connected.
#[derive(Clone)]
pub(super) struct Keeping {
    pub dial: Dial,
    /// First and longest pause between failed attempts.
    pub backoff: (Duration, Duration),
    /// Whether to watch each server's health, and how long its first
    /// status may take.
    pub health: Option<Duration>,
}

/// Keeps the endpoint `key` connected until `stop`.
pub(super) async fn keep(
    registry: Arc<Registry>,
    key: Arc<str>,
    keeping: Keeping,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(keeping.backoff.0, keeping.backoff.1);
    loop {
        registry.set(&key, State::Connecting);
        let dialed = tokio::select! {
            dialed = (keeping.dial)(key.to_string()) => dialed,
            () = stop.cancelled() => return,
        };
        match dialed {
            Ok(channel) => {
                backoff.succeeded();
                let ended = channel.current().ended();
                tokio::pin!(ended);
                let mut health = match keeping.health {
                    Some(within) => Health::watch(&channel, within).await,
                    None => Health::Unwatched,
                };
                registry.set(&key, health.state(&channel));
                tracing::debug!(endpoint = %key, serving = health.serving(), "endpoint connected");
                loop {
                    tokio::select! {
                        () = &mut ended => break,
                        () = stop.cancelled() => return,
                        changed = health.next() => {
                            if changed {
                                tracing::debug!(endpoint = %key, serving = health.serving(), "endpoint's health changed");
                                registry.set(&key, health.state(&channel));
                            }
                        }
                    }
                }
                tracing::debug!(endpoint = %key, "endpoint's connection ended; dialing again");
            }
            Err(error) => {
                tracing::debug!(endpoint = %key, %error, "connecting to an endpoint failed");
                backoff.failed(error.clone());
                let retry_at = backoff.next_attempt();
                registry.set(&key, State::Failing { error, retry_at });
                tokio::select! {
                    () = tokio::time::sleep_until(retry_at) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}

/// What an endpoint's health service says.
enum Health {
    /// Not watched, or the server has no health service: serving.
    Unwatched,
    /// The status last heard, and the stream of changes (`None` once it
    /// has ended: the status stands until the connection ends).
    Watched {
        serving: bool,
        changes: Option<Streaming<ServingStatus>>,
    },
}

impl Health {
    /// Starts watching the whole server's health over `channel`, and waits
    /// (up to `within`) for its first status.
    async fn watch(channel: &Channel, within: Duration) -> Health {
        let client = HealthClient::new(channel.clone()).without_timeout();
        let first = tokio::time::timeout(within, async {
            let mut changes = client.watch(String::new()).await.ok()?;
            let first = changes.next().await?.ok()?;
            Some((first, changes))
        });
        match first.await {
            Ok(Some((status, changes))) => Health::Watched {
                serving: status == ServingStatus::Serving,
                changes: Some(changes),
            },
            // No health service (or no answer in time): serving.
            _ => Health::Unwatched,
        }
    }

    fn serving(&self) -> bool {
        match self {
            Health::Unwatched => true,
            Health::Watched { serving, .. } => *serving,
        }
    }

    /// The endpoint's state, connected over `channel`.
    fn state(&self, channel: &Channel) -> State {
        if self.serving() {
            State::Ready(channel.clone())
        } else {
            State::Draining(channel.clone())
        }
    }

    /// Waits for the next status; whether it changed anything. Never
    /// completes when there is nothing to watch.
    async fn next(&mut self) -> bool {
        let Health::Watched { serving, changes } = self else {
            return std::future::pending().await;
        };
        let Some(stream) = changes else {
            return std::future::pending().await;
        };
        match stream.next().await {
            Some(Ok(status)) => {
                let now = status == ServingStatus::Serving;
                std::mem::replace(serving, now) != now
            }
            // The stream ended (the server is shutting down) or failed.
            _ => {
                *changes = None;
                false
            }
        }
    }
}
