//! The task that keeps one endpoint of a balanced channel connected: it
//! dials, publishes the connection as ready, notices when it ends, and
//! dials again with backoff while attempts fail.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::session::Channel;

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
                tracing::debug!(endpoint = %key, "endpoint ready");
                let ended = channel.current().ended();
                registry.set(&key, State::Ready(channel));
                tokio::select! {
                    () = ended => {}
                    () = stop.cancelled() => return,
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
