//! One accepted connection: its TLS handshake and greeting; then the
//! session serves it (`session::serve_listener`).

use std::sync::Arc;

use crate::identity::PeerIdentity;
use crate::link::greeting::{self, HandshakeError};
use crate::link::negotiate::Offer;
use crate::link::{ByteLink, Link};
use crate::session::{self, Counted};
use crate::transport::{Io, PeerAddr};

use super::ServerState;

/// Serves one accepted connection, after a TLS handshake if the server
/// has TLS.
pub(super) async fn open_connection<T: Io>(
    io: T,
    peer: PeerAddr,
    state: Arc<ServerState>,
    guard: Counted,
) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = state.tls.clone() {
        let accepted = tokio::select! {
            r = tokio::time::timeout(state.config.handshake_timeout, acceptor.accept(io)) => r,
            () = state.serving.kill.cancelled() => return,
            () = state.shutdown.cancelled() => return,
        };
        match accepted {
            Ok(Ok(stream)) => {
                let identity = crate::tls::identity(stream.get_ref().1.peer_certificates());
                return serve_connection(ByteLink::new(stream), peer, identity, state, guard).await;
            }
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "closed a connection whose TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "closed a connection that did not finish its TLS handshake in time");
                return;
            }
        }
    }
    serve_connection(ByteLink::new(io), peer, None, state, guard).await;
}

/// Serves one link: its greeting, then the loop that reads, dispatches and
/// writes until it ends.
pub(super) async fn serve_connection<L: Link>(
    link: L,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
    state: Arc<ServerState>,
    _connection: Counted,
) {
    let config = state.config;
    let greeting = tokio::select! {
        r = tokio::time::timeout(config.handshake_timeout, greeting::accept(link, Offer::new(config.max_frame_length, config.max_in_flight, config.compression.extensions()), config.compression)) => r,
        () = state.serving.kill.cancelled() => return,
        () = state.shutdown.cancelled() => return,
    };
    let established = match greeting {
        Ok(Ok(established)) => established,
        Ok(Err(HandshakeError::Closed)) => {
            tracing::debug!(%peer, "connection closed before greeting");
            return;
        }
        Ok(Err(e)) => {
            tracing::info!(%peer, error = ?e, "rejected a connection at the greeting");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "closed a connection that did not greet in time");
            return;
        }
    };
    tracing::debug!(%peer, "connection established");
    session::serve_listener(
        established,
        peer,
        identity,
        &state.serving,
        config.idle_timeout,
        config.max_frame_length,
        &state.shutdown,
    )
    .await;
}
