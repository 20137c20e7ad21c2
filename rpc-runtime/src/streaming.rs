//! [`Streaming`]: a stream of values that crosses the connection.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, Stream, StreamExt};

use crate::RpcError;

/// A stream of `T`s that crosses the connection: returned by a method (a
/// server stream), taken as an argument (a client stream), or both.
///
/// ```ignore
/// #[rpc_service]
/// pub trait Feed {
///     /// Server streaming: the client gets a stream of items.
///     async fn ticks(&self, every_ms: u64, count: u32) -> Streaming<u64>;
///     /// Client streaming: the client sends a stream, gets one answer.
///     async fn sum(&self, numbers: Streaming<i64>) -> i64;
///     /// Both ways at once.
///     async fn chat(&self, room: String, inbox: Streaming<String>) -> Streaming<String>;
/// }
/// ```
///
/// The side that produces a stream builds it from any stream or iterator
/// ([`from_stream`](Self::from_stream), [`from_iter`](Self::from_iter),
/// [`try_from_stream`](Self::try_from_stream)); the side that consumes it
/// reads it as a `Stream` of `Result<T, RpcError>`. So the client's `ticks`
/// returns `Result<Streaming<u64>, RpcError>`, and the server's `sum`
/// receives the client's numbers as they arrive. A method takes at most one
/// `Streaming` argument.
///
/// ```
/// use futures::StreamExt;
/// use rpc_runtime::Streaming;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Producing: from an iterator, a stream, or a stream of results.
/// let mut numbers = Streaming::from_iter(1..=3_u64);
/// // Consuming: a `Stream` of `Result<T, RpcError>`.
/// let mut sum = 0;
/// while let Some(n) = numbers.next().await {
///     sum += n.unwrap();
/// }
/// assert_eq!(sum, 6);
/// # }
/// ```
///
/// # Across the connection
///
/// - **Flow control.** The producer runs ahead of the consumer by at most a
///   window of 16 items (per stream); after that it is not polled until the
///   consumer has taken items. A slow consumer slows the producer, and
///   neither side buffers more than the window.
/// - **Ends.** The stream ends when the producer's stream ends. A producer
///   error (an `Err` item of [`Streaming::try_from_stream`], or a failure to
///   encode an item) arrives as one `Err` item, after which the stream ends.
///   So do the call's own failures: a deadline that passes, a connection
///   that breaks, an unknown method.
/// - **Deadline.** The call's deadline (the channel's default timeout, or
///   the client's [`with_timeout`](crate::CallOptions::timeout)) covers the
///   whole stream, not just its first item: a long stream needs a long
///   timeout.
/// - **Cancellation.** Dropping the consuming `Streaming` stops its
///   producer promptly (the producer's stream is dropped): on the client,
///   dropping an answer stream cancels the whole call; in a handler,
///   dropping the caller's stream stops only that stream, and the call goes
///   on. When a call ends, the stream its caller was sending stops too.
/// - Streams share the connection with every other call, frame by frame;
///   a busy stream does not hold up other calls.
/// - Streaming calls are never sent again automatically (not even
///   `idempotent` ones).
pub struct Streaming<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Local(Pin<Box<dyn Stream<Item = Result<T, RpcError>> + Send + 'static>>),
    /// An answer stream, on the caller's side.
    Remote(crate::client::RemoteStream<T>),
    /// A caller's stream, on the handler's side.
    Inbox(InboxStream<T>),
}

impl<T: Send + 'static> Streaming<T> {
    /// A stream of the items `stream` yields.
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
    {
        Self::try_from_stream(stream.map(Ok))
    }

    /// A stream of the items `stream` yields, where an `Err` item ends the
    /// stream with that error (the consumer receives it as its last item).
    pub fn try_from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, RpcError>> + Send + 'static,
    {
        let mut failed = false;
        // Nothing after the first error.
        let stream = stream.take_while(move |item| {
            let go = !failed;
            failed = item.is_err();
            std::future::ready(go)
        });
        Streaming {
            inner: Inner::Local(Box::pin(stream)),
        }
    }

    /// A stream of the items of `iter`, taken lazily, as the consumer's
    /// credit allows (unlike `FromIterator`, which would collect first).
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Self::from_stream(stream::iter(iter))
    }

    /// A stream with no items.
    #[must_use]
    pub fn empty() -> Self {
        Self::try_from_stream(stream::empty())
    }
}

impl<T> Streaming<T> {
    pub(crate) fn remote(remote: crate::client::RemoteStream<T>) -> Self {
        Streaming {
            inner: Inner::Remote(remote),
        }
    }

    pub(crate) fn inbox(inbox: InboxStream<T>) -> Self {
        Streaming {
            inner: Inner::Inbox(inbox),
        }
    }
}

impl<T> Stream for Streaming<T> {
    type Item = Result<T, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().inner {
            Inner::Local(stream) => stream.as_mut().poll_next(cx),
            Inner::Remote(remote) => remote.poll_next(cx),
            Inner::Inbox(inbox) => inbox.poll_next(cx),
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Local(_) => f.write_str("Streaming(local)"),
            Inner::Remote(remote) => f
                .debug_tuple("Streaming")
                .field(&format_args!("call {}", remote.id()))
                .finish(),
            Inner::Inbox(inbox) => f
                .debug_tuple("Streaming")
                .field(&format_args!("from the caller of call {}", inbox.parts.id))
                .finish(),
        }
    }
}

/// What the connection hands the stream a caller sends with a call.
pub(crate) enum InboxEvent {
    Item(bytes::Bytes),
    /// The last event.
    End(Result<(), RpcError>),
}

/// The receiving end of the stream a caller sends with a call, before the
/// handler takes it (and learns its item type).
pub(crate) struct InboxParts {
    pub id: u64,
    pub events: tokio::sync::mpsc::UnboundedReceiver<InboxEvent>,
    /// Items the caller may still send; the connection takes one per item.
    pub credit: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// Frames to the caller (credit, and a cancel if the handler drops the
    /// stream early).
    pub control: tokio::sync::mpsc::UnboundedSender<bytes::Bytes>,
}

/// The stream a handler receives from its caller.
pub(crate) struct InboxStream<T> {
    parts: InboxParts,
    consumed: u32,
    done: bool,
    decode: fn(&[u8]) -> Result<T, String>,
}

impl<T: serde::de::DeserializeOwned> InboxStream<T> {
    pub(crate) fn new(parts: InboxParts) -> Self {
        InboxStream {
            parts,
            consumed: 0,
            done: false,
            decode: crate::codec::decode_value::<T>,
        }
    }
}

impl<T> InboxStream<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, RpcError>>> {
        use std::sync::atomic::Ordering;
        if self.done {
            return Poll::Ready(None);
        }
        let event = match self.parts.events.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(event) => event,
        };
        match event {
            Some(InboxEvent::Item(body)) => {
                self.consumed += 1;
                if self.consumed >= crate::frame::STREAM_WINDOW / 2 {
                    let items = std::mem::take(&mut self.consumed);
                    self.parts.credit.fetch_add(items, Ordering::AcqRel);
                    let credit = crate::frame::Message::Credit {
                        id: self.parts.id,
                        items,
                    };
                    // Fails only when the connection is gone.
                    let _ = self
                        .parts
                        .control
                        .send(crate::codec::encode_control(&credit));
                }
                match (self.decode)(&body) {
                    Ok(item) => Poll::Ready(Some(Ok(item))),
                    Err(message) => {
                        self.stop();
                        Poll::Ready(Some(Err(RpcError::BadRequest { message })))
                    }
                }
            }
            Some(InboxEvent::End(Ok(()))) => {
                self.done = true;
                Poll::Ready(None)
            }
            Some(InboxEvent::End(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(error)))
            }
            None => {
                self.done = true;
                Poll::Ready(Some(Err(RpcError::connection_lost(
                    "the caller's stream broke off before its end",
                ))))
            }
        }
    }

    /// Tells the caller to send no more.
    fn stop(&mut self) {
        self.done = true;
        let cancel = crate::frame::Message::Cancel { id: self.parts.id };
        // Fails only when the connection is gone.
        let _ = self
            .parts
            .control
            .send(crate::codec::encode_control(&cancel));
    }
}

impl<T> Drop for InboxStream<T> {
    fn drop(&mut self) {
        if !self.done {
            self.stop();
        }
    }
}
