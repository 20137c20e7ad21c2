//! A [`Channel`] as the call seam: how a [`RawCall`] goes over it, and the
//! typed calls for code that has no generated client.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use bytes::Bytes;

use crate::call::{typed, CallKind, CallOptions, CallParts, Invoke, RawCall, RawReply, RawStream};
use crate::error::RpcError;
use crate::session::Channel;
use crate::streaming::Streaming;

impl Channel {
    /// Calls `service.method` with `args` and decodes the answer as `R`, with
    /// the channel's default options.
    ///
    /// Generated clients do the same through [`Invoke`]; use this to call a
    /// service without its trait. `args` is encoded the way generated
    /// clients encode a method's arguments: as a tuple, `&(a, b)` for two
    /// arguments, `&(a,)` for one, `&()` for none. The arguments are encoded
    /// before this returns, so the future borrows only `self`.
    ///
    /// # Errors
    /// Any [`RpcError`]: the call failed on the way, on the server, or the
    /// connection did.
    pub fn call<'a, A, R>(
        &'a self,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + 'a,
    {
        self.call_with(&CallOptions::default(), service, method, args)
    }

    /// [`call`](Self::call) with per-call options.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub fn call_with<'a, A, R>(
        &'a self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + 'a,
    {
        typed::call_with(self, options, service.to_owned(), method.to_owned(), args)
    }

    /// Sends a one-way call: returns once the request has been written to
    /// the connection; the server runs it and sends no answer, so its
    /// outcome is never known here. Never retried.
    ///
    /// # Errors
    /// When the request cannot be encoded or written (the connection is gone,
    /// or the deadline passed first).
    pub fn call_oneway_with<'a, A>(
        &'a self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<(), RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
    {
        typed::call_oneway_with(self, options, service.to_owned(), method.to_owned(), args)
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
    pub fn call_streaming_with<'a, A, R>(
        &'a self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
    ) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        typed::call_streaming_with(self, options, service.to_owned(), method.to_owned(), args)
    }

    /// Starts a call that sends `items` as a stream with its arguments
    /// (a client stream) and waits for its one answer. The items are taken
    /// from `items` as the server's credit allows; the server can stop the
    /// stream early (then `items` is dropped). Never sent again.
    ///
    /// # Errors
    /// As [`call_with`](Self::call_with); an error item of `items` reaches
    /// the server's handler as the last item of its stream.
    pub fn call_with_stream<'a, A, S, R>(
        &'a self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
        items: Streaming<S>,
    ) -> impl Future<Output = Result<R, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        S: Serialize + Send + 'static,
        R: DeserializeOwned + 'a,
    {
        typed::call_with_stream(
            self,
            options,
            service.to_owned(),
            method.to_owned(),
            args,
            items,
        )
    }

    /// Starts a call that sends `items` as a stream and answers with a
    /// stream (both ways at once): [`call_with_stream`](Self::call_with_stream)
    /// and [`call_streaming_with`](Self::call_streaming_with) together.
    /// Dropping the returned stream cancels the call, and with it `items`.
    ///
    /// # Errors
    /// As [`call_streaming_with`](Self::call_streaming_with).
    pub fn call_streaming_with_stream<'a, A, S, R>(
        &'a self,
        options: &CallOptions,
        service: &str,
        method: &str,
        args: &A,
        items: Streaming<S>,
    ) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'a
    where
        A: Serialize + ?Sized,
        S: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        typed::call_streaming_with_stream(
            self,
            options,
            service.to_owned(),
            method.to_owned(),
            args,
            items,
        )
    }
}

impl Invoke for Channel {
    #[inline]
    fn invoke(&self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        send(self, call)
    }

    /// The unary path without the kind's dispatch: the call's future is
    /// the round trip's own, built where it is awaited.
    #[inline]
    fn invoke_unary(&self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        unary(self, call.into_parts())
    }
}

/// A unary call made elsewhere (see [`Invoke::invoke_unary`]).
async fn unary(channel: &Channel, parts: CallParts) -> Result<Bytes, RpcError> {
    let CallParts {
        service,
        method,
        options,
        args,
        ..
    } = parts;
    let (deadline, timeout) = channel.deadline(options.get_timeout());
    channel
        .unary(
            args,
            options.is_idempotent(),
            &service,
            &method,
            deadline,
            timeout,
        )
        .await
}

/// Sends a call made elsewhere (see [`Invoke`]).
async fn send(channel: &Channel, call: RawCall) -> Result<RawReply, RpcError> {
    let parts = call.into_parts();
    let kind = parts.kind;
    if !matches!(
        kind,
        CallKind::OneWay | CallKind::ServerStream | CallKind::ClientStream | CallKind::BothWays
    ) {
        // `Unary`, and kinds added later that answer with one value.
        return unary(channel, parts).await.map(RawReply::Value);
    }
    let CallParts {
        service,
        method,
        options,
        args,
        stream,
        ..
    } = parts;
    let (service, method) = (&*service, &*method);
    let (deadline, timeout) = channel.deadline(options.get_timeout());
    let remote = |stream| RawReply::Stream(RawStream::remote(stream));
    match (kind, stream) {
        (CallKind::OneWay, _) => channel
            .oneway(args, service, method, deadline, timeout)
            .await
            .map(|()| RawReply::Sent),
        (CallKind::ServerStream, _) => channel
            .streaming(args, None, service, method, deadline, timeout)
            .await
            .map(remote),
        (CallKind::BothWays, Some(items)) => channel
            .streaming(args, Some(items), service, method, deadline, timeout)
            .await
            .map(remote),
        (CallKind::ClientStream, Some(items)) => channel
            .sending(args, items, service, method, deadline, timeout)
            .await
            .map(RawReply::Value),
        // A kind that sends a stream, without one.
        _ => Err(RpcError::Encode {
            what: "request",
            message: format!("a {kind:?} call needs a stream to send (RawCall::with_stream)"),
        }),
    }
}
