//! [`Streaming`]: a stream of values that crosses the connection.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{self, Stream, StreamExt};

use crate::error::RpcError;

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
/// [`try_from_stream`](Self::try_from_stream)), from a task that feeds it
/// ([`channel`](Self::channel)), or from a tokio receiver (`From`); the side
/// that consumes it
/// reads it as a `Stream` of `Result<T, RpcError>`. So the client's `ticks`
/// returns `Result<Streaming<u64>, RpcError>`, and the server's `sum`
/// receives the client's numbers as they arrive. A method takes at most one
/// `Streaming` argument.
///
/// ```
/// use rpc_runtime::{StreamExt, Streaming};
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
    /// An answer stream, on the caller's side, and how its items decode.
    Remote(
        crate::session::RemoteStream,
        fn(bytes::Bytes) -> Result<T, RpcError>,
    ),
    /// A caller's stream, on the handler's side.
    Inbox(crate::session::InboxStream<T>),
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

    /// A stream fed through the returned [`StreamSender`], which holds up
    /// to `capacity` items the consumer has not taken yet (at least one):
    /// the shape of a handler that spawns a task to produce its answer.
    /// The stream ends when every sender is dropped.
    ///
    /// ```
    /// use rpc_runtime::{StreamExt, Streaming};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (sender, stream) = Streaming::channel(8);
    /// tokio::spawn(async move {
    ///     for n in 1..=3_u32 {
    ///         // Fails once the consumer is gone: time to stop producing.
    ///         if sender.send(n).await.is_err() {
    ///             return;
    ///         }
    ///     }
    /// });
    /// let items: Vec<u32> = stream.map(Result::unwrap).collect().await;
    /// assert_eq!(items, [1, 2, 3]);
    /// # }
    /// ```
    #[must_use]
    pub fn channel(capacity: usize) -> (StreamSender<T>, Self) {
        let (sender, receiver) = tokio::sync::mpsc::channel(capacity.max(1));
        (StreamSender { sender }, Self::from_results(receiver))
    }

    fn from_results(mut receiver: tokio::sync::mpsc::Receiver<Result<T, RpcError>>) -> Self {
        Self::try_from_stream(stream::poll_fn(move |cx| receiver.poll_recv(cx)))
    }
}

/// The items of a tokio channel, until every sender is dropped.
impl<T: Send + 'static> From<tokio::sync::mpsc::Receiver<T>> for Streaming<T> {
    fn from(mut receiver: tokio::sync::mpsc::Receiver<T>) -> Self {
        Self::from_stream(stream::poll_fn(move |cx| receiver.poll_recv(cx)))
    }
}

/// The items of an unbounded tokio channel, until every sender is dropped.
impl<T: Send + 'static> From<tokio::sync::mpsc::UnboundedReceiver<T>> for Streaming<T> {
    fn from(mut receiver: tokio::sync::mpsc::UnboundedReceiver<T>) -> Self {
        Self::from_stream(stream::poll_fn(move |cx| receiver.poll_recv(cx)))
    }
}

/// Feeds a [`Streaming`] made by [`Streaming::channel`]. Cheap to clone;
/// the stream ends when the last clone is dropped.
pub struct StreamSender<T> {
    sender: tokio::sync::mpsc::Sender<Result<T, RpcError>>,
}

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        StreamSender {
            sender: self.sender.clone(),
        }
    }
}

impl<T> StreamSender<T> {
    /// Sends `item`, waiting while the stream holds `capacity` items the
    /// consumer has not taken.
    ///
    /// # Errors
    /// [`StreamClosed`], holding `item`, when the stream is gone: its
    /// consumer dropped it, or the call it answers was cancelled or ended.
    pub async fn send(&self, item: T) -> Result<(), StreamClosed<T>> {
        match self.sender.reserve().await {
            Ok(permit) => {
                permit.send(Ok(item));
                Ok(())
            }
            Err(_) => Err(StreamClosed(item)),
        }
    }

    /// Ends the stream with `error`, after the items already sent: the
    /// consumer receives it as its last item.
    ///
    /// # Errors
    /// [`StreamClosed`] when the stream is gone.
    pub async fn fail(self, error: RpcError) -> Result<(), StreamClosed<RpcError>> {
        match self.sender.reserve().await {
            Ok(permit) => {
                permit.send(Err(error));
                Ok(())
            }
            Err(_) => Err(StreamClosed(error)),
        }
    }

    /// Whether the stream is gone (sending would fail).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Waits until the stream is gone: for a producer that waits on
    /// something else and must stop when nobody listens any more.
    pub async fn closed(&self) {
        self.sender.closed().await;
    }
}

impl<T> fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// What [`StreamSender`] could not send, because the stream is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamClosed<T>(pub T);

impl<T> StreamClosed<T> {
    /// What was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Display for StreamClosed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stream is gone: its consumer dropped it, or its call ended")
    }
}

impl<T: fmt::Debug> std::error::Error for StreamClosed<T> {}

impl<T> Streaming<T> {
    pub(crate) fn remote(
        remote: crate::session::RemoteStream,
        decode: fn(bytes::Bytes) -> Result<T, RpcError>,
    ) -> Self {
        Streaming {
            inner: Inner::Remote(remote, decode),
        }
    }

    pub(crate) fn inbox(inbox: crate::session::InboxStream<T>) -> Self {
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
            Inner::Remote(remote, decode) => match remote.poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    let item = decode(bytes);
                    if item.is_err() {
                        // A reply that does not decode ends the call.
                        remote.stop();
                    }
                    Poll::Ready(Some(item))
                }
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Inner::Inbox(inbox) => inbox.poll_next(cx),
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Local(_) => f.write_str("Streaming(local)"),
            Inner::Remote(remote, _) => f
                .debug_tuple("Streaming")
                .field(&format_args!("call {}", remote.id()))
                .finish(),
            Inner::Inbox(inbox) => f
                .debug_tuple("Streaming")
                .field(&format_args!("from the caller of call {}", inbox.id()))
                .finish(),
        }
    }
}
