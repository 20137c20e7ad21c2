//! [`Status`]: how a handler fails a call, without an error type of its own.

use std::fmt;

use bytes::Bytes;

/// The first wire code of application statuses: a [`Status`] with code `n`
/// travels as `APPLICATION_CODES + n`, above every code the runtime uses.
pub(crate) const APPLICATION_CODES: u32 = 1000;

/// What a handler answers when a call fails: a [`Code`], a message for
/// people, and optional binary details for programs.
///
/// A method declared `-> Result<T, Status>` answers `Ok(value)` or
/// `Err(status)`; its generated client method returns `Result<T, RpcError>`,
/// with the status as [`RpcError::Status`](crate::RpcError::Status): one `?` for the caller, not two.
/// (A method with an error type of its own, `-> Result<T, MyError>`, keeps
/// it: the client gets `Result<Result<T, MyError>, RpcError>`.) An answer
/// stream can end with a status too: an `Err(RpcError::Status(..))` item.
///
/// ```
/// use rpc_runtime::{rpc_service, Status};
///
/// #[rpc_service]
/// pub trait Shelf {
///     /// The title of the book at `position`.
///     async fn title(&self, position: u32) -> Result<String, Status>;
/// }
///
/// struct Books(Vec<String>);
///
/// impl Shelf for Books {
///     async fn title(&self, position: u32) -> Result<String, Status> {
///         let index = usize::try_from(position).map_err(|_| Status::invalid_argument("too far"))?;
///         self.0
///             .get(index)
///             .cloned()
///             .ok_or_else(|| Status::not_found(format!("no book at {position}")))
///     }
/// }
/// ```
///
/// A status converts from an [`RpcError`](crate::RpcError), so a handler can pass on the
/// failure of a call it made with `?`; see [`From<RpcError>`](#impl-From<RpcError>-for-Status).
///
/// On the wire (`docs/PROTOCOL.md`, section 6), code `n` travels as
/// `1000 + n`, the message as the response's message and the details as its
/// body.
#[derive(Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    details: Bytes,
}

/// An application status code: gRPC's canonical codes, with the same
/// numbers, or any code of the application's own (up to [`Code::MAX`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(u32);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $n:literal, $ctor:ident;)*) => {
        impl Code {
            $($(#[$doc])* pub const $name: Code = Code($n);)*

            pub(crate) fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($n => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }

        impl Status {
            $(
                #[doc = concat!("A status with code [`Code::", stringify!($name), "`].")]
                #[must_use]
                pub fn $ctor(message: impl Into<String>) -> Status {
                    Status::new(Code::$name, message)
                }
            )*
        }
    };
}

codes! {
    /// The operation was cancelled, typically by the caller.
    CANCELLED = 1, cancelled;
    /// An error of no other kind.
    UNKNOWN = 2, unknown;
    /// The caller sent an argument that is not valid, whatever the state.
    INVALID_ARGUMENT = 3, invalid_argument;
    /// The operation could not finish in time.
    DEADLINE_EXCEEDED = 4, deadline_exceeded;
    /// Something the call names does not exist.
    NOT_FOUND = 5, not_found;
    /// Something the call would create exists already.
    ALREADY_EXISTS = 6, already_exists;
    /// The caller may not do this.
    PERMISSION_DENIED = 7, permission_denied;
    /// A quota or a resource ran out.
    RESOURCE_EXHAUSTED = 8, resource_exhausted;
    /// The state does not allow the operation (do not retry until it changes).
    FAILED_PRECONDITION = 9, failed_precondition;
    /// The operation was aborted, typically by a concurrency conflict.
    ABORTED = 10, aborted;
    /// An argument is past the valid range.
    OUT_OF_RANGE = 11, out_of_range;
    /// The operation is not implemented or not supported.
    UNIMPLEMENTED = 12, unimplemented;
    /// An invariant the service relies on is broken.
    INTERNAL = 13, internal;
    /// The service is unavailable for now (retrying may help).
    UNAVAILABLE = 14, unavailable;
    /// Data was lost or corrupted.
    DATA_LOSS = 15, data_loss;
    /// The caller's credentials are missing or not valid.
    UNAUTHENTICATED = 16, unauthenticated;
}

impl Code {
    /// The largest application code: the wire code `1000 + code` must fit
    /// in a `u32`.
    pub const MAX: u32 = u32::MAX - APPLICATION_CODES;

    /// A code of the application's own; codes above [`Code::MAX`] become
    /// `Code::MAX`. Codes 1–16 are gRPC's (the constants above): pick
    /// others for meanings of your own.
    #[must_use]
    pub const fn new(code: u32) -> Code {
        if code > Code::MAX {
            Code(Code::MAX)
        } else {
            Code(code)
        }
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The code on the wire.
    pub(crate) fn wire(self) -> u32 {
        APPLICATION_CODES + self.0
    }

    /// The application code a wire code carries, if it is one.
    pub(crate) fn from_wire(code: u32) -> Option<Code> {
        code.checked_sub(APPLICATION_CODES).map(Code)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "code {}", self.0),
        }
    }
}

impl Status {
    /// A status with `code` and `message`, and no details.
    #[must_use]
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: Bytes::new(),
        }
    }

    /// This status with binary `details` (an encoded error value, say), for
    /// the caller's program to read. They travel with the message, within
    /// the caller's frame limit: details that do not fit are dropped.
    #[must_use]
    pub fn with_details(mut self, details: impl Into<Bytes>) -> Status {
        self.details = details.into();
        self
    }

    /// A status as received: code, message and details from the wire.
    pub(crate) fn received(code: Code, message: String, details: Bytes) -> Status {
        Status {
            code,
            message,
            details,
        }
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details (empty when there are none).
    #[must_use]
    pub fn details(&self) -> &Bytes {
        &self.details
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Status")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("details", &self.details.len())
            .finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}
