//! How a call ends, as the reader hands it over.

use std::time::Duration;

use bytes::Bytes;

use crate::error::RpcError;
use crate::wire::codec;
use crate::wire::frame::code;
use crate::wire::metadata::ReplyMetadata;

/// What the reader hands a waiting call.
pub(crate) enum Reply {
    Ok(Bytes),
    Remote {
        code: u32,
        message: String,
        /// The body: an application status's details.
        details: Bytes,
    },
    Failed(RpcError),
    /// The connection ended with a promise that this call did not run (the
    /// server said goodbye for shutdown or idleness before reading it): safe
    /// to send again, whatever the method.
    NotRun(RpcError),
    /// The call's deadline passed; the server was told to stop it.
    Expired,
}

/// What the reader hands a streaming call.
pub(crate) enum StreamEvent {
    /// The call was accepted: its answer stream follows.
    Head,
    Item(Bytes),
    /// The last event: `Reply::Ok` is a normal end.
    End(Reply),
}

impl Reply {
    /// Whether the peer answered that it is shutting down: it did not run
    /// the call.
    #[inline]
    pub(super) fn is_shutting_down(&self) -> bool {
        matches!(self, Reply::Remote { code, .. } if *code == code::SHUTTING_DOWN)
    }

    /// This answer to a call that asked for reply metadata, with the
    /// metadata taken off its body into `slot`; unchanged without a slot.
    pub(super) fn with_reply_metadata(self, slot: Option<&ReplyMetadata>) -> Reply {
        let Some(slot) = slot else {
            return self;
        };
        let split = |body| codec::split_reply_metadata(body, super::DEFAULT_MAX_METADATA);
        match self {
            Reply::Ok(body) => match split(body) {
                Ok((metadata, value)) => {
                    slot.set(metadata);
                    Reply::Ok(value)
                }
                Err(message) => Reply::Failed(RpcError::BadResponse { message }),
            },
            Reply::Remote {
                code,
                message,
                details,
            } => match split(details) {
                Ok((metadata, details)) => {
                    slot.set(metadata);
                    Reply::Remote {
                        code,
                        message,
                        details,
                    }
                }
                Err(message) => Reply::Failed(RpcError::BadResponse { message }),
            },
            other => other,
        }
    }

    /// How a call ends, once no more attempts are to be made: its encoded
    /// value, or the error.
    pub(super) fn into_result(
        self,
        timeout: Duration,
        service: &str,
        method: &str,
    ) -> Result<Bytes, RpcError> {
        match self {
            Reply::Ok(body) => Ok(body),
            Reply::Remote {
                code,
                message,
                details,
            } => Err(codec::error_from_wire(
                code, &message, details, service, method,
            )),
            Reply::Failed(error) | Reply::NotRun(error) => Err(error),
            Reply::Expired => Err(RpcError::DeadlineExceeded { timeout }),
        }
    }
}
