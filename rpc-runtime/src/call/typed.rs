//! Typed calls over any [`Invoke`]: the arguments encoded into a
//! [`RawCall`], the answer decoded from its [`RawReply`]. Generated clients
//! call these (through `__private`), and so do [`Channel`](crate::Channel)'s
//! own typed methods: one path for both.
//!
//! A call is made in two steps: [`encode`] (or [`encode_with_stream`])
//! encodes the arguments, then a function of the call's kind hands the call
//! to (a clone of) the transport at once and returns its future. The future
//! borrows nothing (`'static`), and the arguments' type is no part of it.
//!
//! The future is the transport's own with a decoding step on top, not an
//! `async` block around it: an `async` block would keep the call it was
//! given beside the transport's future that took it, and a call's future
//! is moved (copied) whole each time it is returned, stored or spawned.
//! (Measured: a lazy `async` block costs twice the copies per call.)

use std::future::Future;

use bytes::Bytes;
use futures::future::{self, Either};
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RpcError;
use crate::streaming::Streaming;
use crate::telemetry::{MethodSlot, Observed};
use crate::wire::codec;

use super::{CallKind, CallOptions, Fanout, Invoke, RawCall, RawReply, Replies};

/// What a call answering with one value decodes it as: anything
/// `DeserializeOwned`. A trait of its own only to say, when the bound
/// fails, what usually went wrong.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be decoded as the answer of a call",
    label = "not `serde::de::DeserializeOwned`",
    note = "a call's answer is decoded with serde: derive `Deserialize` for it",
    note = "a `Streaming<T>` behind a type alias (or any other name) is taken for a value: write `Streaming<T>` in the trait"
)]
pub trait Answer: DeserializeOwned {}

impl<T: DeserializeOwned> Answer for T {}

/// A call of `service.method` with `args`, encoded now: observed from
/// here on (its span is made before the arguments are encoded, so that
/// its trace context can travel in the call's metadata).
/// `slot` is the method's own `static`, where its metrics are kept.
#[inline(always)]
pub fn encode<A: Serialize + ?Sized>(
    slot: &'static MethodSlot,
    options: &CallOptions,
    service: &'static str,
    method: &'static str,
    kind: CallKind,
    args: &A,
) -> Result<RawCall, RpcError> {
    let observed = Observed::client(slot.get(service, method), service, method);
    observe(observed, options, service, method, kind, args)
}

/// [`encode`] for names a program makes up as it runs (`Channel::call`
/// and its kin): the method's metrics are looked up in the process's table.
pub(crate) fn encode_named<A: Serialize + ?Sized>(
    options: &CallOptions,
    service: &str,
    method: &str,
    kind: CallKind,
    args: &A,
) -> Result<RawCall, RpcError> {
    let metrics = crate::telemetry::client_method(service, method);
    let observed = Observed::client(metrics, service, method);
    observe(
        observed,
        options,
        service.to_owned(),
        method.to_owned(),
        kind,
        args,
    )
}

/// The call encoded, its trace context in its metadata, `observed` with it.
#[inline(always)]
fn observe<A: Serialize + ?Sized>(
    observed: Observed,
    options: &CallOptions,
    service: impl Into<std::borrow::Cow<'static, str>>,
    method: impl Into<std::borrow::Cow<'static, str>>,
    kind: CallKind,
    args: &A,
) -> Result<RawCall, RpcError> {
    #[cfg(feature = "opentelemetry")]
    let traced;
    #[cfg(feature = "opentelemetry")]
    let options = match crate::telemetry::inject(observed.span(), options.get_metadata()) {
        Some(metadata) => {
            traced = options.clone().with_metadata(metadata);
            &traced
        }
        None => options,
    };
    RawCall::observed_new(service, method, kind, options.clone(), args, observed)
}

/// [`encode`] for a call that also sends `items`.
pub fn encode_with_stream<A, S>(
    slot: &'static MethodSlot,
    options: &CallOptions,
    service: &'static str,
    method: &'static str,
    kind: CallKind,
    args: &A,
    items: Streaming<S>,
) -> Result<RawCall, RpcError>
where
    A: Serialize + ?Sized,
    S: Serialize + Send + 'static,
{
    encode(slot, options, service, method, kind, args).map(|call| call.with_stream(items))
}

/// Sends `call`, which answers with one value, decoded as `R`.
///
/// The call's observation (span, metrics) rides in the decoding step,
/// not in a wrapper of its own: a wrapper would be one more layer of the
/// call's future to build and move.
#[inline(always)]
pub fn unary<C, R>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Result<R, RpcError>> + Send + 'static
where
    C: Invoke,
    R: Answer + 'static,
{
    // Shared, not taken: a call is large, and changing it on the way
    // would copy it.
    let mut observed = shared(&call);
    let sent = match call {
        Ok(call) => Either::Left(C::clone(channel).invoke_unary(call)),
        Err(error) => Either::Right(future::ready(Err::<Bytes, _>(error))),
    };
    sent.map(move |value| {
        observed.end(value.as_ref().map(drop));
        decode_value::<R>(value)
    })
}

/// A share of `call`'s observation.
#[inline(always)]
fn shared(call: &Result<RawCall, RpcError>) -> Observed {
    match call {
        Ok(call) => call.observed(),
        Err(_) => Observed::none(),
    }
}

fn decode_value<R: DeserializeOwned + 'static>(
    value: Result<Bytes, RpcError>,
) -> Result<R, RpcError> {
    codec::decode_value(&value?).map_err(|message| RpcError::BadResponse { message })
}

/// Sends a one-way `call`.
pub fn oneway<C: Invoke>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Result<(), RpcError>> + Send + 'static {
    finish(channel, call, RawReply::into_sent)
}

/// Sends `call`, which answers with a stream of `R`.
pub fn streaming<C, R>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'static
where
    C: Invoke,
    R: DeserializeOwned + Send + 'static,
{
    finish(channel, call, RawReply::into_stream)
}

/// Sends `call`, which sends a stream and answers with one value.
pub fn value<C, R>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Result<R, RpcError>> + Send + 'static
where
    C: Invoke,
    R: Answer + 'static,
{
    finish(channel, call, RawReply::into_value)
}

/// Sends `call`, whose answer stream the server may refuse, before it
/// starts, with a value `E` (a method returning `Result<Streaming<R>, E>`).
pub fn refusable<C, R, E>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Result<Result<Streaming<R>, E>, RpcError>> + Send + 'static
where
    C: Invoke,
    R: DeserializeOwned + Send + 'static,
    E: DeserializeOwned + 'static,
{
    finish(channel, call.map(RawCall::refusable), |reply| match reply {
        RawReply::Stream(stream) => Ok(Ok(stream.decode())),
        RawReply::Value(refusal) => decode_value::<E>(Ok(refusal)).map(Err),
        other => Err(other.mismatch("a stream or its refusal")),
    })
}

/// Sends `call`, whose answer stream the server may refuse with a
/// [`Status`](crate::Status) (a method returning `Result<Streaming<R>, Status>`):
/// the status is the call's error.
pub fn refusable_status<C, R>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Result<Streaming<R>, RpcError>> + Send + 'static
where
    C: Invoke,
    R: DeserializeOwned + Send + 'static,
{
    finish(channel, call.map(RawCall::refusable), |reply| match reply {
        RawReply::Stream(stream) => Ok(stream.decode()),
        other => Err(other.mismatch("a stream (the method refuses only with a status)")),
    })
}

/// `call` handed to `channel` now, its reply taken by `take`.
fn finish<C: Invoke, T: 'static>(
    channel: &C,
    call: Result<RawCall, RpcError>,
    take: fn(RawReply) -> Result<T, RpcError>,
) -> impl Future<Output = Result<T, RpcError>> + Send + 'static {
    let observed = shared(&call);
    let sent = match call {
        Ok(call) => Either::Left(C::clone(channel).invoke(call)),
        Err(error) => Either::Right(future::ready(Err(error))),
    };
    sent.map(move |reply| {
        let mut reply = reply;
        settle(&mut reply, observed);
        take(reply?)
    })
}

/// Ends `observed` with `reply`: at once, or (an answer stream) when the
/// stream ends.
#[inline]
fn settle(reply: &mut Result<RawReply, RpcError>, mut observed: Observed) {
    match reply {
        Ok(RawReply::Stream(stream)) => stream.observe(observed),
        Ok(_) => observed.end(Ok(())),
        Err(error) => observed.end(Err(error)),
    }
}

/// Sends `call`, which answers with one value, to every endpoint of
/// `channel`; each answer decoded as `R`.
pub fn fanout_unary<C, R>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Replies<R>> + Send + 'static
where
    C: Fanout,
    R: Answer + 'static,
{
    fanout(channel, call, RawReply::into_value)
}

/// Sends a one-way `call` to every endpoint of `channel`.
pub fn fanout_oneway<C: Fanout>(
    channel: &C,
    call: Result<RawCall, RpcError>,
) -> impl Future<Output = Replies<()>> + Send + 'static {
    fanout(channel, call, RawReply::into_sent)
}

/// `call` handed to every endpoint of `channel` now, each reply taken by
/// `take`; a call that failed to encode fails in one slot, named `""`.
fn fanout<C: Fanout, T: 'static>(
    channel: &C,
    call: Result<RawCall, RpcError>,
    take: fn(RawReply) -> Result<T, RpcError>,
) -> impl Future<Output = Replies<T>> + Send + 'static {
    let sent = match call {
        Ok(call) => {
            let observed = call.observed();
            let mut observed = observed;
            let each = C::clone(channel).invoke_each(call);
            Either::Left(each.map(move |replies| {
                observed.end(Ok(()));
                replies
            }))
        }
        Err(error) => Either::Right(future::ready(vec![(String::new(), Err(error))])),
    };
    sent.map(move |replies| {
        replies
            .into_iter()
            .map(|(endpoint, reply)| (endpoint, reply.and_then(take)))
            .collect()
    })
}
