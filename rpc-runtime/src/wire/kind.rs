//! What a call sends and what it expects back: the shape a request's
//! frames take, and the `kind` of a method in its description.

use serde::{Deserialize, Serialize};

/// What a call sends and what it expects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallKind {
    /// Arguments in, one value out.
    Unary,
    /// Arguments in, nothing out: the caller learns only that it was sent.
    OneWay,
    /// Arguments in, a stream of values out.
    ServerStream,
    /// Arguments and a stream of values in, one value out.
    ClientStream,
    /// Arguments and a stream of values in, a stream of values out.
    BothWays,
}

impl CallKind {
    /// Whether the caller sends a stream with the arguments.
    #[must_use]
    pub fn sends_stream(self) -> bool {
        matches!(self, CallKind::ClientStream | CallKind::BothWays)
    }

    /// Whether the answer is a stream.
    #[must_use]
    pub fn answers_stream(self) -> bool {
        matches!(self, CallKind::ServerStream | CallKind::BothWays)
    }
}
