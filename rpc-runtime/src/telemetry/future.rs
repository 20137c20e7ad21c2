//! An answer stream from elsewhere than a session, ending its call's
//! observation with it.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::Stream;

use crate::error::RpcError;

use super::observed::Observed;

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
