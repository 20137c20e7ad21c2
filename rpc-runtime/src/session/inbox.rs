//! The stream a caller sends with a call, on the handler's side: what the
//! session hands it, and how the handler's consumption grants credit.

use std::task::{Context, Poll};

use crate::error::RpcError;

use super::flow::Taken;

/// What the connection hands the stream a caller sends with a call.
pub(crate) enum InboxEvent {
    Item(bytes::Bytes),
    /// The last event.
    End(Result<(), RpcError>),
}

/// The receiving end of the stream a caller sends with a call, before the
/// handler takes it (and learns its item type).
pub(crate) struct InboxParts {
    pub id: u64,
    pub events: tokio::sync::mpsc::UnboundedReceiver<InboxEvent>,
    /// Items the caller may still send; the connection takes one per item.
    pub credit: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// Frames to the caller (credit, and a cancel if the handler drops the
    /// stream early).
    pub control: tokio::sync::mpsc::UnboundedSender<bytes::Bytes>,
}

/// The stream a handler receives from its caller.
pub(crate) struct InboxStream<T> {
    parts: InboxParts,
    taken: Taken,
    done: bool,
    decode: fn(&bytes::Bytes) -> Result<T, String>,
}

impl<T: serde::de::DeserializeOwned + 'static> InboxStream<T> {
    pub(crate) fn new(parts: InboxParts) -> Self {
        InboxStream {
            parts,
            taken: Taken::default(),
            done: false,
            decode: crate::wire::codec::decode_value::<T>,
        }
    }
}

impl<T> InboxStream<T> {
    /// The id of the call whose caller sends this stream.
    pub(crate) fn id(&self) -> u64 {
        self.parts.id
    }

    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, RpcError>>> {
        use std::sync::atomic::Ordering;
        if self.done {
            return Poll::Ready(None);
        }
        let event = match self.parts.events.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(event) => event,
        };
        match event {
            Some(InboxEvent::Item(body)) => {
                if let Some(items) = self.taken.one() {
                    self.parts.credit.fetch_add(items, Ordering::AcqRel);
                    let credit = crate::wire::frame::Message::Credit {
                        id: self.parts.id,
                        items,
                    };
                    // Fails only when the connection is gone.
                    let _ = self
                        .parts
                        .control
                        .send(crate::wire::codec::encode_control(&credit));
                }
                match (self.decode)(&body) {
                    Ok(item) => Poll::Ready(Some(Ok(item))),
                    Err(message) => {
                        self.stop();
                        Poll::Ready(Some(Err(RpcError::BadRequest { message })))
                    }
                }
            }
            Some(InboxEvent::End(Ok(()))) => {
                self.done = true;
                Poll::Ready(None)
            }
            Some(InboxEvent::End(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                self.done = true;
                Poll::Ready(Some(Err(RpcError::connection_lost(
                    "the caller's stream broke off before its end",
                ))))
            }
        }
    }

    /// Tells the caller to send no more.
    fn stop(&mut self) {
        self.done = true;
        let cancel = crate::wire::frame::Message::Cancel { id: self.parts.id };
        // Fails only when the connection is gone.
        let _ = self
            .parts
            .control
            .send(crate::wire::codec::encode_control(&cancel));
    }
}

impl<T> Drop for InboxStream<T> {
    fn drop(&mut self) {
        if !self.done {
            self.stop();
        }
    }
}
