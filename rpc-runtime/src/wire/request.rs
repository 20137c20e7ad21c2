//! A call's request: its arguments encoded once, behind room for the
//! header, and the frame of each attempt.

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::error::RpcError;
use crate::wire::codec::{self, REQUEST_SLACK};
use crate::wire::frame::Message;
use crate::wire::route;

/// A call's encoded arguments. The first frame is built in place: the
/// arguments are encoded behind room for the header, which is written into
/// that room once the id and the time left are known, so the frame needs no
/// second buffer and no copy. The last frame sent is kept, unshared (so
/// keeping it costs nothing), for a call sent again (idempotent retries, a
/// server that did not run it), which copies its body behind a new header.
pub(crate) struct RequestBody {
    fresh: Option<BytesMut>,
    headroom: usize,
    /// The last frame, and where its body starts.
    sent: Option<(Sent, usize)>,
    /// The body starts with a metadata block this long.
    metadata_len: usize,
}

/// What a request frame says besides its body.
pub(crate) struct RequestHeader<'a> {
    pub id: u64,
    pub service: &'a str,
    pub method: &'a str,
    pub timeout_micros: Option<u64>,
    pub flags: u8,
}

/// Encodes a call's arguments (a tuple of them), after its encoded
/// `metadata` (empty for none).
pub(crate) fn encode_args<A: Serialize + ?Sized>(
    args: &A,
    metadata: &[u8],
) -> Result<RequestBody, RpcError> {
    let headroom = REQUEST_SLACK;
    let mut buf = BytesMut::with_capacity(headroom + metadata.len() + 64);
    buf.resize(headroom, 0);
    buf.extend_from_slice(metadata);
    codec::encode_into(args, &mut buf).map_err(|e| RpcError::Encode {
        what: "request",
        message: e.to_string(),
    })?;
    Ok(RequestBody {
        fresh: Some(buf),
        headroom,
        sent: None,
        metadata_len: metadata.len(),
    })
}

/// Request frames up to this long are kept unshared, and the writer is
/// handed a copy (sharing a buffer costs an allocation; copying a small
/// frame costs less, and the writer copies it into its buffer anyway).
pub(crate) const COPIED_FRAME: usize = 48;

/// A request frame as its call keeps it, for the writer.
pub(crate) enum KeptFrame<'a> {
    /// A small frame, to copy.
    Copy(&'a [u8]),
    /// A large frame, to share.
    Share(&'a Bytes),
}

impl KeptFrame<'_> {
    /// The frame as bytes of its own: a copy of a small one, a share of a
    /// large one.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            KeptFrame::Copy(frame) => Bytes::copy_from_slice(frame),
            KeptFrame::Share(frame) => Bytes::clone(frame),
        }
    }
}

/// How a call keeps its last frame.
enum Sent {
    Unique(BytesMut),
    Shared(Bytes),
}

impl Sent {
    fn new(frame: BytesMut) -> Self {
        if frame.len() <= COPIED_FRAME {
            Sent::Unique(frame)
        } else {
            Sent::Shared(frame.freeze())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Sent::Unique(frame) => frame,
            Sent::Shared(frame) => frame,
        }
    }

    fn kept(&self) -> KeptFrame<'_> {
        match self {
            Sent::Unique(frame) => KeptFrame::Copy(frame),
            Sent::Shared(frame) => KeptFrame::Share(frame),
        }
    }
}

impl RequestBody {
    /// A copy of this body for a call of its own, if nothing has been sent
    /// from it yet (a fanout sends one call to each endpoint).
    pub(crate) fn duplicate(&self) -> Option<RequestBody> {
        Some(RequestBody {
            fresh: Some(self.fresh.as_ref()?.clone()),
            headroom: self.headroom,
            sent: None,
            metadata_len: self.metadata_len,
        })
    }

    /// The encoded arguments, without the metadata block.
    pub(crate) fn args(&self) -> &[u8] {
        let body = match (&self.fresh, &self.sent) {
            (Some(fresh), _) => fresh.get(self.headroom..),
            (None, Some((sent, at))) => sent.bytes().get(*at..),
            (None, None) => None,
        };
        body.and_then(|body| body.get(self.metadata_len..))
            .unwrap_or_default()
    }

    /// The request frame's payload for one attempt, kept here (the writer
    /// takes a copy of a small one, or a share of a large one).
    ///
    /// `limit` is the receiver's maximum frame length; a larger request fails
    /// here, before anything is sent.
    pub(crate) fn frame(
        &mut self,
        header: &RequestHeader<'_>,
        limit: usize,
    ) -> Result<KeptFrame<'_>, RpcError> {
        let message = Message::Request {
            id: header.id,
            method: route::method_id(header.service, header.method).to_le_bytes(),
            timeout: route::timeout_to_wire(header.timeout_micros),
            flags: if self.metadata_len > 0 {
                header.flags | crate::wire::frame::flags::METADATA
            } else {
                header.flags
            },
        };
        let (frame, at) = match (self.fresh.take(), &self.sent) {
            (Some(mut buf), _) => match codec::place_header(&mut buf, self.headroom, &message) {
                Some(n) => (buf, n),
                None => {
                    let body = buf.get(self.headroom..).unwrap_or_default();
                    codec::with_header_at(&message, body)
                }
            },
            (None, Some((sent, at))) => {
                codec::with_header_at(&message, sent.bytes().get(*at..).unwrap_or_default())
            }
            (None, None) => codec::with_header_at(&message, &[]),
        };
        let size = frame.len();
        let kept = &self.sent.insert((Sent::new(frame), at)).0;
        if size > limit {
            return Err(RpcError::FrameTooLarge {
                what: "request",
                size: size as u64,
                limit: limit as u64,
            });
        }
        Ok(kept.kept())
    }
}
