//! A request from the peer: its flags, deadline and metadata checked, its
//! interceptor run, and the call started, queued or refused.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::RpcError;
use crate::intercept::CallInfo;
use crate::telemetry::Observed;
use crate::wire::codec;
use crate::wire::frame::{code, flags, STREAM_WINDOW};
use crate::wire::metadata::Metadata;

use super::context::CallContext;
use super::dispatch::{Admitted, Dispatch, Inbox, Out, Parked, RequestHead};
use super::inbox::InboxParts;
use super::run::{panicked, start_call};
use super::service::Request;

impl<O: Out> Dispatch<'_, O> {
    /// Handles a request whose header is `head`; its body starts at `used`
    /// in `payload`.
    /// What to do now is returned, not done here, so that the call's future
    /// is not one level deeper for it (futures are moved whole).
    pub(super) fn request(&mut self, head: RequestHead, payload: &Bytes, used: usize) -> Admitted {
        let RequestHead {
            id,
            method,
            timeout_micros,
            flags,
        } = head;
        let oneway = flags & flags::ONEWAY != 0;
        let stream = flags & flags::STREAM_OUT != 0;
        let sends = flags & flags::STREAM_IN != 0;
        let accept = flags & flags::ACCEPT != 0;
        if flags & !flags::KNOWN != 0 || (oneway && (stream || sends)) || (accept && !stream) {
            if !oneway {
                let message =
                    format!("request flags {flags:#04x} are not supported by this server");
                let frame = codec::encode_response(
                    id,
                    Err(RpcError::BadRequest { message }),
                    self.peer_max_frame,
                );
                return Admitted::Send(frame);
            }
            return Admitted::Done;
        }
        if self.draining {
            if !oneway {
                let frame =
                    codec::encode_response(id, Err(RpcError::ShuttingDown), self.peer_max_frame);
                return Admitted::Send(frame);
            }
            return Admitted::Done;
        }
        if timeout_micros == Some(0) {
            // The caller has given up already: not run, not answered
            // (as for a call whose deadline passes while it runs).
            tracing::debug!(peer = %self.peer.addr, id, method, "a request arrived with no time left; not run");
            return Admitted::Done;
        }
        if self.in_flight(id) {
            // Two answers under one id could not be told apart.
            if !oneway {
                let message = format!(
                    "request id {id} is already in flight on this connection; this request was not run"
                );
                let frame = codec::encode_refusal(
                    id,
                    code::DUPLICATE_ID,
                    &message,
                    &[],
                    self.peer_max_frame,
                );
                return Admitted::Send(frame);
            }
            return Admitted::Done;
        }
        let Some(route) = self.state.routes.get(method) else {
            if oneway {
                tracing::info!(
                    id,
                    method,
                    "a one-way call to a method this side does not have"
                );
                return Admitted::Done;
            }
            let message = format!("no service of this server has a method with id {method:#010x}");
            return Admitted::Send(codec::encode_refusal(
                id,
                code::UNKNOWN_METHOD,
                &message,
                &[],
                self.peer_max_frame,
            ));
        };
        let (service, method) = (route.names.service(), route.names.method());
        let now = Instant::now();
        let metrics = route.names.metrics();
        let observed = Observed::server(metrics, service, method, &self.peer.addr, id, now);
        if let Some(misfit) = route.shape.and_then(|shape| shape.misfit(flags)) {
            // Refused before anything runs (sections 5.6 and 5.7).
            let error = RpcError::BadRequest {
                message: misfit.to_owned(),
            };
            return self.refusal(id, oneway, error, observed);
        }
        let deadline =
            // A deadline too far away to represent is no deadline.
            timeout_micros.and_then(|micros| now.checked_add(Duration::from_micros(micros)));
        // The metadata, if any, comes first in the body; decoded
        // within the server's limit, so an oversized block fails
        // without being allocated.
        let mut args_at = used;
        let metadata = if flags & flags::METADATA != 0 {
            let limit = self.state.max_metadata;
            let body = payload.get(used..).unwrap_or_default();
            match codec::decode_metadata(body.get(..limit).unwrap_or(body)) {
                Ok((entries, n)) => {
                    args_at += n;
                    Some(Metadata::received(entries))
                }
                Err(e) => {
                    let message = format!(
                        "the call's metadata did not decode within the server's limit of {limit} bytes: {e}"
                    );
                    return self.refusal(id, oneway, RpcError::BadRequest { message }, observed);
                }
            }
        } else {
            None
        };
        if let Some(interceptor) = &self.state.interceptor {
            let info = CallInfo {
                service,
                method,
                metadata: metadata.as_ref().unwrap_or_else(|| Metadata::empty()),
                peer: &self.peer.addr,
                identity: self.peer.identity.as_deref(),
            };
            let verdict =
                std::panic::catch_unwind(AssertUnwindSafe(|| interceptor.intercept(&info)))
                    .unwrap_or_else(|panic| Err(panicked(&*panic)));
            if let Err(error) = verdict {
                tracing::debug!(peer = %self.peer.addr, service, method, %error, "an interceptor refused a call");
                return self.refusal(id, oneway, error, observed);
            }
        }
        #[cfg(feature = "opentelemetry")]
        crate::telemetry::extract(observed.span(), metadata.as_ref());
        let inbox = sends.then(|| {
            let (events, receiver) = mpsc::unbounded_channel();
            let credit = Arc::new(AtomicU32::new(STREAM_WINDOW));
            self.inboxes.insert(
                id,
                Inbox {
                    events,
                    credit: Arc::clone(&credit),
                    received: &metrics.items_received,
                },
            );
            InboxParts {
                id,
                events: receiver,
                credit,
                control: self.control.clone(),
            }
        });
        let context = CallContext::new(id, deadline, Arc::clone(&self.peer))
            .with_inbox(inbox)
            .with_metadata(metadata)
            .with_reply(flags & flags::REPLY_METADATA != 0);
        let call = start_call(
            &route.service,
            Request::new(payload, &route.names, args_at, context.clone()),
        );
        let request = Parked {
            id,
            oneway,
            stream,
            accept,
            context,
            call,
            size: payload.len(),
            observed,
        };
        if self.has_room(request.oneway) {
            return Admitted::Run(request);
        } else if request.oneway {
            self.waiting_bytes += request.size;
            self.waiting.push_back(request);
        } else {
            self.parked = Some(request);
        }
        Admitted::Done
    }

    /// The answer to a call refused before it ran: none for a one-way
    /// call (the refusal is logged).
    fn refusal(&self, id: u64, oneway: bool, error: RpcError, mut observed: Observed) -> Admitted {
        observed.end(Err(&error));
        if oneway {
            tracing::info!(id, %error, "a one-way call failed");
            return Admitted::Done;
        }
        Admitted::Send(codec::encode_response(id, Err(error), self.peer_max_frame))
    }
}
