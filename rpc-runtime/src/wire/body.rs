//! [`Body`]: an encoded value on its way out (a call's return value, an
//! item of a stream), kept with room in front for the frame's header.

use std::pin::Pin;

use futures::Stream;

use bytes::Bytes;

use crate::error::RpcError;

/// A call's encoded return value (the bincode encoding of the value the
/// handler returned), as a [`Service`](crate::Service) hands it to the server; or, for a
/// method that answers with a stream, the stream of encoded items.
///
/// Generated services encode with room in front of the value for the
/// response header, so the server builds the answer frame without a copy; a
/// hand-written service can wrap bytes it encoded itself with
/// [`Body::from`], or a stream of them with [`Body::stream`].
pub struct Body(pub(crate) BodyRepr);

/// The encoded items of an answer stream.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Body, RpcError>> + Send + 'static>>;

pub(crate) enum BodyRepr {
    /// The encoded value starts at `headroom`.
    Headroom {
        buf: bytes::BytesMut,
        headroom: usize,
    },
    Plain(Bytes),
    /// An answer stream: the server sends each item as it comes, as the
    /// caller's credit allows, and ends the call when the stream ends.
    Stream(BodyStream),
}

impl Body {
    /// An answer stream of encoded items; an `Err` item ends the stream
    /// with that error. Only for methods the caller calls as streaming.
    #[must_use]
    pub fn stream(items: BodyStream) -> Self {
        Body(BodyRepr::Stream(items))
    }

    /// Whether this is an answer stream.
    #[must_use]
    pub fn is_stream(&self) -> bool {
        matches!(self.0, BodyRepr::Stream(_))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            BodyRepr::Headroom { buf, headroom } => f
                .debug_tuple("Body")
                .field(&buf.get(*headroom..).unwrap_or_default().len())
                .finish(),
            BodyRepr::Plain(bytes) => f.debug_tuple("Body").field(&bytes.len()).finish(),
            BodyRepr::Stream(_) => f.write_str("Body(stream)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body(BodyRepr::Plain(bytes))
    }
}

/// Lets a [`Body`] answer-stream item be read as bytes.
impl Body {
    /// The encoded value, as bytes (a stream has none: empty).
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.0 {
            BodyRepr::Headroom { mut buf, headroom } => {
                let value = buf.split_off(headroom.min(buf.len()));
                value.freeze()
            }
            BodyRepr::Plain(bytes) => bytes,
            BodyRepr::Stream(_) => Bytes::new(),
        }
    }
}
