//! The connection's reader: answers, stream items, credits, keepalive,
//! deadline sweeps, and the server's calls when this side serves.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::link::FrameRead;
use crate::telemetry::OpenConnection;
use crate::transport::PeerAddr;
use crate::wire::codec::{self};
use crate::wire::frame::{code, Message};
use crate::wire::version::Negotiated;

use super::caller::CallerHalf;
use super::context::Peer;
use super::dispatch::Dispatch;
use super::goodbye_error;
use super::pending::Shared;
use super::quiet::Quiet;
use super::serving::Serving;
use super::writer::Outgoing;

/// Frames read back to back before the reader looks at its timers and
/// its stop again: the cost of those looks is shared by a batch, and a
/// flood of frames cannot hold them off for long.
const READ_BATCH: usize = 32;

/// Matches responses to pending calls until the connection ends, then fails
/// whatever is still pending. With keepalive on, pings a server that has
/// been quiet for `interval` while calls are pending, and gives up on it if
/// nothing arrives within `timeout` of the ping. Bytes of a frame that is
/// still arriving count as hearing from the server: a large answer on a slow
/// link (with the pong queued behind it) is not a dead server.
#[allow(clippy::too_many_arguments)] // each is a different part of the session
pub(super) async fn read_loop<R: FrameRead>(
    mut reader: R,
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Bytes>,
    stop: CancellationToken,
    keepalive: Option<(Duration, Duration)>,
    serving: Option<ReaderServing>,
    sweep_idle: Duration,
    open: OpenConnection,
) {
    // Counted as open for as long as it reads.
    let _open = open;
    // Calls from the server, when this side serves.
    let (responses, mut answers) = mpsc::channel::<Bytes>(256);
    let mut dispatch = serving.as_ref().map(|serving| {
        Dispatch::for_channel(
            &serving.serving,
            Arc::new(Peer::at(serving.peer.clone(), serving.negotiated)),
            serving.negotiated.peer_max_frame_length(),
            serving.queue.clone(),
            responses,
            control.clone(),
        )
    });
    // How long since the server was heard from: the timer looks four times
    // per interval (and per timeout).
    let mut heard = Quiet::new(keepalive.map(|(interval, timeout)| interval.min(timeout) / 4));
    let mut ping_sent: Option<Instant> = None;
    let mut nonce = 0u64;
    // Bytes buffered (of a frame not yet complete) when last looked at.
    let mut buffered = reader.partial();
    let mut not_run = false;
    // Made once, not per frame: the stop waiter.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let caller = CallerHalf {
        shared: Arc::clone(&shared),
        control: control.clone(),
    };
    // Deadlines of pending calls: one timer for the whole table.
    let mut expired = Vec::new();
    let sweep = tokio::time::sleep_until(shared.expire(Instant::now(), sweep_idle, &mut expired));
    tokio::pin!(sweep);
    let reason = 'outer: loop {
        let reading = dispatch.as_ref().is_none_or(Dispatch::reading);
        let frame = tokio::select! {
            frame = reader.next(), if reading => frame,
            () = async {
                match &mut dispatch {
                    Some(dispatch) => dispatch.reap().await,
                    None => std::future::pending().await,
                }
            }, if dispatch.as_ref().is_some_and(Dispatch::busy) => continue,
            Some(answer) = answers.recv(), if dispatch.is_some() => {
                if let Some(dispatch) = &mut dispatch {
                    if let Err(e) = dispatch.answer_from_task(answer).await {
                        break RpcError::connection_lost(format!("writing to the server failed: {e}"));
                    }
                }
                continue;
            }
            () = &mut stopped => break RpcError::connection_lost("the channel was closed"),
            () = &mut sweep => {
                let next = shared.expire(Instant::now(), sweep_idle, &mut expired);
                sweep.as_mut().reset(next);
                for id in expired.drain(..) {
                    tracing::debug!(id, "deadline passed; telling the server to stop the call");
                    let _ = control.send(codec::encode_control(&Message::Cancel { id }));
                }
                continue;
            }
            (now, active) = heard.look(), if keepalive.is_some() => {
                let now_buffered = reader.partial();
                if active || now_buffered != buffered {
                    buffered = now_buffered;
                    heard.restart(now);
                    ping_sent = None;
                }
                let Some((interval, timeout)) = keepalive else {
                    continue;
                };
                match ping_sent {
                    Some(sent) if now.saturating_duration_since(sent) >= timeout => {
                        break RpcError::connection_lost(format!(
                            "the server did not answer a keepalive ping within {timeout:?}"
                        ));
                    }
                    Some(_) => {}
                    None if heard.quiet_for(now) >= interval => {
                        if shared.has_pending() {
                            nonce += 1;
                            let _ = control.send(codec::encode_control(&Message::Ping { nonce }));
                            ping_sent = Some(now);
                        } else {
                            heard.restart(now);
                        }
                    }
                    None => {}
                }
                continue;
            }
        };
        // This frame, then those already readable (up to a batch), without
        // going back through every branch above for each.
        let mut frame = frame;
        let mut taken = 0;
        loop {
            heard.touch();
            ping_sent = None;
            buffered = reader.partial();
            let payload = match frame {
                None => break 'outer RpcError::connection_lost("the server closed the connection"),
                Some(Err(e)) => {
                    break 'outer RpcError::connection_lost(format!(
                        "reading from the server failed: {e}"
                    ))
                }
                Some(Ok(payload)) => payload,
            };
            match codec::decode_message(&payload) {
                Ok((Message::Goodbye { code, message }, _)) => {
                    // After these goodbyes the server reads no more, and has
                    // answered everything it ran.
                    not_run = matches!(code, code::SHUTTING_DOWN | code::IDLE_TIMEOUT);
                    break 'outer goodbye_error(code, message);
                }
                Ok((Message::Ping { nonce }, _)) => {
                    let _ = control.send(codec::encode_control(&Message::Pong { nonce }));
                }
                Ok((Message::Pong { .. }, _)) => {}
                // Frames about this side's own calls (odd ids).
                Ok((message, used)) if message.call_id().is_some_and(|id| id % 2 == 1) => {
                    if let Err(reason) = caller.frame(message, &payload, used) {
                        break 'outer reason;
                    }
                }
                // Calls the server makes (even ids), when this side serves.
                Ok((message, _)) if dispatch.is_some() && message.call_id().is_some() => {
                    if let Some(dispatch) = &mut dispatch {
                        if let Err(goodbye) = dispatch.peer_frame(payload.clone()).await {
                            if let Some(goodbye) = goodbye {
                                let _ = control.send(goodbye);
                            }
                            break 'outer RpcError::Protocol {
                                message: "the server broke the protocol in a call it made"
                                    .to_owned(),
                            };
                        }
                    }
                }
                // A cancel or a credit for a call that is not running is no
                // news (section 5.3 of the protocol).
                Ok((message @ (Message::Cancel { .. } | Message::Credit { .. }), _)) => {
                    tracing::debug!(?message, "a frame about a call this channel does not serve");
                }
                Ok((message, _)) => {
                    break 'outer RpcError::Protocol {
                        message: format!(
                            "the server sent {} for a call of its own, but this channel serves no services",
                            message.kind()
                        ),
                    };
                }
                Err(e) => {
                    break 'outer RpcError::Protocol {
                        message: format!("a frame from the server did not decode: {e}"),
                    };
                }
            }
            taken += 1;
            if taken == READ_BATCH || !dispatch.as_ref().is_none_or(Dispatch::reading) {
                break;
            }
            match reader.next().now_or_never() {
                Some(next) => frame = next,
                None => break,
            }
        }
    };
    tracing::debug!(%reason, "connection closed");
    shared.close(reason, not_run);
    stop.cancel();
}

/// What a client's reader needs to serve the server's calls.
pub(super) struct ReaderServing {
    pub(super) serving: Arc<Serving>,
    /// The server, as the handlers see it.
    pub(super) peer: PeerAddr,
    /// The writer's queue, for answers.
    pub(super) queue: mpsc::Sender<Outgoing>,
    /// What the greetings settled on.
    pub(super) negotiated: Negotiated,
}
