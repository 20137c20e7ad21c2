//! What a session needs to serve the peer's calls: the services, the
//! interceptor, and the limits of the end that serves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::routes::Routes;
use crate::intercept::Interceptor;

/// Default time answers may wait for a peer that reads nothing.
pub(crate) const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest metadata block a call may carry.
pub(crate) const DEFAULT_MAX_METADATA: usize = 8 * 1024;

/// The services a session serves, and how.
pub(crate) struct Serving {
    /// The services' methods, by method id.
    pub routes: Routes,
    /// Runs before every call is dispatched.
    pub interceptor: Option<Arc<dyn Interceptor>>,
    /// Calls of the peer's that run at once (one-way calls have as many
    /// again).
    pub max_in_flight: usize,
    /// The largest metadata block a call may carry.
    pub max_metadata: usize,
    /// How long answers may wait for a peer that reads nothing.
    pub write_timeout: Duration,
    /// Stops every call at once.
    pub kill: CancellationToken,
    /// Calls running, over every session this serves.
    pub in_flight: Arc<AtomicUsize>,
}

impl Serving {
    /// What a client that serves services needs: the services, the window
    /// it announces, and a token that stops its calls.
    pub(crate) fn for_channel(
        routes: Routes,
        max_in_flight: usize,
        kill: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Serving {
            routes,
            interceptor: None,
            max_in_flight,
            max_metadata: DEFAULT_MAX_METADATA,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            kill,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// Counts itself in a counter while it lives.
pub(crate) struct Counted(Arc<AtomicUsize>);

impl Counted {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(counter))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
