//! The calling half of a connection: what the reader does with frames
//! about the calls this side made.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::RpcError;
use crate::wire::codec;
use crate::wire::frame::{code, Message, Status};

use super::pending::{ItemOutcome, Shared};
use super::reply::Reply;

/// The calling half of a connection: what arrives for the calls this side
/// made. A client's reader uses it, and so does a server's connection, for
/// the calls its handlers make back to the client (callbacks).
pub(crate) struct CallerHalf {
    pub(super) shared: Arc<Shared>,
    pub(super) control: mpsc::UnboundedSender<Bytes>,
}

impl CallerHalf {
    pub(super) fn new(shared: Arc<Shared>, control: mpsc::UnboundedSender<Bytes>) -> Self {
        CallerHalf { shared, control }
    }

    /// Handles a frame about one of this side's calls; `Err` when the frame
    /// breaks the protocol and the connection must close.
    pub(crate) fn frame(
        &self,
        message: Message<'_>,
        payload: &Bytes,
        used: usize,
    ) -> Result<(), RpcError> {
        match message {
            Message::Response { id, status } => {
                let reply = match status {
                    Status::Ok => Reply::Ok(payload.slice(used..)),
                    // What a broker link reports of a call whose server
                    // went away: like a broken connection (sent again only
                    // if idempotent).
                    Status::Error {
                        code: code::LOST,
                        message,
                    } => Reply::Failed(RpcError::connection_lost(message.to_owned())),
                    Status::Error {
                        code: code::UNAVAILABLE,
                        message,
                    } => Reply::Failed(RpcError::Unavailable {
                        message: message.to_owned(),
                    }),
                    Status::Error { code, message } => Reply::Remote {
                        code,
                        message: message.to_owned(),
                        details: payload.slice(used..),
                    },
                };
                self.shared.complete(id, reply);
            }
            Message::Item { id } => match self.shared.item(id, payload.slice(used..)) {
                ItemOutcome::Delivered => {}
                ItemOutcome::Nobody => {
                    tracing::debug!(id, "stream item for a call that is no longer waiting");
                }
                ItemOutcome::Violation => {
                    let _ = self
                        .control
                        .send(codec::encode_control(&Message::Cancel { id }));
                }
            },
            Message::Credit { id, items } => self.shared.credit(id, items),
            Message::Cancel { id } => self.shared.stop_sending(id),
            Message::Head { id } => self.shared.head(id)?,
            other => {
                return Err(RpcError::Protocol {
                    message: format!(
                        "the peer sent {} with an id of a call this side made",
                        other.kind()
                    ),
                })
            }
        }
        Ok(())
    }

    /// Fails every call still waiting, and every later one.
    pub(crate) fn close(&self, reason: RpcError) {
        self.shared.close(reason, false);
    }

    /// Whether a call this side made is still waiting.
    pub(crate) fn has_pending(&self) -> bool {
        self.shared.has_pending()
    }
}
