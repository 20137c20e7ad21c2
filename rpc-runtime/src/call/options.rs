//! [`CallOptions`]: what a client says about each of its calls.

use std::time::Duration;

use crate::wire::metadata::{Metadata, MetadataValue};

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
}

impl CallOptions {
    /// The channel's defaults.
    #[must_use]
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// The call's deadline, measured from when the call starts; replaces the
    /// channel's default. A call made inside a handler also respects the
    /// handler's own deadline, whichever is sooner.
    ///
    /// ```
    /// let options = rpc_runtime::CallOptions::new().timeout(std::time::Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
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
