//! A [`Channel`] as the call seam: how a [`RawCall`] goes over it, and the
//! typed calls for code that has no generated client.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::future::Either;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::call::{typed, CallKind, CallOptions, Invoke, RawCall, RawReply, RawStream};
use crate::error::RpcError;
use crate::session::{self, Channel, RemoteStream, Target};
use crate::streaming::Streaming;
use crate::telemetry::Observed;
use crate::wire::body::BodyStream;
use crate::wire::metadata::ReplyMetadata;
use crate::wire::request::RequestBody;

impl Channel {
    /// Calls `service.method` with `args` and decodes the answer as `R`, with
    /// the channel's default options.
    ///
    /// Generated clients do the same through [`Invoke`]; use this to call a
    /// service without its trait. `args` is encoded the way generated
    /// clients encode a method's arguments: as a tuple, `&(a, b)` for two
    /// arguments, `&(a,)` for one, `&()` for none. The arguments are encoded
    /// before this returns, and the future owns what it needs (`'static`).
    ///
    /// # Errors
    /// Any [`RpcError`]: the call failed on the way, on the server, or the
    /// connection did.
    pub fn call<A, R>(
        &self,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'static
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + 'static,
    {
        self.call_with(&CallOptions::default(), service, method, args)
    }

    /// [`call`](Self::call) with per-call options.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn call_with<A, R>(
        &self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'static
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + 'static,
    {
        let call = typed::encode_named(options, service, method, CallKind::Unary, args);
        typed::unary(self, call)
    }

    /// Sends a one-way call: returns once the request has been written to
    /// the connection; the server runs it and sends no answer, so its
    /// outcome is never known here. Never retried.
    ///
    /// # Errors
    /// When the request cannot be encoded or written (the connection is gone,
    /// or the deadline passed first).
    pub fn call_oneway_with<A>(
        &self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<(), RpcError>> + Send + 'static
    where
        A: Serialize + ?Sized,
    {
        let call = typed::encode_named(options, service, method, CallKind::OneWay, args);
        typed::oneway(self, call)
    }

    /// Starts a call whose answer is a stream (see [`Streaming`]): returns
    /// once the request is queued for writing, without waiting for the
    /// server; the stream yields the items as they arrive, and any failure
    /// of the call (an unknown method, the deadline, a lost connection) as
    /// its last item. Never sent again.
    ///
    /// # Errors
    /// When the request cannot be encoded or sent: no connection, or the
    /// deadline passed while waiting for one or for room in the window.
    pub fn call_streaming_with<A, R>(
        &self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'static
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let call = typed::encode_named(options, service, method, CallKind::ServerStream, args);
        typed::streaming(self, call)
    }

    /// Starts a call that sends `items` as a stream with its arguments
    /// (a client stream) and waits for its one answer. The items are taken
    /// from `items` as the server's credit allows; the server can stop the
    /// stream early (then `items` is dropped). Never sent again.
    ///
    /// # Errors
    /// As [`call_with`](Self::call_with); an error item of `items` reaches
    /// the server's handler as the last item of its stream.
    pub fn call_with_stream<A, S, R>(
        &self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
        items: Streaming<S>,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'static
    where
        A: Serialize + ?Sized,
        S: Serialize + Send + 'static,
        R: DeserializeOwned + 'static,
    {
        let call = typed::encode_named(options, service, method, CallKind::ClientStream, args)
            .map(|call| call.with_stream(items));
        typed::value(self, call)
    }

    /// Starts a call that sends `items` as a stream and answers with a
    /// stream (both ways at once): [`call_with_stream`](Self::call_with_stream)
    /// and [`call_streaming_with`](Self::call_streaming_with) together.
    /// Dropping the returned stream cancels the call, and with it `items`.
    ///
    /// # Errors
    /// As [`call_streaming_with`](Self::call_streaming_with).
    pub fn call_streaming_with_stream<A, S, R>(
        &self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
        items: Streaming<S>,
    ) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'static
    where
        A: Serialize + ?Sized,
        S: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let call = typed::encode_named(options, service, method, CallKind::BothWays, args)
            .map(|call| call.with_stream(items));
        typed::streaming(self, call)
    }
}

impl Invoke for Channel {
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        invoke(self, call)
    }

    /// The unary path without the kind's dispatch.
    #[inline]
    fn invoke_unary(self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        invoke_unary(self, call)
    }
}

/// `call` made over `target`, whatever its kind: what [`Invoke::invoke`]
/// does for every target (a channel, a balanced channel).
pub(crate) fn invoke<T: Target>(
    target: T,
    call: RawCall,
) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
    let kind = call.kind();
    if !matches!(
        kind,
        CallKind::OneWay | CallKind::ServerStream | CallKind::ClientStream | CallKind::BothWays
    ) {
        // `Unary`, and kinds added later that answer with one value.
        return Either::Right(invoke_unary(target, call).map(|value| value.map(RawReply::Value)));
    }
    let parts = call.into_parts();
    let (deadline, timeout) = target
        .defaults()
        .deadline(parts.options.get_timeout(), parts.inherited);
    let to = Call {
        target,
        service: parts.service,
        method: parts.method,
        deadline,
        timeout,
        reply: parts.options.get_reply_metadata().cloned(),
        observed: parts.observed,
    };
    Either::Left(send(to, kind, parts.args, parts.stream, parts.refusable))
}

/// A unary `call` made over `target`: what [`Invoke::invoke_unary`] does
/// for every target.
#[inline]
pub(crate) fn invoke_unary<T: Target>(
    target: T,
    call: RawCall,
) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
    let parts = call.into_parts();
    let (deadline, timeout) = target
        .defaults()
        .deadline(parts.options.get_timeout(), parts.inherited);
    let idempotent = parts.options.is_idempotent();
    let reply = parts.options.get_reply_metadata().cloned();
    session::unary(
        target,
        parts.args,
        idempotent,
        parts.service,
        parts.method,
        deadline,
        timeout,
        reply,
        parts.observed,
    )
}

/// Where a call made elsewhere goes, and its deadline (fixed when the call
/// was handed over, so that a handler's own deadline, read from the task
/// that made the call, still bounds a call spawned elsewhere).
struct Call<T> {
    target: T,
    service: Cow<'static, str>,
    method: Cow<'static, str>,
    deadline: Instant,
    timeout: Duration,
    /// Where the answer's metadata goes, if the caller reads it.
    reply: Option<ReplyMetadata>,
    /// The call's observation (its span notes the attempts).
    observed: Observed,
}

/// A call of any other kind made elsewhere (see [`Invoke`]).
async fn send<T: Target>(
    to: Call<T>,
    kind: CallKind,
    args: RequestBody,
    stream: Option<BodyStream>,
    refusable: bool,
) -> Result<RawReply, RpcError> {
    let Call {
        target,
        service,
        method,
        deadline,
        timeout,
        reply,
        observed,
    } = to;
    let names = (&*service, &*method, observed.enabled_span());
    match (kind, stream) {
        (CallKind::OneWay, _) => session::oneway(&target, args, names, deadline, timeout)
            .await
            .map(|()| RawReply::Sent),
        (CallKind::ServerStream, _) => {
            let stream = session::streaming(
                &target, args, None, refusable, names, deadline, timeout, reply,
            )
            .await?;
            answered(stream, refusable).await
        }
        (CallKind::BothWays, Some(items)) => {
            let stream = session::streaming(
                &target,
                args,
                Some(items),
                refusable,
                names,
                deadline,
                timeout,
                reply,
            )
            .await?;
            answered(stream, refusable).await
        }
        (CallKind::ClientStream, Some(items)) => {
            session::sending(&target, args, items, names, deadline, timeout, reply)
                .await
                .map(RawReply::Value)
        }
        // A kind that sends a stream, without one.
        _ => Err(RpcError::Encode {
            what: "request",
            message: format!("a {kind:?} call needs a stream to send (RawCall::with_stream)"),
        }),
    }
}

/// A streaming call's reply: a refusable call hears first whether its
/// stream was accepted.
async fn answered(mut stream: RemoteStream, refusable: bool) -> Result<RawReply, RpcError> {
    if refusable {
        if let Some(refusal) = stream.accepted().await? {
            return Ok(RawReply::Value(refusal));
        }
    }
    Ok(RawReply::Stream(RawStream::remote(stream)))
}
