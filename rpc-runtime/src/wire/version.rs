//! Protocol versions and extensions, and what two peers settled on
//! (section 4 of `docs/PROTOCOL.md`, "Versions and compatibility").
//!
//! A peer speaks a range of versions. Both ends of a connection settle on
//! the highest version both speak, and on the extensions both list: an
//! extension is a capability one side may lack (compressed frames, so far),
//! named by a number in the greeting, so that adding one never needs a new
//! version. Unknown extension numbers are ignored.

use std::fmt;

/// The newest protocol version this crate speaks; it also speaks every
/// version back to [`OLDEST_PROTOCOL_VERSION`].
pub const PROTOCOL_VERSION: u32 = 4;

/// The oldest protocol version this crate still speaks: every release
/// speaks the version of the release before it.
pub const OLDEST_PROTOCOL_VERSION: u32 = 3;

/// One extension of the protocol, by the number the greeting lists it by
/// (the list is in section 4.3 of `docs/PROTOCOL.md`).
///
/// ```
/// use rpc_runtime::Extension;
///
/// assert_eq!(Extension::ZSTD.id(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Extension(u32);

impl Extension {
    /// The sender accepts frames compressed with zstd (section 5.9 of
    /// `docs/PROTOCOL.md`).
    pub const ZSTD: Extension = Extension(1);

    /// The extensions this crate knows, in the order of their numbers.
    const KNOWN: [Extension; 1] = [Extension::ZSTD];

    /// The number the greeting lists this extension by.
    #[must_use]
    pub const fn id(self) -> u32 {
        self.0
    }

    /// The extension numbered `id`, if this crate knows it.
    #[must_use]
    pub fn from_id(id: u32) -> Option<Extension> {
        Self::KNOWN.into_iter().find(|known| known.0 == id)
    }

    /// Its name in `docs/PROTOCOL.md`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "zstd",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// A set of [`Extension`]s: what a peer listed in its greeting, or what
/// both peers of a connection listed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Extensions {
    /// Bit `n` stands for the known extension numbered `n` (numbers stay
    /// below 64 while this crate knows them; others are never kept).
    bits: u64,
}

impl Extensions {
    /// No extension.
    #[must_use]
    pub const fn none() -> Extensions {
        Extensions { bits: 0 }
    }

    /// This set and `extension`.
    #[must_use]
    pub fn with(self, extension: Extension) -> Extensions {
        Extensions {
            bits: self.bits | bit(extension.0),
        }
    }

    /// Whether `extension` is in the set.
    #[must_use]
    pub fn contains(self, extension: Extension) -> bool {
        self.bits & bit(extension.0) != 0
    }

    /// The extensions in both sets.
    #[must_use]
    pub fn both(self, other: Extensions) -> Extensions {
        Extensions {
            bits: self.bits & other.bits,
        }
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// The extensions, in the order of their numbers.
    pub fn iter(self) -> impl Iterator<Item = Extension> {
        Extension::KNOWN
            .into_iter()
            .filter(move |known| self.contains(*known))
    }

    /// The set a greeting lists by these numbers; numbers this crate does
    /// not know are ignored.
    pub(crate) fn from_ids(ids: impl IntoIterator<Item = u32>) -> Extensions {
        ids.into_iter()
            .filter_map(Extension::from_id)
            .fold(Extensions::none(), Extensions::with)
    }
}

/// The bit of extension number `id`; 0 for numbers past the set's width.
fn bit(id: u32) -> u64 {
    1u64.checked_shl(id).unwrap_or(0)
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What the two ends of a connection settled on in their greetings: the
/// protocol version, the extensions both listed, and the peer's limits.
///
/// A [`Channel`](crate::Channel) reports it for its current connection
/// ([`Channel::negotiated`](crate::Channel::negotiated)), a handler for its
/// caller's ([`CallContext::negotiated`](crate::CallContext::negotiated)).
///
/// ```
/// use rpc_runtime::{Channel, Extension};
///
/// fn describe(channel: &Channel) {
///     if let Some(agreed) = channel.negotiated() {
///         println!(
///             "version {}, zstd {}, frames up to {} bytes",
///             agreed.version(),
///             agreed.extensions().contains(Extension::ZSTD),
///             agreed.peer_max_frame_length(),
///         );
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    version: u32,
    extensions: Extensions,
    peer_max_frame_length: usize,
    peer_max_in_flight: usize,
}

impl Negotiated {
    pub(crate) fn new(
        version: u32,
        extensions: Extensions,
        peer_max_frame_length: usize,
        peer_max_in_flight: usize,
    ) -> Negotiated {
        Negotiated {
            version,
            extensions,
            peer_max_frame_length,
            peer_max_in_flight,
        }
    }

    /// The protocol version the connection speaks.
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The extensions both ends listed.
    #[must_use]
    pub fn extensions(&self) -> Extensions {
        self.extensions
    }

    /// The largest frame payload the peer accepts, in bytes.
    #[must_use]
    pub fn peer_max_frame_length(&self) -> usize {
        self.peer_max_frame_length
    }

    /// The most calls the peer runs at once for this connection (0: it
    /// serves none).
    #[must_use]
    pub fn peer_max_in_flight(&self) -> usize {
        self.peer_max_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::{Extension, Extensions};

    #[test]
    fn unknown_extension_numbers_are_ignored() {
        let set = Extensions::from_ids([7, 1, 1_000_000, 64, 63]);
        assert!(set.contains(Extension::ZSTD));
        assert_eq!(set.iter().collect::<Vec<_>>(), [Extension::ZSTD]);
    }

    #[test]
    fn both_keeps_what_each_side_listed() {
        let ours = Extensions::none().with(Extension::ZSTD);
        assert_eq!(ours.both(Extensions::none()), Extensions::none());
        assert_eq!(ours.both(ours), ours);
        assert!(Extensions::none().is_empty());
    }
}
