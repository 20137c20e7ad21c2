//! A client call's future inside its span, ending its observation with
//! the answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::Stream;

use crate::call::RawReply;
use crate::error::RpcError;

use super::observed::Observed;

/// How an answer ends a call's observation: at once, or (an answer stream)
/// when the stream ends.
pub(crate) trait Settle {
    /// Ends `observed` with this answer, or hands it on.
    fn settle(&mut self, observed: Observed);
}

impl Settle for Bytes {
    fn settle(&mut self, mut observed: Observed) {
        observed.end(Ok(()));
    }
}

impl Settle for RawReply {
    fn settle(&mut self, mut observed: Observed) {
        match self {
            RawReply::Stream(stream) => stream.observe(observed),
            RawReply::Value(_) | RawReply::Sent => observed.end(Ok(())),
        }
    }
}

pin_project_lite::pin_project! {
    /// `inner`, polled inside the call's span; its answer ends the call's
    /// observation (a dropped future ends it as cancelled).
    pub(crate) struct Observe<F> {
        #[pin]
        inner: F,
        observed: Option<Observed>,
    }
}

impl<F> Observe<F> {
    pub(crate) fn new(inner: F, observed: Option<Observed>) -> Self {
        Observe { inner, observed }
    }
}

impl<F, T> Future for Observe<F>
where
    F: Future<Output = Result<T, RpcError>>,
    T: Settle,
{
    type Output = Result<T, RpcError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut answer = match this.observed.as_ref() {
            Some(observed) => {
                let _entered = observed.span().enter();
                ready!(this.inner.poll(cx))
            }
            None => ready!(this.inner.poll(cx)),
        };
        if let Some(mut observed) = this.observed.take() {
            match &mut answer {
                Ok(value) => value.settle(observed),
                Err(error) => observed.end(Err(error)),
            }
        }
        Poll::Ready(answer)
    }
}

pin_project_lite::pin_project! {
    /// An answer stream that did not come from a session (a test double, a
    /// relay), counting its items and ending its call's observation with
    /// it.
    pub(crate) struct ObservedStream<S> {
        #[pin]
        items: S,
        observed: Observed,
    }
}

impl<S> ObservedStream<S> {
    pub(crate) fn new(items: S, observed: Observed) -> Self {
        ObservedStream { items, observed }
    }
}

impl<S: Stream<Item = Result<Bytes, RpcError>>> Stream for ObservedStream<S> {
    type Item = Result<Bytes, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.items.poll_next(cx));
        this.observed.saw(item.as_ref().map(Result::as_ref));
        Poll::Ready(item)
    }
}
