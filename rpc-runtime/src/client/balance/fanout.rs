//! Fanout: one call sent to every endpoint of a balanced channel at once,
//! each answer gathered by its endpoint's name.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use tokio::time::Instant;

use crate::call::{Fanout, RawCall, RawReply};
use crate::error::RpcError;
use crate::session::{CallDefaults, Picked, Target, Waiting};

use super::super::calls;
use super::load::LoadTicket;
use super::set::Ready;
use super::BalancedChannel;

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
        for (key, state) in snapshot.members() {
            let ready = snapshot
                .ready_one(key)
                .filter(|r| r.serving && !r.connection.is_closed());
            let copy = if call.has_stream() {
                Err(RpcError::Encode {
                    what: "request",
                    message: "a call that sends a stream cannot be fanned out".to_owned(),
                })
            } else {
                // A copy only for an endpoint that gets it.
                ready
                    .and_then(|ready| Some((ready, call.duplicate()?)))
                    .ok_or_else(|| state.unavailable(key))
            };
            match copy {
                Ok((ready, copy)) => {
                    let pinned = Pinned {
                        ready: ready.clone(),
                        defaults,
                    };
                    let key = key.to_string();
                    sends.push(async move { (key, calls::invoke(pinned, copy).await) });
                }
                Err(error) => down.push((key.to_string(), Err(error))),
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
    ready: Ready,
    defaults: CallDefaults,
}

impl Target for Pinned {
    type Ticket = LoadTicket;
    const FAILOVER: bool = false;

    fn defaults(&self) -> CallDefaults {
        self.defaults
    }

    fn ready(&self) -> Option<Picked<LoadTicket>> {
        Some(self.ready.picked())
    }

    fn wait(&self, _deadline: Instant) -> Waiting<'_, LoadTicket> {
        let error = self.ready.connection.closed_reason();
        Box::pin(async move { Err(error) })
    }
}
