//! A listener's session: the one task per accepted connection that reads,
//! dispatches and writes until the connection ends (callbacks to the
//! dialer included), with its idle timer and its goodbye.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::identity::PeerIdentity;
use crate::link::greeting::Established;
use crate::link::Link;
use crate::telemetry::{OpenConnection, Side};
use crate::transport::PeerAddr;
use crate::wire::codec;
use crate::wire::frame::code;

use super::caller::CallerHalf;
use super::context::Peer;
use super::dispatch::{Dispatch, Next, Out};
use super::quiet::Quiet;
use super::serving::Serving;
use super::{CallDefaults, Reverse};

/// Frames read back to back before the loop looks at its other work
/// (finished calls, timers, shutdown) again.
const READ_BATCH: usize = 32;

/// Encoded answers of calls that run as their own tasks that may wait for
/// the connection's writer.
const RESPONSE_QUEUE: usize = 256;

/// Serves an accepted, greeted connection until it ends: the peer's calls
/// with `serving`, closing after `idle_timeout` without calls (and with a
/// goodbye that names `max_frame_length` after a frame above it), and saying
/// goodbye once `shutdown` fires and the running calls have finished
/// (`serving.kill` ends it at once).
pub(crate) async fn serve<L: Link>(
    established: Established<L>,
    peer: PeerAddr,
    identity: Option<Arc<PeerIdentity>>,
    serving: &Arc<Serving>,
    idle_timeout: Option<Duration>,
    max_frame_length: usize,
    shutdown: &CancellationToken,
) {
    tracing::debug!(%peer, "connection established");
    let _open = OpenConnection::new(Side::Server);
    let Established {
        mut reader,
        writer,
        negotiated,
    } = established;
    let peer_max_frame = negotiated.peer_max_frame_length();
    // A client that serves services of its own (it said so in its greeting)
    // can be called back on this connection.
    let reverse = (negotiated.peer_max_in_flight() > 0)
        .then(|| Reverse::new(peer.to_string(), CallDefaults::default(), negotiated));
    let (peer_channel, caller, mut reverse_queue, mut reverse_control) = match reverse {
        Some(Reverse {
            channel,
            caller,
            queue,
            control,
        }) => (Some(channel), Some(caller), Some(queue), Some(control)),
        None => (None, None, None, None),
    };

    let (responses, mut queue) = mpsc::channel::<Bytes>(RESPONSE_QUEUE);
    let (control, mut control_queue) = mpsc::unbounded_channel::<Bytes>();
    // Calls this side makes (callbacks) have even ids.
    let who = Arc::new(Peer {
        addr: peer.clone(),
        channel: peer_channel,
        identity,
        stopping: Some(shutdown.clone()),
        negotiated,
    });
    let mut dispatch = Dispatch {
        caller,
        ..Dispatch::new(serving, who, peer_max_frame, writer, responses, control, 0)
    };
    let mut reading = true;
    // How long since the last activity (a frame, a call finishing): the
    // timer looks four times per idle timeout, so a quiet connection closes
    // between one and one and a quarter timeouts after its last activity.
    let mut idle = Quiet::new(idle_timeout.map(|idle| idle / 4));

    // Armed while answers wait for a peer that does not read them.
    let mut stalled = None;
    // Made once, not per frame: a waiter on each token.
    let killed = serving.kill.cancelled();
    tokio::pin!(killed);
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);

    let goodbye = loop {
        // Idle: no call of the client's running, and none of this side's
        // (callbacks) waiting.
        let watch_idle = idle_timeout.is_some()
            && dispatch.is_idle()
            && !dispatch.draining
            && !dispatch
                .caller
                .as_ref()
                .is_some_and(CallerHalf::has_pending);
        if let Some(e) = dispatch.write_failed.take() {
            tracing::debug!(%peer, error = %e, "writing to a client failed");
            return;
        }
        tokio::select! {
            biased;
            () = &mut killed => {
                // At the end of a shutdown's grace period, not on an abort
                // (which drops everything, as a crash would).
                if shutdown.is_cancelled() {
                    dispatch.cut_off();
                    if dispatch.unflushed {
                        let flush = SinkExt::<Bytes>::flush(&mut dispatch.writer);
                        let _ = tokio::time::timeout(serving.write_timeout, flush).await;
                    }
                }
                return;
            }
            Some(done) = dispatch.calls.join_next_with_id(), if !dispatch.calls.is_empty() => {
                dispatch.finished(done);
                dispatch.unpark().await;
                idle.touch();
                if dispatch.is_idle() {
                    if dispatch.draining {
                        break Some(codec::encode_goodbye(code::SHUTTING_DOWN, "the server is shutting down"));
                    }
                    if !reading {
                        break None;
                    }
                }
            }
            // Only handlers reading their caller's stream send here; polled
            // (and so woken) only while there are such streams, or frames.
            Some(frame) = control_queue.recv(), if !dispatch.inboxes.is_empty() || !control_queue.is_empty() => {
                dispatch.send(frame).await;
            }
            Some(frame) = async {
                match &mut reverse_control {
                    Some(control) => control.recv().await,
                    None => std::future::pending().await,
                }
            }, if reverse_control.is_some() => dispatch.send(frame).await,
            Some(out) = recv_or_never(&mut reverse_queue), if reverse_queue.is_some() => {
                dispatch.send(out.frame.into_bytes()).await;
                if let Some(written) = out.written {
                    let _ = written.send(());
                }
            }
            Some(answer) = queue.recv() => dispatch.send(answer).await,
            () = &mut stopping, if !dispatch.draining => {
                dispatch.draining = true;
                dispatch.unpark().await;
                if dispatch.is_idle() {
                    break Some(codec::encode_goodbye(code::SHUTTING_DOWN, "the server is shutting down"));
                }
            }
            (now, _) = idle.look(), if watch_idle => {
                if idle.quiet_for(now) < idle_timeout.unwrap_or(Duration::MAX) {
                    continue;
                }
                tracing::debug!(%peer, "closing an idle connection");
                let message = format!("the connection was idle for {:?}", idle_timeout.unwrap_or_default());
                break Some(codec::encode_goodbye(code::IDLE_TIMEOUT, &message));
            }
            frame = reader.next(), if reading && dispatch.may_read() => {
                // This frame, then those already readable (up to a batch),
                // without a turn of this loop for each.
                let mut frame = frame;
                let mut taken = 0;
                let next = loop {
                    idle.touch();
                    let next = match frame {
                        None => {
                            // The client hung up: nobody waits for the answers
                            // of its calls any more, so they are stopped (as
                            // gRPC does); one-way calls may run to completion.
                            // Its answers to this side's calls will not come.
                            reading = false;
                            dispatch.caller_gone();
                            if let Some(caller) = &dispatch.caller {
                                caller.close(RpcError::connection_lost("the client closed its connection"));
                            }
                            if dispatch.is_idle() { Next::Stop(None) } else { Next::Continue }
                        }
                        Some(Ok(payload)) => dispatch.frame(payload).await,
                        Some(Err(e)) => {
                            tracing::info!(%peer, error = %e, "closing a connection after a bad frame");
                            let (code, message) = if e.kind() == io::ErrorKind::InvalidData {
                                (code::FRAME_TOO_LARGE, format!("a frame exceeded the server's limit of {} bytes", max_frame_length))
                            } else {
                                (code::PROTOCOL, format!("reading failed: {e}"))
                            };
                            Next::Stop(Some(codec::encode_goodbye(code, &message)))
                        }
                    };
                    taken += 1;
                    let more = taken < READ_BATCH
                        && matches!(next, Next::Continue)
                        && reading
                        && dispatch.may_read()
                        && dispatch.write_failed.is_none();
                    match more.then(|| reader.next().now_or_never()).flatten() {
                        Some(more) => frame = more,
                        None => break next,
                    }
                };
                if let Next::Stop(goodbye) = next {
                    break goodbye;
                }
            }
            // Last: only when nothing else is ready, so that everything
            // already readable is answered in this one write.
            flushed = std::future::poll_fn(|cx| {
                poll_flush_within(&mut dispatch.writer, &mut stalled, serving.write_timeout, cx)
            }), if dispatch.unflushed => match flushed {
                Ok(()) => dispatch.unflushed = false,
                Err(e) => dispatch.write_failed = Some(e),
            },
        }
    };

    // Whatever still runs is aborted; answers already queued go out first,
    // then the goodbye.
    let Dispatch {
        calls,
        mut writer,
        write_failed,
        caller,
        ..
    } = dispatch;
    if let Some(caller) = &caller {
        caller.close(RpcError::connection_lost("the client's connection closed"));
    }
    drop(calls);
    if write_failed.is_some() {
        return;
    }
    queue.close();
    let finish = async {
        while let Ok(answer) = queue.try_recv() {
            Out::feed(&mut writer, answer).await?;
        }
        if let Some(goodbye) = goodbye {
            Out::feed(&mut writer, goodbye).await?;
        }
        // Flushes, then shuts the write half down.
        SinkExt::<Bytes>::close(&mut writer).await
    };
    tokio::select! {
        finished = finish => {
            if let Err(e) = finished {
                tracing::debug!(%peer, error = %e, "writing to a client failed");
            }
        }
        () = &mut killed => {}
    }
    tracing::debug!(%peer, "connection closed");
}

/// Flushes `writer`, failing when the flush has waited `limit` for the peer
/// to read: answers that are written but not read count against the write
/// timeout even when no further answer is being added. The timer is armed
/// only once a flush has to wait, so a flush that completes at once (nearly
/// all of them) costs none.
fn poll_flush_within<W: futures::Sink<Bytes, Error = io::Error> + Unpin>(
    writer: &mut W,
    stalled: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    limit: Duration,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<io::Result<()>> {
    use std::future::Future;
    use std::task::Poll;
    if let Poll::Ready(flushed) = std::pin::Pin::new(&mut *writer).poll_flush(cx) {
        *stalled = None;
        return Poll::Ready(flushed);
    }
    let timer = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
    if timer.as_mut().poll(cx).is_ready() {
        *stalled = None;
        return Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer read nothing for {limit:?} while answers waited"),
        )));
    }
    Poll::Pending
}

/// The next frame from a queue that may not exist.
async fn recv_or_never<T>(queue: &mut Option<mpsc::Receiver<T>>) -> Option<T>
where
    T: Send,
{
    match queue {
        Some(queue) => queue.recv().await,
        None => std::future::pending().await,
    }
}
