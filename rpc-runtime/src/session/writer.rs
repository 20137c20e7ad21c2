//! The writer of a dialer's session: frames queued by callers, batched
//! into as few writes as the traffic allows.

use std::io;

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::link::FrameWrite;
use crate::wire::request::{KeptFrame, COPIED_FRAME};

/// How long a writer that is being stopped may take to send the control
/// frames (cancels) still queued.
const FAREWELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Frames the writer takes from its queue before it flushes.
const WRITE_BATCH: usize = 64;

/// A frame for the writer, and whom to tell once it is flushed.
pub(crate) struct Outgoing {
    pub frame: OutFrame,
    /// Told after the frame has been handed to the operating system.
    pub written: Option<oneshot::Sender<()>>,
}

impl Outgoing {
    pub(crate) fn frame(frame: Bytes) -> Self {
        Outgoing {
            frame: OutFrame::Shared(frame),
            written: None,
        }
    }
}

/// A frame on its way to the writer.
pub(crate) enum OutFrame {
    /// A copy of a small frame whose sender keeps it (to send it again if
    /// need be): sharing it would cost an allocation, copying it costs
    /// none, and the writer copies it into its buffer anyway.
    Copied { len: u8, bytes: [u8; COPIED_FRAME] },
    /// The frame itself, or a share of it.
    Shared(Bytes),
}

impl OutFrame {
    /// What the writer needs of `frame`, which the caller keeps.
    pub(crate) fn of(frame: KeptFrame<'_>) -> Self {
        let small = match frame {
            KeptFrame::Share(frame) => return OutFrame::Shared(frame.clone()),
            KeptFrame::Copy(small) => small,
        };
        let mut bytes = [0; COPIED_FRAME];
        match (bytes.get_mut(..small.len()), u8::try_from(small.len())) {
            (Some(copy), Ok(len)) => {
                copy.copy_from_slice(small);
                OutFrame::Copied { len, bytes }
            }
            _ => OutFrame::Shared(Bytes::copy_from_slice(small)),
        }
    }

    /// The frame, as bytes of its own.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            OutFrame::Shared(frame) => frame,
            OutFrame::Copied { len, bytes } => {
                Bytes::copy_from_slice(bytes.get(..usize::from(len)).unwrap_or_default())
            }
        }
    }

    /// Hands the frame to `sink`.
    async fn feed<W: FrameWrite>(self, sink: &mut W) -> io::Result<()> {
        match self {
            OutFrame::Shared(frame) => sink.feed(frame).await,
            OutFrame::Copied { len, bytes } => {
                futures::future::poll_fn(|cx| sink.poll_ready_unpin(cx)).await?;
                let frame = bytes.get(..usize::from(len)).unwrap_or_default();
                std::pin::Pin::new(sink).start_send_copy(frame)
            }
        }
    }
}

/// Writes queued frames, batching them: it flushes only when the queue is
/// momentarily empty (or the codec's buffer is full, or someone waits to
/// hear that a frame was written), so many small frames share one system
/// call under load. `control` (cancels, pings, pongs) goes first.
///
/// Ends cleanly (flush, then shut down the write half) when every sender of
/// both queues is gone; when `cancel` fires it sends only the control frames
/// still queued (within [`FAREWELL_TIMEOUT`]) and ends.
pub(crate) async fn write_loop<W: FrameWrite>(
    mut sink: W,
    mut queue: mpsc::Receiver<Outgoing>,
    mut control: mpsc::UnboundedReceiver<Bytes>,
    cancel: CancellationToken,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    let (mut queue_open, mut control_open) = (true, true);
    let mut unflushed = false;
    while queue_open || control_open {
        if unflushed && queue.is_empty() && control.is_empty() {
            // Before paying for a system call, give the tasks producing
            // frames one turn to add theirs to this batch: under load this
            // turns one write per frame into one write per many frames.
            tokio::task::yield_now().await;
            if queue.is_empty() && control.is_empty() {
                SinkExt::<Bytes>::flush(&mut sink).await?;
                unflushed = false;
                for ack in acks.drain(..) {
                    let _ = ack.send(());
                }
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // The connection is being dropped (its last channel went
                // away, say): the cancels of the calls dropped with it are
                // already queued, and the peer must still hear them, or it
                // runs those calls to their deadlines. Best effort, briefly.
                let farewell = async {
                    while let Ok(frame) = control.try_recv() {
                        sink.feed(frame).await?;
                    }
                    SinkExt::<Bytes>::close(&mut sink).await
                };
                let _ = tokio::time::timeout(FAREWELL_TIMEOUT, farewell).await;
                return Ok(());
            }
            frame = control.recv(), if control_open => match frame {
                Some(frame) => {
                    sink.feed(frame).await?;
                    unflushed = true;
                }
                None => control_open = false,
            },
            n = queue.recv_many(&mut batch, WRITE_BATCH), if queue_open => {
                if n == 0 {
                    queue_open = false;
                }
                for outgoing in batch.drain(..) {
                    outgoing.frame.feed(&mut sink).await?;
                    acks.extend(outgoing.written);
                    unflushed = true;
                }
            }
        }
    }
    SinkExt::<Bytes>::close(&mut sink).await?;
    for ack in acks.drain(..) {
        let _ = ack.send(());
    }
    Ok(())
}
