//! Where a balanced channel learns its endpoints: a fixed list, or a
//! stream of changes (a registry of the user's own, or DNS).

use std::fmt;
use std::pin::Pin;

use futures::{Stream, StreamExt};

/// A change to the set of endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// An endpoint to add: its address (`"10.0.0.7:7000"`, or a host
    /// name and port, resolved each time it is dialed), which also names
    /// it. Adding one already in the set changes nothing.
    Insert(String),
    /// The endpoint of this address leaves the set: no new calls go
    /// there, and its connection closes once the calls on it have ended.
    Remove(String),
}

/// How a balanced channel finds its endpoints (see
/// [`ChannelBuilder::balance`](crate::ChannelBuilder::balance)).
///
/// ```
/// use futures::stream;
/// use rpc_runtime::balance::{Change, Discover};
///
/// let fixed = Discover::fixed(["10.0.0.1:7000", "10.0.0.2:7000"]);
/// let changing = Discover::changes(stream::iter([
///     Change::Insert("10.0.0.1:7000".into()),
///     Change::Remove("10.0.0.1:7000".into()),
/// ]));
/// # drop((fixed, changing));
/// ```
pub struct Discover {
    changes: Pin<Box<dyn Stream<Item = Change> + Send + 'static>>,
}

impl Discover {
    /// A fixed set of endpoints, by address.
    pub fn fixed<I, S>(addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let changes: Vec<Change> = addrs
            .into_iter()
            .map(|addr| Change::Insert(addr.into()))
            .collect();
        Discover::changes(futures::stream::iter(changes))
    }

    /// Endpoints as `changes` reports them, for a registry of your own.
    /// Until its first change, calls wait for endpoints (within their
    /// deadlines); when it ends, the set stays as it is.
    pub fn changes<S>(changes: S) -> Self
    where
        S: Stream<Item = Change> + Send + 'static,
    {
        Discover {
            changes: Box::pin(changes),
        }
    }

    /// The next change; `None` once there are no more.
    pub(super) async fn next(&mut self) -> Option<Change> {
        self.changes.next().await
    }

    /// The next change if one is ready now (`Some(None)`: the stream ended).
    pub(super) fn next_now(&mut self) -> Option<Option<Change>> {
        futures::FutureExt::now_or_never(self.changes.next())
    }
}

impl<S: Into<String>> FromIterator<S> for Discover {
    fn from_iter<I: IntoIterator<Item = S>>(addrs: I) -> Self {
        Discover::fixed(addrs)
    }
}

impl fmt::Debug for Discover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discover").finish_non_exhaustive()
    }
}
