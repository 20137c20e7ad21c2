//! Fanout: one call sent to every endpoint of a balanced channel at once,
//! each answer gathered by its endpoint's name.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tokio::time::Instant;

use crate::call::{Fanout, RawCall, RawReply};
use crate::error::RpcError;
use crate::session::{CallDefaults, Connection, Picked, Target, Waiting};

use super::super::calls;
use super::load::{Load, LoadTicket};
use super::{BalancedChannel, EndpointState};

impl Fanout for BalancedChannel {
    /// Every endpoint of the set: a connected, serving one gets the call
    /// (on its connection as it is now, never sent elsewhere); any other
    /// is in the list with [`RpcError::Unavailable`] saying why. The
    /// call's deadline bounds every answer.
    fn invoke_each(
        self,
        call: RawCall,
    ) -> impl Future<Output = Vec<(String, Result<RawReply, RpcError>)>> + Send {
        let snapshot = Arc::clone(&self.inner.registry.snapshot());
        let defaults = self.inner.defaults;
        let mut sends = Vec::new();
        let mut down = Vec::new();
        for (key, state) in snapshot.states() {
            let ready = snapshot
                .ready_one(&key)
                .filter(|r| r.serving && !r.connection.is_closed());
            let copy = call.duplicate();
            match (ready, copy) {
                (Some(ready), Some(copy)) => {
                    let pinned = Pinned {
                        connection: Arc::clone(&ready.connection),
                        load: Arc::clone(&ready.load),
                        defaults,
                    };
                    sends.push(async move { (key, calls::invoke(pinned, copy).await) });
                }
                (_, None) => down.push((
                    key,
                    Err(RpcError::Encode {
                        what: "request",
                        message: "a call that sends a stream cannot be fanned out".to_owned(),
                    }),
                )),
                (None, Some(_)) => {
                    let why = match state {
                        EndpointState::Failing { error } => format!("failing ({error})"),
                        EndpointState::Draining => "not serving".to_owned(),
                        _ => "connecting".to_owned(),
                    };
                    let message = format!("{key} is not ready: {why}");
                    down.push((key, Err(RpcError::Unavailable { message })));
                }
            }
        }
        async move {
            let mut replies = join_all(sends).await;
            replies.extend(down);
            replies
        }
    }
}

/// One connection, as a target: a fanout's call to one endpoint.
#[derive(Clone)]
struct Pinned {
    connection: Arc<Connection>,
    load: Arc<Load>,
    defaults: CallDefaults,
}

impl Target for Pinned {
    type Ticket = LoadTicket;
    const FAILOVER: bool = false;

    fn defaults(&self) -> CallDefaults {
        self.defaults
    }

    fn ready(&self) -> Option<Picked<LoadTicket>> {
        Some((
            Arc::clone(&self.connection),
            LoadTicket::new(Arc::clone(&self.load)),
        ))
    }

    fn wait(&self, _deadline: Instant) -> Waiting<'_, LoadTicket> {
        let error = self.connection.closed_reason();
        Box::pin(async move { Err(error) })
    }
}
