//! Per-call metadata: string keys with text or binary values, sent with a
//! call and read by its handler (and by interceptors).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One metadata value: text (a header-like string) or bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataValue {
    /// A string value.
    Text(String),
    /// A binary value.
    Binary(Vec<u8>),
}

impl MetadataValue {
    /// The value as text, if it is text.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::Text(text) => Some(text),
            MetadataValue::Binary(_) => None,
        }
    }

    /// The value's bytes (a text value's UTF-8).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            MetadataValue::Text(text) => text.as_bytes(),
            MetadataValue::Binary(bytes) => bytes,
        }
    }
}

/// Values are secrets until proven otherwise: `Debug` does not show them.
impl fmt::Debug for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataValue::Text(text) => write!(f, "Text(<{} bytes redacted>)", text.len()),
            MetadataValue::Binary(bytes) => write!(f, "Binary(<{} bytes redacted>)", bytes.len()),
        }
    }
}

impl From<&str> for MetadataValue {
    fn from(text: &str) -> Self {
        MetadataValue::Text(text.to_owned())
    }
}

impl From<String> for MetadataValue {
    fn from(text: String) -> Self {
        MetadataValue::Text(text)
    }
}

impl From<Vec<u8>> for MetadataValue {
    fn from(bytes: Vec<u8>) -> Self {
        MetadataValue::Binary(bytes)
    }
}

impl From<&[u8]> for MetadataValue {
    fn from(bytes: &[u8]) -> Self {
        MetadataValue::Binary(bytes.to_vec())
    }
}

/// The metadata of a call: an ordered list of `(key, value)` entries. A key
/// may appear more than once; [`get`](Self::get) returns the last.
///
/// Cheap to clone (shared). Its encoding is computed once, when it is built,
/// not per call. `Debug` shows the keys and redacts the values; use
/// [`debug_values`](Self::debug_values) to opt in to showing them.
#[derive(Clone, Default)]
pub struct Metadata {
    /// `None` when there are no entries: the metadata most calls carry
    /// then costs nothing to clone or drop.
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    entries: Vec<(String, MetadataValue)>,
    /// The wire encoding of `entries` (empty when not needed again).
    encoded: Bytes,
}

impl Metadata {
    /// No entries.
    #[must_use]
    pub fn new() -> Self {
        Metadata::default()
    }

    /// This metadata with `(key, value)` added.
    ///
    /// ```
    /// use rpc_runtime::Metadata;
    /// let metadata = Metadata::new()
    ///     .with("authorization", "Bearer s3cr3t")
    ///     .with("trace-bin", vec![1u8, 2, 3]);
    /// assert_eq!(metadata.get("authorization").and_then(|v| v.as_str()), Some("Bearer s3cr3t"));
    /// assert!(!format!("{metadata:?}").contains("s3cr3t"));
    /// ```
    #[must_use]
    pub fn with(self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        let mut entries = match self.shared {
            Some(shared) => Arc::try_unwrap(shared)
                .map(|shared| shared.entries)
                .unwrap_or_else(|shared| shared.entries.clone()),
            None => Vec::new(),
        };
        entries.push((key.into(), value.into()));
        Metadata::from_entries(entries)
    }

    /// Metadata as received: its encoding is not needed again.
    pub(crate) fn received(entries: Vec<(String, MetadataValue)>) -> Self {
        Metadata::shared(entries, Bytes::new())
    }

    /// The metadata of a call that carried none.
    pub(crate) fn empty() -> &'static Metadata {
        static EMPTY: Metadata = Metadata { shared: None };
        &EMPTY
    }

    pub(crate) fn from_entries(entries: Vec<(String, MetadataValue)>) -> Self {
        let encoded = if entries.is_empty() {
            Bytes::new()
        } else {
            crate::wire::codec::encode_metadata(&entries)
        };
        Metadata::shared(entries, encoded)
    }

    fn shared(entries: Vec<(String, MetadataValue)>, encoded: Bytes) -> Self {
        let shared = (!entries.is_empty()).then(|| Arc::new(Shared { entries, encoded }));
        Metadata { shared }
    }

    fn entries(&self) -> &[(String, MetadataValue)] {
        self.shared.as_ref().map_or(&[], |shared| &shared.entries)
    }

    /// The last value under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.entries()
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetadataValue)> {
        self.entries().iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The size of the metadata on the wire, in bytes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.encoded().len()
    }

    pub(crate) fn encoded(&self) -> &[u8] {
        self.shared.as_ref().map_or(&[], |shared| &shared.encoded)
    }

    /// A `Debug` view that shows the values too (text as text, bytes as
    /// bytes): for when logging them is known to be safe.
    #[must_use]
    pub fn debug_values(&self) -> impl fmt::Debug + '_ {
        struct Shown<'a>(&'a Metadata);
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (key, value) in self.0.iter() {
                    match value {
                        MetadataValue::Text(text) => map.entry(&key, text),
                        MetadataValue::Binary(bytes) => map.entry(&key, bytes),
                    };
                }
                map.finish()
            }
        }
        Shown(self)
    }
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl Eq for Metadata {}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.iter() {
            map.entry(&key, value);
        }
        map.finish()
    }
}

/// Where the metadata a handler attaches to its answer lands, for the
/// caller to read once the call has ended (like gRPC's header and trailer
/// call options). Cheap to clone; clones share the slot.
///
/// ```
/// use rpc_runtime::{CallOptions, ReplyMetadata};
///
/// let reply = ReplyMetadata::new();
/// let options = CallOptions::new().reply_metadata(&reply);
/// // ... make a call with `options`, then:
/// assert!(reply.get().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct ReplyMetadata {
    slot: Arc<std::sync::Mutex<Metadata>>,
}

impl ReplyMetadata {
    /// An empty slot.
    #[must_use]
    pub fn new() -> Self {
        ReplyMetadata::default()
    }

    /// The metadata of the last answer that arrived (empty until one has,
    /// or if it carried none).
    #[must_use]
    pub fn get(&self) -> Metadata {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records an answer's metadata.
    pub(crate) fn set(&self, metadata: Metadata) {
        *self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = metadata;
    }
}

impl fmt::Debug for ReplyMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReplyMetadata").field(&self.get()).finish()
    }
}
