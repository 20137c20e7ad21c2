//! Running one call of the peer's: the first poll on the session's own
//! task, then a task of its own if it waits; its deadline, its panics, the
//! shape of its answer, and the stream it answers with.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tracing::Instrument;

use crate::error::RpcError;
use crate::telemetry;
use crate::wire::body::{Body, BodyRepr, BodyStream};
use crate::wire::codec;
use crate::wire::frame::Message;

use super::dispatch::{encode_answer, Dispatch, Out, Parked, Running};
use super::flow::{initial_credit, produce, Produced};
use super::service::{Request, Service, ServiceFuture};
use super::serving::Counted;

impl<O: Out> Dispatch<'_, O> {
    /// Runs one call: once, right here, and as its own task if it waits;
    /// within its deadline, with its context, catching panics; answers
    /// unless it is one-way.
    pub(super) async fn spawn(&mut self, request: Parked) {
        let Parked {
            id,
            oneway,
            stream,
            accept,
            context,
            call,
            size: _,
            mut observed,
        } = request;
        let deadline = context.deadline();
        // Only for a caller that reads reply metadata.
        let reply = context.reply_slot();
        let max_metadata = self.state.max_metadata;
        let mut future = match call {
            Ok(future) => future,
            Err(error) => {
                self.inboxes.remove(&id);
                observed.end(Err(&error));
                return self.answer(id, oneway, Err(error), reply.as_deref()).await;
            }
        };
        // Most handlers finish without waiting: run them once right here, on
        // the connection's task, and skip the cost of a task of their own. A
        // handler that waits (for I/O, a timer, a lock) moves to its own task
        // at its first wait, so it never holds up the calls behind it.
        let first = context.clone().sync_scope(|| {
            let _entered = observed.is_watched().then(|| observed.span().enter());
            std::panic::catch_unwind(AssertUnwindSafe(|| (&mut future).now_or_never()))
        });
        let body = match first {
            Ok(Some(result)) => match shaped(result, stream, accept) {
                // A stream is driven by a task of its own.
                Ok(Body(BodyRepr::Stream(items))) => Some(items),
                result => {
                    self.inboxes.remove(&id);
                    observed.end(result.as_ref().map(drop));
                    return self.answer(id, oneway, result, reply.as_deref()).await;
                }
            },
            Err(panic) => {
                self.inboxes.remove(&id);
                let result = Err(panicked(&*panic));
                observed.end(result.as_ref().map(drop));
                return self.answer(id, oneway, result, reply.as_deref()).await;
            }
            Ok(None) => None,
        };
        let credit = stream.then(|| Arc::new(initial_credit()));
        let in_flight = Counted::new(&self.state.in_flight);
        let responses = self.responses.clone();
        let peer_max_frame = self.peer_max_frame;
        let stream_credit = credit.clone();
        let span = observed.span().clone();
        let task = self.calls.spawn(
            async move {
                let _in_flight = in_flight;
                let work = async {
                    let items = match body {
                        Some(items) => items,
                        None => match shaped(future.await, stream, accept)? {
                            Body(BodyRepr::Stream(items)) => items,
                            body => return Ok(body),
                        },
                    };
                    if accept {
                        // Accepted: the caller waits to hear it before items.
                        let head = codec::encode_control(&Message::Head { id });
                        if responses.send(head).await.is_err() {
                            return Err(RpcError::connection_lost("the connection closed"));
                        }
                    }
                    let credit = stream_credit.ok_or_else(|| RpcError::Protocol {
                        message: "a stream without credit".to_owned(),
                    })?;
                    let items = match observed.metrics() {
                        Some(metrics) => counted(items, &metrics.items_sent),
                        None => items,
                    };
                    drive_stream(id, items, &credit, &responses, peer_max_frame).await
                };
                let run = context.scope(AssertUnwindSafe(work).catch_unwind());
                let outcome = match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, run).await.ok(),
                    None => Some(run.await),
                };
                let Some(outcome) = outcome else {
                    // The caller has given up: stop, and send nothing.
                    tracing::debug!(id, "deadline passed; the handler was stopped");
                    observed.end_as(telemetry::DEADLINE_EXCEEDED, None);
                    return (id, oneway);
                };
                let result = outcome.unwrap_or_else(|panic| Err(panicked(&*panic)));
                observed.end(result.as_ref().map(drop));
                if !oneway {
                    let frame =
                        encode_answer(id, result, peer_max_frame, reply.as_deref(), max_metadata);
                    // Fails only when the connection is gone.
                    let _ = responses.send(frame.freeze()).await;
                } else if let Err(error) = result {
                    tracing::info!(id, %error, "a one-way call failed");
                }
                (id, oneway)
            }
            .instrument(span),
        );
        if oneway {
            self.oneway_running += 1;
        } else {
            self.running.insert(id, Running { task, credit });
        }
    }
}

/// `items`, each one counted as it is taken.
fn counted(items: BodyStream, sent: &'static metrics::Counter) -> BodyStream {
    Box::pin(items.inspect(move |_| sent.increment(1)))
}

/// Checks that a handler answers the way the call asked: a stream for a
/// streaming call, one value otherwise.
///
/// With `accept` (the caller of a method that may refuse its stream waits
/// to hear which), one value is a refusal, answered as the call's value.
fn shaped(result: Result<Body, RpcError>, stream: bool, accept: bool) -> Result<Body, RpcError> {
    match result {
        Ok(body) if body.is_stream() && !stream => Err(RpcError::BadRequest {
            message: super::misfit::ANSWERS_STREAM.to_owned(),
        }),
        Ok(body) if !body.is_stream() && stream && !accept => Err(RpcError::BadRequest {
            message: "the method answered with one value where the call asked for a stream: \
                      it refused the stream, and a call without ACCEPT cannot receive a \
                      refusal (section 5.8 of PROTOCOL.md), or it never streams (do both \
                      sides use the same trait?)"
                .to_owned(),
        }),
        result => result,
    }
}

/// Sends the items of an answer stream as the caller's credit allows, and
/// returns how the call ends: an empty body after the last item, or the
/// error that ended the stream. The producer is polled only when there is
/// credit for what it yields, so it never runs ahead of the window.
async fn drive_stream(
    id: u64,
    mut items: BodyStream,
    credit: &Semaphore,
    responses: &mpsc::Sender<Bytes>,
    limit: usize,
) -> Result<Body, RpcError> {
    let send = |frame| async move { responses.send(frame).await.is_ok() };
    match produce(id, &mut items, credit, limit, send).await {
        Produced::Done => Ok(Body::from(Bytes::new())),
        Produced::Failed(error) => Err(error),
        Produced::Gone => Err(RpcError::connection_lost("the connection closed")),
    }
}

pub(super) fn start_call(
    service: &Arc<dyn Service>,
    request: Request,
) -> Result<ServiceFuture, RpcError> {
    // `call` should only pick a method, but a hand-written one might panic.
    std::panic::catch_unwind(AssertUnwindSafe(|| service.call(request)))
        .map_err(|panic| panicked(&*panic))
}

pub(super) fn panicked(panic: &(dyn Any + Send)) -> RpcError {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    };
    RpcError::Panicked { message }
}
