//! Typed calls over any [`Invoke`]: the arguments encoded into a
//! [`RawCall`], the answer decoded from its [`RawReply`]. Generated clients
//! call these (through `__private`), and so do [`Channel`](crate::Channel)'s
//! own typed methods: one path for both. Each has the shape of the
//! `Channel` method of the same name, with the transport first; the
//! arguments are encoded before the future is made, so it borrows only the
//! transport.

use std::borrow::Cow;
use std::future::Future;

use crate::error::RpcError;
use crate::streaming::Streaming;
use crate::wire::codec;

use super::{CallKind, CallOptions, Invoke, RawCall, RawReply};

/// A call of a method that answers with one value.
pub fn call_with<'c, C, A, R>(
    channel: &'c C,
    options: &CallOptions,
    service: impl Into<Cow<'static, str>>,
    method: impl Into<Cow<'static, str>>,
    args: &A,
) -> impl Future<Output = Result<R, RpcError>> + Send + 'c
where
    C: Invoke,
    A: serde::Serialize + ?Sized,
    R: serde::de::DeserializeOwned + 'c,
{
    let call = RawCall::new(service, method, CallKind::Unary, options.clone(), args);
    finish_unary(channel, call)
}

/// A one-way call.
pub fn call_oneway_with<'c, C, A>(
    channel: &'c C,
    options: &CallOptions,
    service: impl Into<Cow<'static, str>>,
    method: impl Into<Cow<'static, str>>,
    args: &A,
) -> impl Future<Output = Result<(), RpcError>> + Send + 'c
where
    C: Invoke,
    A: serde::Serialize + ?Sized,
{
    let call = RawCall::new(service, method, CallKind::OneWay, options.clone(), args);
    finish(channel, call, RawReply::into_sent)
}

/// A call of a method that answers with a stream.
pub fn call_streaming_with<'c, C, A, R>(
    channel: &'c C,
    options: &CallOptions,
    service: impl Into<Cow<'static, str>>,
    method: impl Into<Cow<'static, str>>,
    args: &A,
) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'c
where
    C: Invoke,
    A: serde::Serialize + ?Sized,
    R: serde::de::DeserializeOwned + Send + 'static,
{
    let call = RawCall::new(
        service,
        method,
        CallKind::ServerStream,
        options.clone(),
        args,
    );
    finish(channel, call, RawReply::into_stream)
}

/// A call of a method that takes a stream and answers with one value.
pub fn call_with_stream<'c, C, A, S, R>(
    channel: &'c C,
    options: &CallOptions,
    service: impl Into<Cow<'static, str>>,
    method: impl Into<Cow<'static, str>>,
    args: &A,
    items: Streaming<S>,
) -> impl Future<Output = Result<R, RpcError>> + Send + 'c
where
    C: Invoke,
    A: serde::Serialize + ?Sized,
    S: serde::Serialize + Send + 'static,
    R: serde::de::DeserializeOwned + 'c,
{
    let call = RawCall::new(
        service,
        method,
        CallKind::ClientStream,
        options.clone(),
        args,
    )
    .map(|call| call.with_stream(items));
    finish(channel, call, RawReply::into_value)
}

/// A call of a method that takes a stream and answers with one.
pub fn call_streaming_with_stream<'c, C, A, S, R>(
    channel: &'c C,
    options: &CallOptions,
    service: impl Into<Cow<'static, str>>,
    method: impl Into<Cow<'static, str>>,
    args: &A,
    items: Streaming<S>,
) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'c
where
    C: Invoke,
    A: serde::Serialize + ?Sized,
    S: serde::Serialize + Send + 'static,
    R: serde::de::DeserializeOwned + Send + 'static,
{
    let call = RawCall::new(service, method, CallKind::BothWays, options.clone(), args)
        .map(|call| call.with_stream(items));
    finish(channel, call, RawReply::into_stream)
}

/// `call` over `channel`, its reply taken by `take`. An `async fn`, not a
/// block returned by the helpers above: its future is built where it is
/// awaited, not built and then moved (a call's future is large, and a
/// move copies all of it).
async fn finish<C: Invoke, T>(
    channel: &C,
    call: Result<RawCall, RpcError>,
    take: fn(RawReply) -> Result<T, RpcError>,
) -> Result<T, RpcError> {
    take(channel.invoke(call?).await?)
}

/// [`finish`] for a unary call, through [`Invoke::invoke_unary`](Invoke::invoke_unary).
async fn finish_unary<C: Invoke, R: serde::de::DeserializeOwned>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> Result<R, RpcError> {
    let value = channel.invoke_unary(call?).await?;
    codec::decode_value(&value).map_err(|message| RpcError::BadResponse { message })
}
