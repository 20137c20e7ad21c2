//! The messages that travel in frames. `docs/PROTOCOL.md` is the normative
//! description; the worked example there is asserted by `tests/protocol_bytes.rs`.
//!
//! Every frame is a 4-byte big-endian length followed by that many payload
//! bytes. The first frame each way is a [`Hello`]; every later frame is a
//! [`Message`] header, encoded with bincode, followed by a body whose meaning
//! the header gives (a call's arguments, or the value it returned).

use serde::{Deserialize, Serialize};

/// The four bytes that open every greeting: `RRPC`.
pub(crate) const MAGIC: [u8; 4] = *b"RRPC";

/// Default maximum frame payload, both directions: 16 MiB.
pub(crate) const DEFAULT_MAX_FRAME_LENGTH: usize = 16 * 1024 * 1024;

/// The largest greeting accepted. A peer whose first frame claims more is not
/// speaking this protocol (an HTTP response, for instance, reads as ~1.2 GB).
pub(crate) const MAX_HELLO_LEN: usize = 64;

/// Who opened the connection.
pub(crate) const ROLE_DIALER: u8 = 0;
/// Who accepted the connection.
pub(crate) const ROLE_LISTENER: u8 = 1;

/// The first frame each way, whatever its layout (see [`Layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// [`ROLE_DIALER`] or [`ROLE_LISTENER`]; lets a dialer notice an echo server.
    pub role: u8,
    /// The newest protocol version the sender speaks (the greeting's
    /// `version` field).
    pub newest: u32,
    /// The oldest protocol version the sender speaks: `newest` itself in
    /// the layouts before version 4, which name one version.
    pub oldest: u32,
    /// The largest frame payload the sender accepts; the other side never
    /// sends more (it fails that one call instead).
    pub max_frame_length: u32,
    /// The most calls the sender runs at once for this connection (0: it
    /// serves none). The other side keeps at most this many calls
    /// outstanding, so the sender never has to stop reading (and can always
    /// see pings and cancels).
    pub max_in_flight: u32,
    /// The extensions the sender listed (in version 3's layout, the zstd
    /// bit of its `accepts`).
    pub extensions: crate::wire::version::Extensions,
}

/// How a greeting's payload is laid out, which its `version` field says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Versions 1 and 2: magic, role, version, frame limit, window.
    Short,
    /// Version 3: as versions 1 and 2, then `accepts`, and nothing more.
    V3,
    /// Version 4 and later: as versions 1 and 2, then the oldest version
    /// spoken and the list of extensions; later fields are ignored.
    Ranged,
}

impl Layout {
    /// The layout of a greeting whose `version` field is `version`.
    pub(crate) fn of(version: u32) -> Layout {
        match version {
            0..=2 => Layout::Short,
            3 => Layout::V3,
            _ => Layout::Ranged,
        }
    }
}

/// The `accepts` bit of a version-3 greeting that stands for
/// [`Extension::ZSTD`](crate::wire::version::Extension::ZSTD).
pub(crate) const ACCEPT_ZSTD: u32 = 1;

/// The first byte of a frame whose payload is compressed with zstd: what
/// follows is one zstd frame holding the whole payload (header and body)
/// of the frame it stands for. No message starts with it (message variant
/// indexes end at 9).
#[cfg(feature = "zstd")]
pub(crate) const ZSTD_FRAME: u8 = 10;

/// Every frame after the greeting starts with one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Message<'a> {
    /// A call. The body holds the arguments, encoded one after another.
    Request {
        /// Chosen by the caller, unique among its calls in flight.
        id: u64,
        /// The method's id ([`method_id`](super::route::method_id) of the
        /// service's and the method's wire names), little-endian.
        method: [u8; 4],
        /// Time the caller still waits for the answer, counted from when the
        /// receiver reads the frame (never a wall-clock time: clocks differ
        /// between hosts), encoded by
        /// [`timeout_to_wire`](super::route::timeout_to_wire); 0: no deadline.
        timeout: u64,
        /// How the call goes: a sum of [`flags`] constants.
        flags: u8,
    },
    /// The answer to the request with the same id. The body holds the return
    /// value when `status` is [`Status::Ok`], and is empty otherwise.
    Response {
        /// The request's id.
        id: u64,
        /// How the call ended.
        #[serde(borrow)]
        status: Status<'a>,
    },
    /// The sender is closing the connection, and says why. Every call still
    /// pending on it fails with the error this code maps to.
    Goodbye {
        /// One of the [`code`] constants.
        code: u32,
        /// A message for people.
        message: &'a str,
    },
    /// The caller no longer wants the answer to request `id`; the receiver
    /// stops the call if it is still running and sends no answer.
    Cancel {
        /// The request's id.
        id: u64,
    },
    /// Are you there? The receiver answers with a [`Message::Pong`] carrying
    /// the same nonce.
    Ping {
        /// Chosen by the sender.
        nonce: u64,
    },
    /// The answer to a [`Message::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// One item of a stream of call `id`: from the listener, of the stream
    /// that answers the call ([`flags::STREAM_OUT`]), ended by the call's
    /// [`Message::Response`]; from the dialer, of the stream it sends with
    /// the call ([`flags::STREAM_IN`]), ended by [`Message::End`]. The body
    /// holds the item. Sent only while the receiver's credit lasts.
    Item {
        /// The request's id.
        id: u64,
    },
    /// The sender takes `items` more items of the stream of call `id` that
    /// flows to it (on top of the [`STREAM_WINDOW`] every stream starts
    /// with).
    Credit {
        /// The request's id.
        id: u64,
        /// How many more items the sender accepts.
        items: u32,
    },
    /// The end of the stream the dialer sends with call `id`: `Ok` after
    /// its last item, or the error its producer failed with.
    End {
        /// The request's id.
        id: u64,
        /// How the stream ended.
        #[serde(borrow)]
        status: Status<'a>,
    },
    /// The listener accepted call `id`, which asked to hear so
    /// ([`flags::ACCEPT`]): its answer stream follows. A call refused
    /// instead is answered at once with its [`Message::Response`]. The body
    /// is empty.
    Head {
        /// The request's id.
        id: u64,
    },
}

impl Message<'_> {
    /// The call a message is about, if any.
    pub(crate) fn call_id(&self) -> Option<u64> {
        match self {
            Message::Request { id, .. }
            | Message::Response { id, .. }
            | Message::Cancel { id }
            | Message::Item { id }
            | Message::Credit { id, .. }
            | Message::End { id, .. }
            | Message::Head { id } => Some(*id),
            Message::Goodbye { .. } | Message::Ping { .. } | Message::Pong { .. } => None,
        }
    }

    /// The message's name, for errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Message::Request { .. } => "a request",
            Message::Response { .. } => "a response",
            Message::Goodbye { .. } => "a goodbye",
            Message::Cancel { .. } => "a cancel",
            Message::Ping { .. } => "a ping",
            Message::Pong { .. } => "a pong",
            Message::Item { .. } => "a stream item",
            Message::Credit { .. } => "a credit",
            Message::End { .. } => "a stream end",
            Message::Head { .. } => "a stream's acceptance",
        }
    }
}

/// The credit every stream starts with, in items: the producer sends this
/// many before it needs a [`Message::Credit`].
pub(crate) const STREAM_WINDOW: u32 = 16;

/// The bits of a request's `flags`.
pub(crate) mod flags {
    /// One-way: the caller wants no answer, and the receiver sends none.
    pub const ONEWAY: u8 = 1;
    /// The caller sends a stream of [`Item`](super::Message::Item)s with
    /// the call, ended by [`End`](super::Message::End).
    pub const STREAM_IN: u8 = 2;
    /// The caller wants the answer as a stream of [`Item`](super::Message::Item)s,
    /// ended by the response.
    pub const STREAM_OUT: u8 = 4;
    /// The body starts with the call's metadata (before the arguments).
    pub const METADATA: u8 = 8;
    /// With [`STREAM_OUT`]: the caller waits to hear whether its answer
    /// stream was accepted ([`Head`](super::Message::Head)) or refused (the
    /// [`Response`](super::Message::Response), at once, before any item).
    pub const ACCEPT: u8 = 16;
    /// The caller reads the answer's metadata: the body of every
    /// [`Response`](super::Message::Response) to the call the listener
    /// sends from a handler starts with a metadata block.
    pub const REPLY_METADATA: u8 = 32;
    /// Every bit this version knows; a request with others is refused.
    pub const KNOWN: u8 = ONEWAY | STREAM_IN | STREAM_OUT | METADATA | ACCEPT | REPLY_METADATA;
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status<'a> {
    /// The handler ran and returned; the body holds its value.
    Ok,
    /// The call failed before or while running; see [`code`].
    Error {
        /// One of the [`code`] constants (or a newer one).
        code: u32,
        /// A message for people.
        message: &'a str,
    },
}

/// Error codes on the wire. Numbers are stable; new ones may be added.
pub(crate) mod code {
    /// No service of that name.
    pub const UNKNOWN_SERVICE: u32 = 1;
    /// The service has no method of that name.
    pub const UNKNOWN_METHOD: u32 = 2;
    /// The arguments did not decode.
    pub const BAD_REQUEST: u32 = 3;
    /// The handler panicked.
    pub const PANICKED: u32 = 4;
    /// The answer would exceed the caller's frame limit.
    pub const FRAME_TOO_LARGE: u32 = 5;
    /// The server is shutting down.
    pub const SHUTTING_DOWN: u32 = 6;
    /// The greeting's version is not supported.
    pub const VERSION_MISMATCH: u32 = 7;
    /// A frame did not decode or made no sense.
    pub const PROTOCOL: u32 = 8;
    /// The handler's value could not be encoded.
    pub const ENCODE: u32 = 9;
    /// The server is at its connection limit.
    pub const SERVER_BUSY: u32 = 10;
    /// The connection was idle for longer than the server allows.
    pub const IDLE_TIMEOUT: u32 = 11;
    /// The call did not say who makes it, or not convincingly.
    pub const UNAUTHENTICATED: u32 = 12;
    /// The caller may not make this call.
    pub const PERMISSION_DENIED: u32 = 13;
    /// The request's id is that of a call of the caller's still in flight
    /// on the connection; the request was not run.
    pub const DUPLICATE_ID: u32 = 14;
    /// No server takes calls for the service (a broker link reports it
    /// when nothing subscribes to the service's subject); the call did not
    /// run.
    pub const UNAVAILABLE: u32 = 15;
    /// The server that took the call went away before answering (a broker
    /// link reports it): the call may have run.
    pub const LOST: u32 = 16;
}
