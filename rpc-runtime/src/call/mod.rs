//! The call seam: how a call travels, as generated clients see it.
//!
//! A generated client, `CalculatorClient<C = Channel>`, turns each method
//! call into a [`RawCall`] (the service and method names, the kind of call,
//! its [`CallOptions`] and its encoded arguments), hands it to `C`'s
//! [`Invoke::invoke`], and decodes the [`RawReply`] it gets back. Anything
//! that implements [`Invoke`] can carry calls: a [`Channel`](crate::Channel)
//! over one connection, and wrappers around one (logging, metrics, a test
//! double, a balancer over several channels).
//!
//! A logging wrapper around a channel:
//!
//! ```
//! use rpc_runtime::call::{Invoke, RawCall, RawReply};
//! use rpc_runtime::{rpc_service, Channel, RpcError, Server};
//!
//! #[rpc_service]
//! pub trait Greeter {
//!     /// Says hello.
//!     async fn hello(&self, name: String) -> String;
//! }
//!
//! struct English;
//! impl Greeter for English {
//!     async fn hello(&self, name: String) -> String {
//!         format!("Hello, {name}!")
//!     }
//! }
//!
//! /// Prints every call and how it ended, then lets `inner` carry it.
//! #[derive(Clone)]
//! struct Logged<C> {
//!     inner: C,
//! }
//!
//! impl<C: Invoke> Invoke for Logged<C> {
//!     async fn invoke(self, call: RawCall) -> Result<RawReply, RpcError> {
//!         let name = format!("{}.{}", call.service(), call.method());
//!         let reply = self.inner.invoke(call).await;
//!         println!("{name}: {}", if reply.is_ok() { "ok" } else { "failed" });
//!         reply
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder()
//!     .add_service(GreeterServer::new(English))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let channel = Channel::connect(server.local_addr()).await?;
//! let client = GreeterClient::new(Logged { inner: channel });
//! assert_eq!(client.hello("Ada".into()).await?, "Hello, Ada!");
//! # server.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub use crate::wire::kind::CallKind;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::RpcError;
use crate::streaming::Streaming;
use crate::telemetry::Observed;
use crate::wire::body::BodyStream;
use crate::wire::codec;
use crate::wire::request::{self, RequestBody};

mod options;
pub(crate) mod typed;

pub use options::CallOptions;

/// Something that carries calls: the seam generated clients are generic
/// over (see the [module docs](self) for an example).
///
/// An implementation must keep each call's semantics: answer a
/// [`CallKind::OneWay`] call with [`RawReply::Sent`] once it is on its
/// way, a call that answers with a stream with [`RawReply::Stream`], and
/// every other call with [`RawReply::Value`]; keep to the deadline of the
/// call's options; and send a call again only when that is safe (it is
/// [`idempotent`](CallOptions::idempotent), or it was never run).
///
/// `invoke` takes the carrier by value (a generated client hands it a
/// clone, usually of an `Arc`), so the future it returns owns what it
/// needs and borrows nothing: a call can be spawned, stored, or raced in
/// `select!` apart from the client that made it. Anything a call takes from
/// the calling task (a handler's deadline, which calls made inside it
/// inherit) is read when `invoke` is called, not when the future is first
/// polled.
pub trait Invoke: Clone + Send + Sync + 'static {
    /// Sends `call` and returns its answer.
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send;

    /// Sends a call that answers with one value ([`CallKind::Unary`]) and
    /// returns that value, encoded: generated clients call this for their
    /// unary methods. Provided, through [`invoke`](Self::invoke); a
    /// transport may answer by a shorter path, with the same semantics (a
    /// wrapper that implements only `invoke` sees every call).
    fn invoke_unary(self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        self.invoke(call).map(|reply| match reply? {
            RawReply::Value(value) => Ok(value),
            other => Err(other.mismatch("one value")),
        })
    }
}

impl<C: Invoke> Invoke for Arc<C> {
    fn invoke(self, call: RawCall) -> impl Future<Output = Result<RawReply, RpcError>> + Send {
        C::clone(&self).invoke(call)
    }

    fn invoke_unary(self, call: RawCall) -> impl Future<Output = Result<Bytes, RpcError>> + Send {
        C::clone(&self).invoke_unary(call)
    }
}

/// A carrier over several servers that can send one call to every one
/// of them: a [balanced channel](crate::balance::BalancedChannel).
/// Generated clients offer it as `client.fanout()`, whose methods return
/// [`Replies`].
pub trait Fanout: Invoke {
    /// Sends `call` to every endpoint at once and gathers their answers,
    /// each by its endpoint's name; an endpoint that is not ready is in
    /// the list with the reason. Only for calls that send no stream (see
    /// [`RawCall::duplicate`]).
    fn invoke_each(
        self,
        call: RawCall,
    ) -> impl Future<Output = Vec<(String, Result<RawReply, RpcError>)>> + Send;
}

/// What a fanout call gives back: each endpoint's name and its result.
pub type Replies<T> = Vec<(String, Result<T, RpcError>)>;

/// One call, encoded and ready to travel: what a generated client hands to
/// [`Invoke::invoke`].
///
/// The arguments are encoded when the call is made (so a value that fails
/// to encode fails there, before anything is sent), with room in front for
/// the request's header, so the transport builds its frame without a copy.
pub struct RawCall {
    service: Cow<'static, str>,
    method: Cow<'static, str>,
    kind: CallKind,
    options: CallOptions,
    args: RequestBody,
    stream: Option<BodyStream>,
    inherited: Option<Instant>,
    refusable: bool,
    /// The call's span and metrics, for a call a typed client makes (the
    /// typed layer ends it with the answer; the transport notes its
    /// attempts on the span).
    observed: Observed,
}

impl RawCall {
    /// A call of `service.method` with `args` (a tuple of the arguments:
    /// `&(a, b)`, `&(a,)`, `&()`), encoded now.
    ///
    /// For a kind that [sends a stream](CallKind::sends_stream), add it
    /// with [`with_stream`](Self::with_stream).
    ///
    /// # Errors
    /// [`RpcError::Encode`] when an argument fails to encode.
    #[inline]
    pub fn new<A: Serialize + ?Sized>(
        service: impl Into<Cow<'static, str>>,
        method: impl Into<Cow<'static, str>>,
        kind: CallKind,
        options: CallOptions,
        args: &A,
    ) -> Result<Self, RpcError> {
        RawCall::observed_new(service, method, kind, options, args, Observed::none())
    }

    /// [`new`](Self::new), observed by `observed` (ended here if the
    /// arguments fail to encode). Made in one piece: a call is large, and
    /// each move of it a copy.
    #[inline(always)]
    pub(crate) fn observed_new<A: Serialize + ?Sized>(
        service: impl Into<Cow<'static, str>>,
        method: impl Into<Cow<'static, str>>,
        kind: CallKind,
        options: CallOptions,
        args: &A,
        mut observed: Observed,
    ) -> Result<Self, RpcError> {
        let (service, method) = (service.into(), method.into());
        let args = match request::encode_args(args, options.get_metadata().encoded()) {
            Ok(args) => args,
            Err(error) => {
                observed.end(Err(&error));
                return Err(error);
            }
        };
        Ok(RawCall {
            service,
            method,
            kind,
            options,
            args,
            stream: None,
            inherited: crate::session::inherited_deadline(),
            refusable: false,
            observed,
        })
    }

    /// A share of the call's observation, to end it with the answer.
    #[inline]
    pub(crate) fn observed(&self) -> Observed {
        self.observed.share()
    }

    /// This call, sending `items` with its arguments, each encoded as the
    /// receiver takes it; an item that fails to encode ends the stream with
    /// [`RpcError::Encode`].
    #[must_use]
    pub fn with_stream<S>(mut self, items: Streaming<S>) -> Self
    where
        S: Serialize + Send + 'static,
    {
        let sent = self.observed.metrics().map(|metrics| &metrics.items_sent);
        let encoded = items.map(move |item| {
            if let Some(sent) = sent {
                sent.increment(1);
            }
            item.and_then(|value| codec::encode_value(&value))
        });
        self.stream = Some(Box::pin(encoded));
        self
    }

    /// This call, whose answer stream the server may refuse before it
    /// starts (a method returning `Result<Streaming<T>, E>`): the transport
    /// waits to hear which, and answers with [`RawReply::Stream`] if the
    /// server accepted, or [`RawReply::Value`] holding the encoded refusal.
    /// Only for a kind that [answers with a stream](CallKind::answers_stream).
    #[must_use]
    pub fn refusable(mut self) -> Self {
        self.refusable = true;
        self
    }

    /// Whether the server may refuse the call's answer stream (see
    /// [`refusable`](Self::refusable)).
    #[must_use]
    pub fn is_refusable(&self) -> bool {
        self.refusable
    }

    /// The service's wire name.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The method's wire name.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// What the call sends and expects back.
    #[must_use]
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The call's options: its timeout, whether it is idempotent, and the
    /// metadata it carries (fixed when the call was made).
    #[must_use]
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// The deadline of the handler this call was made in, if it was made
    /// inside one (read when the call was made, so a call spawned from a
    /// handler keeps it): a transport's deadline for the call must not be
    /// later.
    #[must_use]
    pub fn inherited_deadline(&self) -> Option<Instant> {
        self.inherited
    }

    /// The encoded arguments (without metadata).
    #[must_use]
    pub fn args(&self) -> &[u8] {
        self.args.args()
    }

    /// A copy of this call to send elsewhere as well, with the same
    /// arguments, options and deadline: `None` for a call that sends a
    /// stream (a stream is consumed once), or whose arguments a transport
    /// has begun sending.
    #[must_use]
    pub fn duplicate(&self) -> Option<RawCall> {
        if self.has_stream() {
            return None;
        }
        Some(RawCall {
            service: self.service.clone(),
            method: self.method.clone(),
            kind: self.kind,
            options: self.options.clone(),
            args: self.args.duplicate()?,
            stream: None,
            inherited: self.inherited,
            refusable: self.refusable,
            observed: self.observed.share(),
        })
    }

    /// Whether the call still holds a stream to send.
    pub(crate) fn has_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// Takes the stream the call sends, if any (a transport takes it once,
    /// to send it).
    pub fn take_stream(&mut self) -> Option<BodyStream> {
        self.stream.take()
    }

    /// The parts a channel sends.
    #[inline]
    pub(crate) fn into_parts(self) -> CallParts {
        CallParts {
            service: self.service,
            method: self.method,
            options: self.options,
            args: self.args,
            stream: self.stream,
            inherited: self.inherited,
            refusable: self.refusable,
            observed: self.observed,
        }
    }
}

/// A [`RawCall`] taken apart, for the channel that sends it.
pub(crate) struct CallParts {
    pub service: Cow<'static, str>,
    pub method: Cow<'static, str>,
    pub options: CallOptions,
    pub args: RequestBody,
    pub stream: Option<BodyStream>,
    pub inherited: Option<Instant>,
    pub refusable: bool,
    /// The call's observation (its span notes the attempts).
    pub observed: Observed,
}

impl fmt::Debug for RawCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawCall")
            .field("service", &self.service)
            .field("method", &self.method)
            .field("kind", &self.kind)
            .field("options", &self.options)
            .field("args", &self.args().len())
            .finish_non_exhaustive()
    }
}

/// How a call was answered, before decoding.
#[non_exhaustive]
pub enum RawReply {
    /// The encoded return value.
    Value(Bytes),
    /// The answer stream, item by item (encoded).
    Stream(RawStream),
    /// A one-way call is on its way.
    Sent,
}

impl RawReply {
    /// A reply holding `value`, encoded: for transports that answer calls
    /// themselves (a test double, a cache).
    ///
    /// # Errors
    /// [`RpcError::Encode`] when the value fails to encode.
    pub fn value<T: Serialize + ?Sized>(value: &T) -> Result<Self, RpcError> {
        Ok(RawReply::Value(codec::encode_value(value)?.into_bytes()))
    }

    /// Decodes the value of a call that answers with one.
    ///
    /// # Errors
    /// [`RpcError::BadResponse`] when it does not decode as `R`, or the
    /// reply is not a value.
    pub fn into_value<R: DeserializeOwned + 'static>(self) -> Result<R, RpcError> {
        match self {
            RawReply::Value(bytes) => {
                codec::decode_value(&bytes).map_err(|message| RpcError::BadResponse { message })
            }
            other => Err(other.mismatch("one value")),
        }
    }

    /// The answer stream of a streaming call, decoding each item as `R`.
    ///
    /// # Errors
    /// [`RpcError::BadResponse`] when the reply is not a stream.
    pub fn into_stream<R: DeserializeOwned + Send + 'static>(
        self,
    ) -> Result<Streaming<R>, RpcError> {
        match self {
            RawReply::Stream(stream) => Ok(stream.decode()),
            other => Err(other.mismatch("a stream")),
        }
    }

    /// Checks that a one-way call was sent.
    ///
    /// # Errors
    /// [`RpcError::BadResponse`] when the reply is something else.
    pub fn into_sent(self) -> Result<(), RpcError> {
        match self {
            RawReply::Sent => Ok(()),
            other => Err(other.mismatch("nothing (a one-way call)")),
        }
    }

    fn mismatch(&self, expected: &str) -> RpcError {
        let got = match self {
            RawReply::Value(_) => "one value",
            RawReply::Stream(_) => "a stream",
            RawReply::Sent => "nothing",
        };
        RpcError::BadResponse {
            message: format!(
                "the transport answered with {got}, where the call expects {expected}"
            ),
        }
    }
}

impl fmt::Debug for RawReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawReply::Value(bytes) => f.debug_tuple("Value").field(&bytes.len()).finish(),
            RawReply::Stream(_) => f.write_str("Stream"),
            RawReply::Sent => f.write_str("Sent"),
        }
    }
}

/// An answer stream before decoding: the encoded items, and any failure of
/// the call as the last item. Dropping it cancels the call.
pub struct RawStream(RawInner);

enum RawInner {
    Remote(crate::session::RemoteStream),
    Local(Pin<Box<dyn Stream<Item = Result<Bytes, RpcError>> + Send + 'static>>),
}

impl RawStream {
    /// A stream of encoded items from elsewhere (a test double, a relay).
    pub fn from_stream<S>(items: S) -> Self
    where
        S: Stream<Item = Result<Bytes, RpcError>> + Send + 'static,
    {
        RawStream(RawInner::Local(Box::pin(items)))
    }

    pub(crate) fn remote(remote: crate::session::RemoteStream) -> Self {
        RawStream(RawInner::Remote(remote))
    }

    /// Ends `observed` with the stream: at its end, its error, or (as
    /// cancelled) when it is dropped before either.
    pub(crate) fn observe(&mut self, observed: Observed) {
        match &mut self.0 {
            RawInner::Remote(remote) => remote.observe(observed),
            RawInner::Local(items) => {
                let inner = std::mem::replace(items, Box::pin(futures::stream::empty()));
                *items = Box::pin(crate::telemetry::ObservedStream::new(inner, observed));
            }
        }
    }

    /// The typed stream: each item decoded as `R` (a failure to decode ends
    /// it with [`RpcError::BadResponse`] and cancels the call).
    pub(crate) fn decode<R: DeserializeOwned + Send + 'static>(self) -> Streaming<R> {
        match self.0 {
            RawInner::Remote(remote) => Streaming::remote(remote, decode_item::<R>),
            RawInner::Local(items) => {
                Streaming::try_from_stream(items.map(|item| item.and_then(|b| decode_item(b))))
            }
        }
    }
}

fn decode_item<R: DeserializeOwned + 'static>(bytes: Bytes) -> Result<R, RpcError> {
    codec::decode_value(&bytes).map_err(|message| RpcError::BadResponse { message })
}

impl Stream for RawStream {
    type Item = Result<Bytes, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().0 {
            RawInner::Remote(remote) => remote.poll_next(cx),
            RawInner::Local(items) => items.as_mut().poll_next(cx),
        }
    }
}

impl fmt::Debug for RawStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawStream")
    }
}
