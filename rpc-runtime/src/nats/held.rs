//! The calls a server holds for one caller: claimed when they run long
//! without a word to the caller, timed for the server's statistics.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_nats::Subject;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::wire::frame::Status;

use super::micro::Stats;

/// How long a call may go without a message to its caller before the
/// server claims it (a credit of no items): the caller then knows which
/// server has it, and asks that one whether it is still there.
pub(super) const CLAIM_AFTER: Duration = Duration::from_millis(50);

/// One call held.
struct Call {
    method: u32,
    arrived: Instant,
    /// When the caller stops waiting: the server then stops the call and
    /// sends nothing, so it is forgotten here too.
    expires: Option<Instant>,
    /// Whether the caller knows this server has it (a message went).
    known: bool,
    /// Where its messages go, if not to `<inbox>.<id>` (a plain NATS
    /// client's request names a reply subject of its own).
    reply: Option<Subject>,
}

/// What is known of a call when it arrives.
pub(super) struct Arrival {
    pub method: u32,
    /// The time its caller still waits.
    pub timeout: Option<Duration>,
    /// Whether the caller was told at once that this server has it.
    pub known: bool,
    /// Its own reply subject, if not `<inbox>.<id>`.
    pub reply: Option<Subject>,
}

/// The calls one caller's session holds.
pub(super) struct Held {
    calls: Mutex<HashMap<u64, Call>>,
    /// Told when a call comes after a quiet spell.
    arrived: Arc<Notify>,
    stats: Arc<Stats>,
}

impl Held {
    pub(super) fn new(stats: Arc<Stats>) -> Self {
        Held {
            calls: Mutex::new(HashMap::new()),
            arrived: Arc::new(Notify::new()),
            stats,
        }
    }

    /// Call `id` arrived (one that is answered).
    pub(super) fn arrived(&self, id: u64, arrival: Arrival) {
        let now = Instant::now();
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let quiet = calls.is_empty();
        calls.insert(
            id,
            Call {
                method: arrival.method,
                arrived: now,
                expires: arrival.timeout.and_then(|timeout| now.checked_add(timeout)),
                known: arrival.known,
                reply: arrival.reply,
            },
        );
        drop(calls);
        if quiet {
            self.arrived.notify_one();
        }
    }

    /// A message about call `id` goes to the caller: its last, with the
    /// call's `status`, or another. Where it goes, if the call named a
    /// reply subject of its own.
    pub(super) fn answered(&self, id: u64, status: Option<&Status<'_>>) -> Option<Subject> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        match status {
            Some(status) => {
                let call = calls.remove(&id)?;
                drop(calls);
                let error = match status {
                    Status::Ok => None,
                    Status::Error { message, .. } => Some(*message),
                };
                self.stats
                    .finished(call.method, call.arrived.elapsed(), error);
                call.reply
            }
            None => {
                let call = calls.get_mut(&id)?;
                call.known = true;
                call.reply.clone()
            }
        }
    }

    /// Call `id` was cancelled: nothing will be sent about it.
    pub(super) fn cancelled(&self, id: u64) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// The calls held since before `before` that the caller does not know
    /// are here; they are known from now on. Calls past their deadline by
    /// then are forgotten.
    fn due(&self, now: Instant, before: Instant) -> (Vec<(u64, Option<Subject>)>, bool) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.retain(|_, call| call.expires.is_none_or(|expires| expires > now));
        let mut due = Vec::new();
        for (id, call) in calls.iter_mut() {
            if !call.known && call.arrived <= before {
                call.known = true;
                due.push((*id, call.reply.clone()));
            }
        }
        (due, calls.is_empty())
    }
}

/// Claims, with `claim` (a call's id and its own reply subject, if any),
/// the calls of a caller's session that wait unanswered for
/// [`CLAIM_AFTER`], until the session is gone.
pub(super) async fn claim_loop<F, Fut>(held: Weak<Held>, claim: F)
where
    F: Fn(u64, Option<Subject>) -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        let Some(calls) = held.upgrade() else { return };
        let now = Instant::now();
        let (due, quiet) = calls.due(now, now.checked_sub(CLAIM_AFTER).unwrap_or(now));
        let arrived = Arc::clone(&calls.arrived);
        drop(calls);
        for (id, reply) in due {
            if !claim(id, reply).await {
                return;
            }
        }
        if quiet {
            // Sleeps until a call comes, and looks whether the session is
            // still there once a second.
            let _ = tokio::time::timeout(Duration::from_secs(1), arrived.notified()).await;
        }
        tokio::time::sleep(CLAIM_AFTER / 2).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Arrival, Held};
    use crate::nats::micro::Stats;
    use crate::nats::subjects::Subjects;
    use crate::wire::frame::Status;

    fn held() -> Held {
        let subjects = Subjects::standard();
        let methods = [(7, "a.One", "x")];
        Held::new(Arc::new(Stats::new(
            "i",
            "0.0.0",
            &subjects,
            methods.into_iter(),
            str::to_owned,
        )))
    }

    #[test]
    fn a_call_is_claimed_once_after_it_has_waited() {
        let held = held();
        let start = Instant::now();
        held.arrived(1, arrival(None, false));
        held.arrived(3, arrival(None, true));
        // Not yet waited long enough.
        assert!(held.due(start, start - Duration::from_secs(1)).0.is_empty());
        let later = start + Duration::from_secs(1);
        assert_eq!(held.due(later, later).0, vec![(1, None)]);
        // Claimed once only.
        assert!(held.due(later, later).0.is_empty());
    }

    #[test]
    fn cancelled_and_expired_calls_are_forgotten() {
        let held = held();
        let start = Instant::now();
        held.arrived(1, arrival(Some(Duration::from_millis(10)), false));
        held.arrived(3, arrival(None, false));
        held.arrived(5, arrival(None, false));
        held.cancelled(5);
        let later = start + Duration::from_secs(1);
        let (due, quiet) = held.due(later, later);
        assert_eq!(due, vec![(3, None)]);
        assert!(!quiet);
        held.answered(3, Some(&Status::Ok));
        assert!(held.due(later, later).1, "nothing is held any more");
    }

    #[test]
    fn a_call_with_its_own_reply_subject_is_answered_there_until_its_end() {
        let held = held();
        let own = async_nats::Subject::from("_INBOX.plain.xyz");
        held.arrived(
            9,
            Arrival {
                reply: Some(own.clone()),
                ..arrival(None, false)
            },
        );
        assert_eq!(held.answered(9, None), Some(own.clone()));
        assert_eq!(held.answered(9, Some(&Status::Ok)), Some(own));
        // Forgotten with its last message.
        assert_eq!(held.answered(9, Some(&Status::Ok)), None);
    }

    fn arrival(timeout: Option<Duration>, known: bool) -> Arrival {
        Arrival {
            method: 7,
            timeout,
            known,
            reply: None,
        }
    }
}
