//! A client call's answer ending its observation: at once, or with its
//! stream.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::Stream;

use crate::call::RawReply;
use crate::error::RpcError;

use super::observed::Observed;

/// Ends `observed` with `reply`: at once, or (an answer stream) when the
/// stream ends.
#[inline]
pub(crate) fn settle(reply: &mut Result<RawReply, RpcError>, mut observed: Observed) {
    match reply {
        Ok(RawReply::Stream(stream)) => stream.observe(observed),
        Ok(_) => observed.end(Ok(())),
        Err(error) => observed.end(Err(error)),
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
