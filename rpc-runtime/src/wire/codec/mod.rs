//! Every bincode call of the crate lives here, so the serialization format can
//! be swapped in one place.
//!
//! Every decode also limits nesting to [`depth::MAX_DEPTH`](crate::wire::depth::MAX_DEPTH)
//! levels, so a recursive type cannot be nested deep enough to overflow the
//! stack, and the number of values to a multiple of the input's length, so
//! zero-sized elements cannot make it loop for ever (see `depth.rs`).
//!
//! The configuration is bincode 2's `standard()`: little-endian, variable-length
//! integers (see `docs/PROTOCOL.md` for the exact encoding), no trailing bytes.
//!
//! Decoding is bounded. Frames are already capped by the length-delimited codec
//! before any allocation; on top of that, every decode runs with a bincode
//! limit derived from the size of the input, so a hostile length field inside
//! a small frame (a string that claims to be 4 GiB long) is rejected instead of
//! allocated. The limit is 16 times the input length rounded up to a power of
//! eight (bincode counts a varint `u64` as 8 bytes whatever its encoded size,
//! and `u128` as 16), so every value that really fits in the input decodes.

use bincode::config::{self, Configuration};
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use bytes::{Buf, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RpcError;
use crate::status::Code;
use crate::wire::body::{Body, BodyRepr};
use crate::wire::frame::{code, Message, Status};
use crate::wire::metadata::{Metadata, MetadataValue};

mod hello;

pub(crate) use hello::{decode_hello, encode_hello};

type Standard = Configuration;

fn standard() -> Standard {
    config::standard()
}

/// Appends to a `BytesMut`.
struct BufWriter<'a>(&'a mut BytesMut);

impl Writer for BufWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    bincode::serde::encode_into_writer(value, BufWriter(dst), standard())
}

/// Room for the largest request header: variant (up to 5 bytes), id (9),
/// the method id (4), the timeout (9) and the flags (1).
pub(crate) const REQUEST_SLACK: usize = 28;
/// Room for the largest response header with status `Ok`: variant (5), id
/// (9), status (5).
const RESPONSE_SLACK: usize = 24;

/// Writes `header` at the end of the first `headroom` bytes of `buf`, drops
/// the unused room in front, and returns the header's length; `None` if it
/// did not fit (it always does, with the slack above).
pub(crate) fn place_header(
    buf: &mut BytesMut,
    headroom: usize,
    header: &Message<'_>,
) -> Option<usize> {
    let room = buf.get_mut(..headroom)?;
    let n = bincode::serde::encode_into_slice(header, room, standard()).ok()?;
    buf.copy_within(0..n, headroom - n);
    // Not `split_to`, which would make the buffer shared (an allocation).
    buf.advance(headroom - n);
    Some(n)
}

/// A frame of `header` and `body`, and where its body starts.
pub(crate) fn with_header_at(header: &Message<'_>, body: &[u8]) -> (BytesMut, usize) {
    let mut buf = BytesMut::with_capacity(REQUEST_SLACK + body.len());
    encode_header(header, &mut buf);
    let at = buf.len();
    buf.extend_from_slice(body);
    (buf, at)
}

/// Encodes a message that has no body (cancel, ping, pong).
pub(crate) fn encode_control(message: &Message<'_>) -> Bytes {
    let mut buf = BytesMut::with_capacity(16);
    encode_header(message, &mut buf);
    buf.freeze()
}

/// A frame of `header` and an encoded value, in place when the value left
/// room for the header; `None` for a stream, which is no single value.
fn body_frame(header: &Message<'_>, repr: BodyRepr) -> Option<BytesMut> {
    Some(match repr {
        BodyRepr::Headroom { mut buf, headroom } => {
            match place_header(&mut buf, headroom, header) {
                Some(_) => buf,
                None => with_header_at(header, buf.get(headroom..).unwrap_or_default()).0,
            }
        }
        BodyRepr::Plain(body) => with_header_at(header, &body).0,
        BodyRepr::Stream(_) => return None,
    })
}

impl Body {
    /// `value`, encoded as a generated service encodes a return value:
    /// for a hand-written [`Service`](crate::Service).
    ///
    /// # Errors
    /// [`RpcError::Encode`] when the value's `Serialize` fails.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, RpcError> {
        encode_value(value)
    }
}

/// Encodes a handler's return value, behind room for the response header.
pub(crate) fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Body, RpcError> {
    let mut buf = BytesMut::with_capacity(RESPONSE_SLACK + 64);
    buf.resize(RESPONSE_SLACK, 0);
    encode_into(value, &mut buf).map_err(|e| RpcError::Encode {
        what: "response",
        message: e.to_string(),
    })?;
    Ok(Body(BodyRepr::Headroom {
        buf,
        headroom: RESPONSE_SLACK,
    }))
}

/// Encodes a response that fails call `id` with `code` and `message`; a
/// message too long for the caller's `limit` is cut.
pub(crate) fn encode_refusal(
    id: u64,
    code: u32,
    message: &str,
    details: &[u8],
    limit: usize,
) -> Bytes {
    refusal_frame(id, code, message, details, limit).freeze()
}

/// [`encode_refusal`], not yet frozen.
fn refusal_frame(id: u64, code: u32, message: &str, details: &[u8], limit: usize) -> BytesMut {
    let room = limit.saturating_sub(RESPONSE_SLACK + 10);
    let mut end = message.len().min(room);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    // Details go only where they fit whole, after the message.
    let details = if details.len() <= room - end {
        details
    } else {
        &[]
    };
    let header = Message::Response {
        id,
        status: Status::Error {
            code,
            message: message.get(..end).unwrap_or_default(),
        },
    };
    let mut buf = BytesMut::with_capacity(RESPONSE_SLACK + end + details.len());
    encode_header(&header, &mut buf);
    buf.extend_from_slice(details);
    buf
}

/// Encodes a response frame payload, in place when the body left room. An
/// answer larger than the caller's `limit` is replaced by a
/// `FRAME_TOO_LARGE` error for that call.
pub(crate) fn encode_response(id: u64, result: Result<Body, RpcError>, limit: usize) -> Bytes {
    response_frame(id, result, limit).freeze()
}

/// [`encode_response`], not yet frozen: a small frame that a writer copies
/// into its buffer is never made shareable (which costs an allocation).
pub(crate) fn response_frame(id: u64, result: Result<Body, RpcError>, limit: usize) -> BytesMut {
    let ok = Message::Response {
        id,
        status: Status::Ok,
    };
    let frame = match result {
        // The dispatcher drives streams itself; one reaching here ends the
        // stream with nothing more (an empty body).
        Ok(Body(repr)) => body_frame(&ok, repr).unwrap_or_else(|| with_header_at(&ok, &[]).0),
        Err(error) => {
            let (code, message) = error_to_wire(&error);
            return refusal_frame(id, code, &message, error_details(&error), limit);
        }
    };
    if frame.len() > limit {
        let error = RpcError::FrameTooLarge {
            what: "response",
            size: frame.len() as u64,
            limit: limit as u64,
        };
        return response_frame(id, Err(error), limit);
    }
    frame
}

/// [`encode_response`] for a call whose caller reads reply metadata: the
/// body starts with `metadata`'s block (`00` for none), then the value, or
/// the status's details. An answer that no longer fits `limit`, or
/// metadata over `max_metadata` bytes, becomes that call's error.
pub(crate) fn encode_response_with(
    id: u64,
    result: Result<Body, RpcError>,
    limit: usize,
    metadata: &Metadata,
    max_metadata: usize,
) -> BytesMut {
    let block: &[u8] = match metadata.encoded() {
        [] => &[0],
        block => block,
    };
    // Metadata over the limit fails the call, and is not sent.
    let (block, result): (&[u8], _) = if block.len() > max_metadata {
        let error = RpcError::Encode {
            what: "reply metadata",
            message: format!(
                "it is {} bytes, over the limit of {max_metadata}",
                block.len()
            ),
        };
        (&[0], Err(error))
    } else {
        (block, result)
    };
    match result {
        Ok(body) => {
            let value = body.into_bytes();
            let header = Message::Response {
                id,
                status: Status::Ok,
            };
            let mut buf = BytesMut::with_capacity(RESPONSE_SLACK + block.len() + value.len());
            encode_header(&header, &mut buf);
            buf.extend_from_slice(block);
            buf.extend_from_slice(&value);
            if buf.len() > limit {
                let error = RpcError::FrameTooLarge {
                    what: "response",
                    size: buf.len() as u64,
                    limit: limit as u64,
                };
                return encode_response_with(id, Err(error), limit, &Metadata::new(), max_metadata);
            }
            buf
        }
        Err(error) => {
            let (code, message) = error_to_wire(&error);
            let mut details = Vec::with_capacity(block.len() + error_details(&error).len());
            details.extend_from_slice(block);
            details.extend_from_slice(error_details(&error));
            if details.len() + RESPONSE_SLACK + 10 > limit {
                details.truncate(block.len());
            }
            refusal_frame(id, code, &message, &details, limit)
        }
    }
}

/// Splits the metadata block off the body of an answer to a call that
/// asked for reply metadata; an empty body (an error sent before any
/// handler ran) has none.
pub(crate) fn split_reply_metadata(
    body: Bytes,
    max_metadata: usize,
) -> Result<(Metadata, Bytes), String> {
    if body.is_empty() {
        return Ok((Metadata::new(), body));
    }
    let window = body.get(..body.len().min(max_metadata)).unwrap_or_default();
    let (entries, used) = decode_metadata(window).map_err(|e| {
        format!("the reply metadata does not decode within {max_metadata} bytes: {e}")
    })?;
    Ok((
        Metadata::received(entries),
        body.slice(used.min(body.len())..),
    ))
}

/// Encodes one item of call `id`'s answer stream. An item larger than the
/// caller's `limit` fails (and with it, the stream).
pub(crate) fn encode_item(id: u64, body: Body, limit: usize) -> Result<Bytes, RpcError> {
    let header = Message::Item { id };
    let frame = body_frame(&header, body.0)
        .ok_or_else(|| RpcError::Encode {
            what: "stream item",
            message: "an item of a stream cannot itself be a stream".to_owned(),
        })?
        .freeze();
    if frame.len() > limit {
        return Err(RpcError::FrameTooLarge {
            what: "stream item",
            size: frame.len() as u64,
            limit: limit as u64,
        });
    }
    Ok(frame)
}

/// Encodes the end of the stream a caller sends with call `id`; a status's
/// details go along when they fit within `limit`.
pub(crate) fn encode_end(id: u64, end: Result<(), RpcError>, limit: usize) -> Bytes {
    let message;
    let mut details: &[u8] = &[];
    let status = match &end {
        Ok(()) => Status::Ok,
        Err(error) => {
            let (code, text) = error_to_wire(error);
            message = text;
            details = error_details(error);
            Status::Error {
                code,
                message: &message,
            }
        }
    };
    let mut buf = BytesMut::with_capacity(16);
    encode_header(&Message::End { id, status }, &mut buf);
    if buf.len() + details.len() <= limit {
        buf.extend_from_slice(details);
    }
    buf.freeze()
}

/// Encodes a call's metadata block.
pub(crate) fn encode_metadata(entries: &[(String, MetadataValue)]) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    // Strings and bytes cannot fail to encode.
    if let Err(e) = encode_into(entries, &mut buf) {
        tracing::error!("encoding metadata failed: {e}");
    }
    buf.freeze()
}

/// Encodes a goodbye frame payload.
pub(crate) fn encode_goodbye(code: u32, message: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(16 + message.len());
    encode_header(&Message::Goodbye { code, message }, &mut buf);
    buf.freeze()
}

fn encode_header(header: &Message<'_>, buf: &mut BytesMut) {
    // Headers hold integers and strings only; encoding them cannot fail.
    if let Err(e) = encode_into(header, buf) {
        tracing::error!("encoding a frame header failed: {e}");
    }
}

/// Decodes with a bincode limit proportional to the input's length.
macro_rules! bounded_decode {
    ($input:expr, $ty:ty) => {
        bounded_decode!(seed $input, ::std::marker::PhantomData::<$ty>)
    };
    (seed $input:expr, $seed:expr) => {{
        let input = $input;
        let need = input.len().saturating_mul(16);
        macro_rules! rung {
            ($bits:literal) => {
                bincode::serde::seed_decode_from_slice(
                    crate::wire::depth::Limited::with_seed(input.len(), $seed),
                    input,
                    standard().with_limit::<{ 1usize << $bits }>(),
                )
            };
        }
        if need <= 1 << 12 {
            rung!(12)
        } else if need <= 1 << 15 {
            rung!(15)
        } else if need <= 1 << 18 {
            rung!(18)
        } else if need <= 1 << 21 {
            rung!(21)
        } else if need <= 1 << 24 {
            rung!(24)
        } else if need <= 1 << 27 {
            rung!(27)
        } else if need <= 1 << 30 {
            rung!(30)
        } else if need <= 1 << 33 {
            rung!(33)
        } else {
            rung!(36)
        }
    }};
}

/// Decodes the header at the start of a frame payload and returns it with the
/// number of bytes it took; the rest of the payload is the body.
///
/// Without the decode limits of values: a header is a fixed shape (no
/// recursion, no sequence) whose strings are borrowed from the payload, so
/// nothing in it allocates or nests, whatever the payload says.
pub(crate) fn decode_message(payload: &[u8]) -> Result<(Message<'_>, usize), String> {
    bincode::serde::borrow_decode_from_slice(payload, standard()).map_err(|e| e.to_string())
}

/// Decodes the metadata block at the start of a request's body; returns it
/// with the number of bytes it took.
pub(crate) fn decode_metadata(
    body: &[u8],
) -> Result<(Vec<(String, MetadataValue)>, usize), String> {
    bounded_decode!(body, Vec<(String, MetadataValue)>).map_err(|e: DecodeError| e.to_string())
}

/// Decodes a body (arguments or a return value), which must use every
/// byte. A [`Bytes`] value is a slice of `body`, not a copy.
pub(crate) fn decode_value<T: DeserializeOwned + 'static>(body: &Bytes) -> Result<T, String> {
    let (value, used) = decode_value_at(body, 0)?;
    match body.len().saturating_sub(used) {
        0 => Ok(value),
        left => Err(trailing(left)),
    }
}

/// Decodes a value at `body[at..]`; returns it with the number of bytes it
/// took. A [`Bytes`] value is a slice of `body`, not a copy.
pub(crate) fn decode_value_at<T: DeserializeOwned + 'static>(
    body: &Bytes,
    at: usize,
) -> Result<(T, usize), String> {
    match super::slices::bytes_at::<T>(body, at, decode_prefix::<u64>) {
        Some(decoded) => decoded,
        None => decode_prefix(body.get(at..).unwrap_or_default()),
    }
}

/// Decodes a value at the start of `input`; returns it with the number of
/// bytes it took.
#[inline]
pub(crate) fn decode_prefix<T: DeserializeOwned>(input: &[u8]) -> Result<(T, usize), String> {
    bounded_decode!(input, T).map_err(|e: DecodeError| e.to_string())
}

/// Decodes one value with `seed`, under the same limits as every decode,
/// using every byte: for values whose type is known only at run time.
pub(crate) fn decode_seed<'de, S: serde::de::DeserializeSeed<'de>>(
    seed: S,
    input: &'de [u8],
) -> Result<S::Value, String> {
    let (value, used) =
        bounded_decode!(seed input, seed).map_err(|e: DecodeError| e.to_string())?;
    match input.len().saturating_sub(used) {
        0 => Ok(value),
        left => Err(trailing(left)),
    }
}

fn trailing(left: usize) -> String {
    format!("{left} unexpected trailing bytes after the value (do both sides use the same types?)")
}

fn decode_exact<T: DeserializeOwned>(input: &[u8]) -> Result<T, String> {
    let (value, used) = bounded_decode!(input, T).map_err(|e: DecodeError| e.to_string())?;
    if used != input.len() {
        return Err(trailing(input.len() - used));
    }
    Ok(value)
}

/// Maps an error to its wire code and message (server side).
pub(crate) fn error_to_wire(error: &RpcError) -> (u32, String) {
    let code = match error {
        RpcError::UnknownService { .. } => code::UNKNOWN_SERVICE,
        RpcError::UnknownMethod { .. } => code::UNKNOWN_METHOD,
        RpcError::BadRequest { .. } => code::BAD_REQUEST,
        RpcError::Panicked { .. } => code::PANICKED,
        RpcError::FrameTooLarge { .. } | RpcError::ResponseTooLarge { .. } => code::FRAME_TOO_LARGE,
        RpcError::ShuttingDown => code::SHUTTING_DOWN,
        RpcError::ServerBusy { .. } => code::SERVER_BUSY,
        RpcError::VersionMismatch { .. } => code::VERSION_MISMATCH,
        RpcError::Encode { .. } => code::ENCODE,
        RpcError::Remote { code, .. } => *code,
        RpcError::Unauthenticated { .. } => code::UNAUTHENTICATED,
        RpcError::PermissionDenied { .. } => code::PERMISSION_DENIED,
        RpcError::Status(status) => status.code().wire(),
        RpcError::Layer { code, .. } => code.wire(),
        _ => code::PROTOCOL,
    };
    let message = match error {
        RpcError::BadRequest { message }
        | RpcError::Panicked { message }
        | RpcError::Protocol { message }
        | RpcError::Remote { message, .. }
        | RpcError::Unauthenticated { message }
        | RpcError::PermissionDenied { message } => message.clone(),
        RpcError::Status(status) => status.message().to_owned(),
        other => other.to_string(),
    };
    (code, message)
}

/// What travels in the body of an error response: a status's details.
pub(crate) fn error_details(error: &RpcError) -> &[u8] {
    match error {
        RpcError::Status(status) => status.details(),
        _ => &[],
    }
}

/// Maps a wire error to the error the caller sees (client side).
pub(crate) fn error_from_wire(
    code: u32,
    message: &str,
    details: Bytes,
    service: &str,
    method: &str,
) -> RpcError {
    let message = message.to_owned();
    if let Some(application) = Code::from_wire(code) {
        return RpcError::Status(crate::status::Status::received(
            application,
            message,
            details,
        ));
    }
    match code {
        code::UNKNOWN_SERVICE => RpcError::UnknownService {
            service: service.to_owned(),
        },
        code::UNKNOWN_METHOD => RpcError::UnknownMethod {
            service: service.to_owned(),
            method: method.to_owned(),
        },
        code::BAD_REQUEST => RpcError::BadRequest { message },
        code::PANICKED => RpcError::Panicked { message },
        code::SHUTTING_DOWN => RpcError::ShuttingDown,
        code::PROTOCOL | code::DUPLICATE_ID => RpcError::Protocol { message },
        code::FRAME_TOO_LARGE => RpcError::ResponseTooLarge { message },
        code::SERVER_BUSY => RpcError::ServerBusy { message },
        code::UNAVAILABLE => RpcError::Unavailable { message },
        code::LOST => RpcError::connection_lost(message),
        code::ENCODE => RpcError::Encode {
            what: "response",
            message,
        },
        code::UNAUTHENTICATED => RpcError::Unauthenticated { message },
        code::PERMISSION_DENIED => RpcError::PermissionDenied { message },
        _ => RpcError::Remote { code, message },
    }
}
