//! What a handler knows about the call it is serving.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::inbox::InboxParts;
use super::Channel;
use crate::identity::PeerIdentity;
use crate::transport::PeerAddr;
use crate::wire::metadata::{Metadata, MetadataValue};
use crate::wire::version::Negotiated;

tokio::task_local! {
    static CURRENT: CallContext;
}

/// The call a handler is serving: its deadline, its id and its caller.
///
/// ```
/// use rpc_runtime::CallContext;
///
/// async fn handler_body() {
///     if let Some(cx) = CallContext::current() {
///         if cx.remaining().is_some_and(|left| left.as_millis() < 10) {
///             return; // not worth starting
///         }
///     }
/// }
/// ```
///
/// A client call made inside a handler inherits the handler's deadline when
/// that is sooner than its own, so a deadline set by the first caller holds
/// across every service the call passes through.
#[derive(Clone)]
pub struct CallContext {
    request_id: u64,
    deadline: Option<Instant>,
    /// What every call on the connection shares.
    peer: Arc<Peer>,
    /// The stream the caller sends with the call, until the handler takes it.
    inbox: Option<Arc<Mutex<Option<InboxParts>>>>,
    /// The call's metadata, if it carried any.
    metadata: Option<Metadata>,
    /// What the handler attaches to its answer, when the caller reads it.
    reply: Option<Arc<Mutex<Metadata>>>,
}

/// What the calls of one connection share about their caller, made once
/// per connection: a call's context holds it behind one `Arc`.
pub(crate) struct Peer {
    pub addr: PeerAddr,
    /// Back to the caller, when it serves on its connection.
    pub channel: Option<Channel>,
    /// Who the caller proved to be (mutual TLS).
    pub identity: Option<Arc<PeerIdentity>>,
    /// Fires when the server serving the connection begins to shut down.
    pub stopping: Option<CancellationToken>,
    /// What the connection's greetings settled on.
    pub negotiated: Negotiated,
}

impl Peer {
    /// A caller known only by its address and what its connection's
    /// greetings settled on.
    pub(crate) fn at(addr: PeerAddr, negotiated: Negotiated) -> Self {
        Peer {
            addr,
            channel: None,
            identity: None,
            stopping: None,
            negotiated,
        }
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("request_id", &self.request_id)
            .field("deadline", &self.deadline)
            .field("peer", &self.peer.addr)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    pub(crate) fn new(request_id: u64, deadline: Option<Instant>, peer: Arc<Peer>) -> Self {
        CallContext {
            request_id,
            deadline,
            peer,
            inbox: None,
            metadata: None,
            reply: None,
        }
    }

    /// This context, for a caller that reads reply metadata.
    pub(crate) fn with_reply(mut self, wanted: bool) -> Self {
        if wanted {
            self.reply = Some(Arc::default());
        }
        self
    }

    /// Adds an entry to the metadata sent with the call's answer (a value,
    /// an error, or a stream's end), for a caller that reads it (see
    /// [`ReplyMetadata`](crate::ReplyMetadata)); does nothing when the
    /// caller does not. Bounded like request metadata: an answer whose
    /// metadata encodes to more than the server's limit (8 KiB) fails with
    /// [`RpcError::Encode`](crate::RpcError::Encode).
    ///
    /// ```
    /// use rpc_runtime::CallContext;
    ///
    /// async fn handler_body() {
    ///     if let Some(cx) = CallContext::current() {
    ///         cx.set_reply_metadata("served-by", "replica-2");
    ///     }
    /// }
    /// ```
    pub fn set_reply_metadata(&self, key: impl Into<String>, value: impl Into<MetadataValue>) {
        if let Some(reply) = &self.reply {
            let mut metadata = reply
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *metadata = std::mem::take(&mut *metadata).with(key, value);
        }
    }

    /// What the caller's connection settled on in its greetings: the
    /// protocol version, the extensions both sides listed, and the
    /// caller's limits. Over NATS, which has no greeting: version 3, no
    /// extensions, the NATS server's `max_payload` as the caller's frame
    /// limit, and no calls (section 10.5 of `docs/PROTOCOL.md`).
    ///
    /// ```
    /// use rpc_runtime::CallContext;
    ///
    /// async fn handler_body() {
    ///     if let Some(cx) = CallContext::current() {
    ///         tracing::debug!(version = cx.negotiated().version(), "serving");
    ///     }
    /// }
    /// ```
    #[must_use]
    pub fn negotiated(&self) -> Negotiated {
        self.peer.negotiated
    }

    /// Whether the caller reads reply metadata (what
    /// [`set_reply_metadata`](Self::set_reply_metadata) adds reaches it).
    #[must_use]
    pub fn wants_reply_metadata(&self) -> bool {
        self.reply.is_some()
    }

    /// Where the reply metadata is kept, when the caller reads it.
    pub(crate) fn reply_slot(&self) -> Option<Arc<Mutex<Metadata>>> {
        self.reply.clone()
    }

    /// Completes when the server serving this call begins to shut down
    /// (never, for a call that no server serves, such as a callback a
    /// client serves). A handler that streams for a long time waits on it
    /// to end its stream cleanly: calls running when shutdown begins have
    /// the server's grace period to finish (see
    /// [`ServerBuilder::shutdown_grace`](crate::ServerBuilder::shutdown_grace)),
    /// and a stream still open when it ends is ended with
    /// [`RpcError::ShuttingDown`](crate::RpcError::ShuttingDown).
    ///
    /// ```
    /// use rpc_runtime::{CallContext, Streaming};
    ///
    /// // The body of a handler answering with an endless stream of ticks.
    /// fn ticks() -> Streaming<u64> {
    ///     let stopping = CallContext::current().map(|cx| cx.shutting_down());
    ///     let (sender, stream) = Streaming::channel(1);
    ///     tokio::spawn(async move {
    ///         let Some(stopping) = stopping else { return };
    ///         tokio::pin!(stopping);
    ///         for n in 0.. {
    ///             tokio::select! {
    ///                 () = &mut stopping => return, // ends the stream
    ///                 sent = sender.send(n) => if sent.is_err() { return },
    ///             }
    ///         }
    ///     });
    ///     stream
    /// }
    /// ```
    pub fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        let stopping = self.peer.stopping.clone();
        async move {
            match stopping {
                Some(stopping) => stopping.cancelled_owned().await,
                None => std::future::pending().await,
            }
        }
    }

    /// Whether the server serving this call has begun to shut down (see
    /// [`shutting_down`](Self::shutting_down)).
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.peer
            .stopping
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// This context, with the call's metadata.
    pub(crate) fn with_metadata(mut self, metadata: Option<Metadata>) -> Self {
        self.metadata = metadata;
        self
    }

    /// The metadata the caller sent with the call (empty if none). `Debug`
    /// redacts its values.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        self.metadata.as_ref().unwrap_or_else(|| Metadata::empty())
    }

    /// Who the caller proved to be with its certificate, on a server that
    /// requires client certificates (mutual TLS, feature `tls`); `None`
    /// otherwise.
    #[must_use]
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.peer.identity.as_deref()
    }

    /// A channel to the peer that made this call, over the connection the
    /// call came on: for calling the caller back (a callback). `None` when
    /// the caller serves no services on its connection (see
    /// [`ChannelBuilder::serve`](crate::ChannelBuilder::serve)).
    ///
    /// The channel can be kept and used after the handler returns, for as
    /// long as the connection lasts; after that, its calls fail with
    /// [`RpcError::ConnectionLost`](crate::RpcError::ConnectionLost). It never
    /// reconnects (the caller dialed; only it can). Calls on it have even
    /// ids, and work like any others: deadlines, cancellation, streams.
    #[must_use]
    pub fn channel(&self) -> Option<Channel> {
        self.peer.channel.clone()
    }

    /// This context, carrying the stream the caller sends.
    pub(crate) fn with_inbox(mut self, inbox: Option<InboxParts>) -> Self {
        self.inbox = inbox.map(|parts| Arc::new(Mutex::new(Some(parts))));
        self
    }

    /// The context of the call the current task is serving, or `None` outside
    /// a handler (and in tasks the handler spawned: pass it along yourself).
    #[must_use]
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Time left before the caller gives up, or `None` if the call has no
    /// deadline. Zero once it has passed.
    #[must_use]
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// When the caller gives up, on this host's clock.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The request id the caller chose (unique among its calls in flight on
    /// this connection).
    #[must_use]
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// Where the call came from.
    #[must_use]
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.peer.addr
    }

    /// Runs `f` with this context as the current one.
    pub(crate) fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }

    /// Runs `future` with this context as the current one.
    pub(crate) fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }
}

/// Takes the stream the caller of the current call sends. `Ok(None)`
/// outside a handler or for a call that sends none; `Err` if it was taken.
pub(crate) fn take_inbox() -> Option<Option<InboxParts>> {
    CURRENT
        .try_with(|cx| {
            cx.inbox.as_ref().map(|inbox| {
                inbox
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
            })
        })
        .ok()
        .flatten()
}

/// Whether the caller of the current call sends a stream with it.
pub(crate) fn has_inbox() -> bool {
    CURRENT.try_with(|cx| cx.inbox.is_some()).unwrap_or(false)
}

/// The deadline a call made now inherits from the handler it is made in.
pub(crate) fn inherited_deadline() -> Option<Instant> {
    CURRENT.try_with(|cx| cx.deadline).ok().flatten()
}
