//! How a call ended, as a bounded label: `OK`, a status code's name, or
//! `OTHER`.

use crate::error::RpcError;

/// How many outcome labels there are.
pub(crate) const OUTCOMES: usize = 18;

/// The labels, by index: `OK`, the sixteen status codes, then `OTHER` for
/// an application's own codes.
const LABELS: [&str; OUTCOMES] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
    "OTHER",
];

/// The outcome of a call that was cancelled (by its caller, or because
/// it was dropped unanswered).
pub(crate) const CANCELLED: usize = 1;

/// The outcome of a call whose deadline passed.
pub(crate) const DEADLINE_EXCEEDED: usize = 4;

/// The index of `outcome`'s label.
pub(crate) fn index(outcome: Result<(), &RpcError>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(error) => match usize::try_from(error.code().get()) {
            Ok(code @ 1..=16) => code,
            _ => OUTCOMES - 1,
        },
    }
}

/// The label at `index` (`OTHER` past the end).
pub(crate) fn label(index: usize) -> &'static str {
    LABELS.get(index).copied().unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    use super::{index, label, OUTCOMES};
    use crate::error::RpcError;
    use crate::status::{Code, Status};

    #[test]
    fn labels_follow_the_status_codes() {
        for code in 1..=16 {
            let name = Code::new(code).name().unwrap_or_default();
            let error = RpcError::Status(Status::new(Code::new(code), "x"));
            assert_eq!(label(index(Err(&error))), name);
        }
        assert_eq!(label(index(Ok(()))), "OK");
        let own = RpcError::Status(Status::new(Code::new(4711), "mine"));
        assert_eq!(index(Err(&own)), OUTCOMES - 1);
        assert_eq!(label(OUTCOMES + 3), "OTHER");
        let late = RpcError::DeadlineExceeded {
            timeout: std::time::Duration::ZERO,
        };
        assert_eq!(label(index(Err(&late))), "DEADLINE_EXCEEDED");
        assert_eq!(label(index(Err(&RpcError::ShuttingDown))), "UNAVAILABLE");
    }
}
