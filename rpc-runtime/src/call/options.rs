//! [`CallOptions`]: what a client says about each of its calls.

use std::time::Duration;

use crate::wire::metadata::{Metadata, MetadataValue, ReplyMetadata};

/// Per-call settings; generated clients keep one (see their `with_timeout`).
///
/// ```
/// use std::time::Duration;
/// let options = rpc_runtime::CallOptions::new().timeout(Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    idempotent: bool,
    metadata: Metadata,
    reply: Option<ReplyMetadata>,
}

impl CallOptions {
    /// The channel's defaults.
    #[must_use]
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// The call's deadline, measured from when the call starts; replaces the
    /// channel's default (30 s unless the channel says otherwise). A call
    /// made inside a handler also respects the handler's own deadline,
    /// whichever is sooner. A call whose deadline is zero, or has already
    /// passed, fails with [`RpcError::DeadlineExceeded`](crate::RpcError::DeadlineExceeded)
    /// at once, without being sent. For no deadline at all, see
    /// [`no_deadline`](Self::no_deadline).
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().timeout(std::time::Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No deadline: the call waits as long as it takes, and the server is
    /// told it has no time limit (for an endless stream, a chat). The same
    /// as a timeout of `Duration::MAX`. A call made inside a handler still
    /// keeps the handler's deadline, if it has one.
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().no_deadline();
    /// ```
    #[must_use]
    pub fn no_deadline(self) -> Self {
        self.timeout(Duration::MAX)
    }

    /// Marks the call safe to run more than once, so it is sent again (a
    /// bounded number of times, within its deadline) when the connection
    /// breaks before the answer arrives. Methods marked
    /// `#[rpc(idempotent)]` set this.
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().idempotent(true);
    /// ```
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Adds a metadata entry, sent with every call made with these options
    /// and readable in the handler through
    /// [`CallContext::metadata`](crate::CallContext::metadata).
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().metadata("authorization", "Bearer s3cr3t");
    /// ```
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata = self.metadata.with(key, value);
        self
    }

    /// Asks for the metadata the handler attaches to its answer
    /// ([`CallContext::set_reply_metadata`](crate::CallContext::set_reply_metadata)),
    /// to be put in `slot` when the answer arrives (for a stream, at its
    /// end). Like gRPC's header and trailer call options.
    ///
    /// ```
    /// let reply = rpc_runtime::ReplyMetadata::new();
    /// let options = rpc_runtime::CallOptions::new().reply_metadata(&reply);
    /// ```
    #[must_use]
    pub fn reply_metadata(mut self, slot: &ReplyMetadata) -> Self {
        self.reply = Some(slot.clone());
        self
    }

    /// Where the answer's metadata goes, if asked for (see
    /// [`reply_metadata`](Self::reply_metadata)).
    #[must_use]
    pub fn get_reply_metadata(&self) -> Option<&ReplyMetadata> {
        self.reply.as_ref()
    }

    /// These options with `metadata` in place of their own.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The metadata calls made with these options carry.
    #[must_use]
    pub fn get_metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Whether the call is marked idempotent (see [`idempotent`](Self::idempotent)).
    #[must_use]
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The timeout set with [`timeout`](Self::timeout), if any.
    #[must_use]
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}
