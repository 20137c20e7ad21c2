//! Stream flow control, for both directions and both ends: the credit a
//! producer may use, how a consumer grants more as it takes items, and the
//! one loop that sends a stream's items as its credit allows.

use bytes::Bytes;
use futures::StreamExt;
use std::future::Future;
use tokio::sync::Semaphore;

use crate::error::RpcError;
use crate::wire::body::BodyStream;
use crate::wire::codec;
use crate::wire::frame::STREAM_WINDOW;

/// The most credit a peer can grant one stream; grants beyond it are
/// ignored (the producer is never more than this far ahead anyway).
const MAX_CREDIT: usize = 1 << 20;

/// A new stream's credit, for its producer: the window every stream
/// starts with.
pub(super) fn initial_credit() -> Semaphore {
    Semaphore::new(STREAM_WINDOW as usize)
}

/// Adds `items` the consumer takes to a producer's `credit`, up to
/// [`MAX_CREDIT`].
pub(super) fn add_credit(credit: &Semaphore, items: u32) {
    let room = MAX_CREDIT.saturating_sub(credit.available_permits());
    credit.add_permits(room.min(items as usize));
}

/// The consumer's count of items taken since it last granted credit.
#[derive(Debug, Default)]
pub(super) struct Taken(u32);

impl Taken {
    /// One more item taken; the credit to grant now, if it is time: as many
    /// as were taken, once half the window has been.
    pub(super) fn one(&mut self) -> Option<u32> {
        self.0 += 1;
        (self.0 >= STREAM_WINDOW / 2).then(|| std::mem::take(&mut self.0))
    }
}

/// How a producer's stream ended.
pub(super) enum Produced {
    /// After its last item.
    Done,
    /// With an error (of the producer, or an item that did not encode):
    /// the stream's end carries it.
    Failed(RpcError),
    /// The connection, or the credit, is gone: nothing more can be sent.
    Gone,
}

/// Sends the items of `items` for call `id` through `send`, each only when
/// `credit` has room for it, so the producer is never polled ahead of the
/// consumer's window. `send` returns whether the frame went out.
pub(super) async fn produce<F, Fut>(
    id: u64,
    items: &mut BodyStream,
    credit: &Semaphore,
    limit: usize,
    mut send: F,
) -> Produced
where
    F: FnMut(Bytes) -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        match credit.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Produced::Gone,
        }
        match items.next().await {
            Some(Ok(item)) => match codec::encode_item(id, item, limit) {
                Ok(frame) => {
                    if !send(frame).await {
                        return Produced::Gone;
                    }
                }
                Err(error) => return Produced::Failed(error),
            },
            Some(Err(error)) => return Produced::Failed(error),
            None => return Produced::Done,
        }
    }
}
