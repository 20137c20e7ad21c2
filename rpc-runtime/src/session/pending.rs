//! The table of calls waiting for their answers: registration, reply
//! slots, deadlines swept without a timer per call, and the end of the
//! connection.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::wire::frame::STREAM_WINDOW;

use super::flow::{add_credit, initial_credit};
use super::id_hash::IdHasher;
use super::reply::{Reply, StreamEvent};
use super::Connection;

/// The part of the connection the reader task shares with callers.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
}

pub(super) struct State {
    pub(super) pending: Calls,
    /// Set once, when the connection ends; later calls fail with it.
    pub(super) closed: Option<RpcError>,
    /// When the reader next looks for calls whose deadline has passed. A
    /// call due at or after it needs no timer of its own: the reader fails
    /// it in time (see [`Shared::expire`]).
    pub(super) next_sweep: Instant,
}

/// The calls waiting, by id.
pub(super) type Calls = HashMap<u64, Waiting, BuildHasherDefault<IdHasher>>;

/// A call waiting for its answer.
pub(super) struct Waiting {
    pub(super) to: Waiter,
    pub(super) deadline: Instant,
    /// For a call that sends a stream: its producer's credit and stop.
    pub(super) sending: Option<StopOnDrop>,
}

/// However a call leaves the table, the stream it sends (if any) stops.
pub(super) struct StopOnDrop(Sending);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.cancel();
    }
}

/// What the reader shares with the task that sends a call's stream.
#[derive(Clone)]
pub(super) struct Sending {
    /// Items the server takes; [`Message::Credit`] adds to it.
    pub(super) credit: Arc<tokio::sync::Semaphore>,
    /// Stops the producer: the call ended, or the server wants no more.
    pub(super) stop: CancellationToken,
}

impl Sending {
    pub(super) fn new() -> Self {
        Sending {
            credit: Arc::new(initial_credit()),
            stop: CancellationToken::new(),
        }
    }
}

/// Where a call's answer goes.
pub(super) enum Waiter {
    /// A call that answers with one value: its future takes the answer
    /// from here (the table's entry is its reply slot, reused from call
    /// to call, so a call costs no channel of its own).
    Call(Slot),
    /// A streaming call's [`RemoteStream`]: every item, then the end.
    Stream {
        events: mpsc::UnboundedSender<StreamEvent>,
        /// Items the server may still send; the stream's consumer adds to it
        /// as it takes items, so `events` never holds more than the window.
        credit: u32,
    },
}

/// A call's reply slot.
pub(super) enum Slot {
    /// No answer yet; the caller's future waits to be woken.
    Waiting(Option<Waker>),
    /// The answer, for the caller's future to take.
    Done(Reply),
}

impl Waiter {
    /// Hands over the end of a call removed from the table; the receiver
    /// may be gone, which is fine.
    pub(super) fn finish(self, reply: Reply) {
        match self {
            Waiter::Call(mut slot) => {
                if let Some(waker) = slot.fill(reply) {
                    waker.wake();
                }
            }
            Waiter::Stream { events, .. } => drop(events.send(StreamEvent::End(reply))),
        }
    }

    /// Whether the call still waits for its end.
    fn is_waiting(&self) -> bool {
        !matches!(self, Waiter::Call(Slot::Done(_)))
    }
}

impl Slot {
    /// Puts the answer in the slot (if it has none yet); returns whom to
    /// wake.
    fn fill(&mut self, reply: Reply) -> Option<Waker> {
        match std::mem::replace(self, Slot::Done(reply)) {
            Slot::Waiting(waker) => waker,
            done @ Slot::Done(_) => {
                *self = done;
                None
            }
        }
    }
}

impl Waiting {
    /// Ends the call with `reply`: a call that answers with one value
    /// keeps its entry (its future takes the answer from it) and its
    /// waker is returned; any other is removed from `pending` and told.
    fn end(pending: &mut Calls, id: u64, reply: Reply) -> Option<Waker> {
        match pending.get_mut(&id) {
            Some(Waiting {
                to: Waiter::Call(slot),
                sending,
                ..
            }) => {
                // The stream the call sends, if any, stops with it.
                *sending = None;
                slot.fill(reply)
            }
            Some(_) => {
                if let Some(waiting) = pending.remove(&id) {
                    waiting.to.finish(reply);
                }
                None
            }
            None => None,
        }
    }
}

/// What became of an item the server sent.
pub(super) enum ItemOutcome {
    Delivered,
    /// For a call that is no longer waiting.
    Nobody,
    /// Beyond the call's credit, or for a call that is not a stream: the
    /// call has been failed, and the server must be told to stop it.
    Violation,
}

/// Ends call `id` with `reply` (see [`Waiting::end`]), and wakes its
/// caller once the table is unlocked.
fn end_and_wake(mut state: MutexGuard<'_, State>, id: u64, reply: Reply) {
    let waker = Waiting::end(&mut state.pending, id, reply);
    drop(state);
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl Shared {
    pub(super) fn new(next_sweep: Instant) -> Self {
        Shared {
            state: Mutex::new(State {
                pending: Calls::default(),
                closed: None,
                next_sweep,
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a call to the table. The flag says whether the reader's sweeps
    /// will fail it when `deadline` passes; if not (its deadline is sooner
    /// than the next sweep), the caller must keep time itself.
    pub(super) fn register(&self, id: u64, deadline: Instant) -> Result<bool, RpcError> {
        self.register_sending(id, deadline, None)
    }

    /// [`register`](Self::register) for a call that sends a stream too.
    pub(super) fn register_sending(
        &self,
        id: u64,
        deadline: Instant,
        sending: Option<Sending>,
    ) -> Result<bool, RpcError> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        state.pending.insert(
            id,
            Waiting {
                to: Waiter::Call(Slot::Waiting(None)),
                deadline,
                sending: sending.map(StopOnDrop),
            },
        );
        Ok(deadline >= state.next_sweep)
    }

    /// The answer to call `id` (registered with
    /// [`register`](Self::register)), once there is one; the call then
    /// leaves the table.
    pub(super) fn poll_reply(&self, id: u64, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut state = self.lock();
        match state.pending.get_mut(&id) {
            Some(Waiting {
                to: Waiter::Call(Slot::Waiting(waker)),
                ..
            }) => {
                match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Some(Waiting {
                to: Waiter::Call(Slot::Done(_)),
                ..
            }) => match state.pending.remove(&id) {
                Some(Waiting {
                    to: Waiter::Call(Slot::Done(reply)),
                    ..
                }) => Poll::Ready(reply),
                _ => Poll::Ready(Reply::Failed(RpcError::connection_lost(
                    "the call's answer was lost",
                ))),
            },
            // Not a call of this kind: the connection must have ended.
            _ => Poll::Ready(Reply::Failed(state.closed.clone().unwrap_or_else(|| {
                RpcError::connection_lost("the connection is closed")
            }))),
        }
    }

    /// [`register`](Self::register) for a streaming call.
    pub(super) fn register_stream(
        &self,
        id: u64,
        deadline: Instant,
        sending: Option<Sending>,
    ) -> Result<(mpsc::UnboundedReceiver<StreamEvent>, bool), RpcError> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let (events, rx) = mpsc::unbounded_channel();
        state.pending.insert(
            id,
            Waiting {
                to: Waiter::Stream {
                    events,
                    credit: STREAM_WINDOW,
                },
                deadline,
                sending: sending.map(StopOnDrop),
            },
        );
        Ok((rx, deadline >= state.next_sweep))
    }

    /// Delivers one item of call `id`'s answer stream.
    pub(super) fn item(&self, id: u64, body: Bytes) -> ItemOutcome {
        let mut state = self.lock();
        let Some(waiting) = state.pending.get_mut(&id).filter(|w| w.to.is_waiting()) else {
            return ItemOutcome::Nobody;
        };
        let message = match &mut waiting.to {
            Waiter::Stream { events, credit } if *credit > 0 => {
                *credit -= 1;
                // The consumer may be gone; its drop cancels the call.
                drop(events.send(StreamEvent::Item(body)));
                return ItemOutcome::Delivered;
            }
            Waiter::Stream { .. } => "the server sent more stream items than it had credit for",
            Waiter::Call(_) => "the server answered a call with a stream item, but the call expects one value (do both sides use the same trait?)",
        };
        let error = Reply::Failed(RpcError::Protocol {
            message: message.to_owned(),
        });
        end_and_wake(state, id, error);
        ItemOutcome::Violation
    }

    /// Call `id`'s answer stream was accepted. For a call that expects one
    /// value, a protocol error: the call fails, and so does the connection.
    pub(super) fn head(&self, id: u64) -> Result<(), RpcError> {
        let state = self.lock();
        match state
            .pending
            .get(&id)
            .map(|waiting| &waiting.to)
            .filter(|to| to.is_waiting())
        {
            Some(Waiter::Stream { events, .. }) => {
                drop(events.send(StreamEvent::Head));
                Ok(())
            }
            Some(Waiter::Call(_)) => {
                let error = RpcError::Protocol {
                    message: "the server accepted a stream for a call that expects one value (do both sides use the same trait?)".to_owned(),
                };
                end_and_wake(state, id, Reply::Failed(error.clone()));
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// The server takes `items` more items of the stream call `id` sends.
    pub(super) fn credit(&self, id: u64, items: u32) {
        if let Some(StopOnDrop(sending)) = self
            .lock()
            .pending
            .get(&id)
            .and_then(|w| w.sending.as_ref())
        {
            add_credit(&sending.credit, items);
        }
    }

    /// The server wants no more of the stream call `id` sends.
    pub(super) fn stop_sending(&self, id: u64) {
        if let Some(StopOnDrop(sending)) = self
            .lock()
            .pending
            .get(&id)
            .and_then(|w| w.sending.as_ref())
        {
            sending.stop.cancel();
        }
    }

    /// Lets the server send `items` more items of call `id`'s stream.
    pub(super) fn grant(&self, id: u64, items: u32) {
        if let Some(Waiting {
            to: Waiter::Stream { credit, .. },
            ..
        }) = self.lock().pending.get_mut(&id)
        {
            *credit = credit.saturating_add(items);
        }
    }

    pub(super) fn complete(&self, id: u64, reply: Reply) {
        let state = self.lock();
        if !state.pending.get(&id).is_some_and(|w| w.to.is_waiting()) {
            tracing::debug!(id, "response for a call that is no longer waiting");
            return;
        }
        end_and_wake(state, id, reply);
    }

    /// Removes a call's slot; true if it was still waiting.
    pub(super) fn forget(&self, id: u64) -> bool {
        self.lock()
            .pending
            .remove(&id)
            .is_some_and(|waiting| waiting.to.is_waiting())
    }

    pub(super) fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Ends the connection: every pending call and every later call fails
    /// with `reason`. `not_run`: the peer promised that calls it did not
    /// answer did not run.
    pub(super) fn close(&self, reason: RpcError, not_run: bool) {
        let mut wake = Vec::new();
        let mut state = self.lock();
        if state.closed.is_none() {
            state.closed = Some(reason.clone());
        }
        let ids: Vec<u64> = state
            .pending
            .iter()
            .filter(|(_, waiting)| waiting.to.is_waiting())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let reply = if not_run {
                Reply::NotRun(reason.clone())
            } else {
                Reply::Failed(reason.clone())
            };
            wake.extend(Waiting::end(&mut state.pending, id, reply));
        }
        drop(state);
        for waker in wake {
            waker.wake();
        }
    }

    /// Fails every call whose deadline has passed, pushing the ids of those
    /// to `expired`, and returns when to look again: at the soonest
    /// deadline still pending, and no later than `idle` from now.
    ///
    /// This keeps deadlines without a timer per call. A call registered
    /// later whose deadline is no sooner than the returned instant is failed
    /// by a later sweep; one due sooner keeps its own timer (see
    /// [`register`](Self::register)). With one default timeout for every
    /// call, every call is covered.
    pub(super) fn expire(&self, now: Instant, idle: Duration, expired: &mut Vec<u64>) -> Instant {
        let mut state = self.lock();
        let mut soonest: Option<Instant> = None;
        let first = expired.len();
        for (&id, waiting) in &state.pending {
            if !waiting.to.is_waiting() {
                // Answered; its caller has yet to take the answer.
            } else if waiting.deadline <= now {
                expired.push(id);
            } else {
                soonest = Some(soonest.map_or(waiting.deadline, |s| s.min(waiting.deadline)));
            }
        }
        let mut wake = Vec::new();
        for &id in expired.get(first..).unwrap_or_default() {
            wake.extend(Waiting::end(&mut state.pending, id, Reply::Expired));
        }
        // No later than `idle` from now, even when every pending call is
        // due later (a stream without a deadline, say): otherwise every
        // call made meanwhile would be due before the next sweep, and keep
        // a timer of its own.
        let idle_next = now
            .checked_add(idle)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        let next = soonest.map_or(idle_next, |soonest| soonest.min(idle_next));
        state.next_sweep = next;
        drop(state);
        for waker in wake {
            waker.wake();
        }
        next
    }

    pub(super) fn closed_reason(&self) -> RpcError {
        self.lock()
            .closed
            .clone()
            .unwrap_or_else(|| RpcError::connection_lost("the connection is closed"))
    }
}

/// Removes a call's slot if its future is dropped before the answer came,
/// and tells the server to stop the call.
pub(super) struct PendingSlot<'a> {
    pub(super) connection: &'a Connection,
    pub(super) id: u64,
    pub(super) armed: bool,
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.connection.abandon(self.id);
        }
    }
}

/// `n` register-then-complete rounds on a pending-call table; for the
/// micro-benchmarks.
pub(crate) fn bench_pending(n: u64) -> usize {
    let now = Instant::now();
    let shared = Shared::new(now);
    let mut answered = 0;
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    for id in 0..n {
        if shared.register(id, now).is_ok() {
            shared.complete(id, Reply::Ok(Bytes::new()));
            if matches!(shared.poll_reply(id, &mut cx), Poll::Ready(Reply::Ok(_))) {
                answered += 1;
            }
        }
    }
    answered
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::time::Instant;

    use super::{Reply, Shared};

    /// The answer to call `id`, if it has one.
    fn answer(shared: &Shared, id: u64) -> Option<Reply> {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match shared.poll_reply(id, &mut cx) {
            Poll::Ready(reply) => Some(reply),
            Poll::Pending => None,
        }
    }

    #[test]
    fn sweeps_fail_calls_past_their_deadline_and_cover_later_ones() {
        let start = Instant::now();
        let shared = Shared::new(start);
        let ms = Duration::from_millis;
        let covered = shared.register(1, start + ms(10)).unwrap();
        assert!(covered, "due after the next sweep");
        shared.register(2, start + ms(50)).unwrap();
        let mut expired = Vec::new();

        // Nothing is due yet: look again at the soonest deadline.
        assert_eq!(shared.expire(start, ms(500), &mut expired), start + ms(10));
        assert!(expired.is_empty());
        // A call due before that sweep must keep its own time.
        let covered = shared.register(3, start + ms(5)).unwrap();
        assert!(!covered);
        shared.complete(3, Reply::Ok(Bytes::new()));
        assert!(matches!(answer(&shared, 3), Some(Reply::Ok(_))));

        assert_eq!(
            shared.expire(start + ms(20), ms(500), &mut expired),
            start + ms(50)
        );
        assert_eq!(expired, [1]);
        assert!(matches!(answer(&shared, 1), Some(Reply::Expired)));
        assert!(answer(&shared, 2).is_none(), "not due yet");

        // Empty: the next sweep is an idle interval away.
        shared.complete(2, Reply::Ok(Bytes::new()));
        assert_eq!(
            shared.expire(start + ms(60), ms(500), &mut expired),
            start + ms(560)
        );
        assert_eq!(expired, [1], "nothing more expired");
        assert!(matches!(answer(&shared, 2), Some(Reply::Ok(_))));
        let covered = shared.register(4, start + ms(560)).unwrap();
        assert!(covered);
    }

    #[test]
    fn a_call_without_a_deadline_does_not_put_off_the_next_sweep() {
        let start = Instant::now();
        let shared = Shared::new(start);
        let ms = Duration::from_millis;
        // A watch that may run for ever...
        shared
            .register(1, start + Duration::from_secs(86_400 * 365))
            .unwrap();
        let mut expired = Vec::new();
        // ...leaves the next sweep an idle interval away,
        assert_eq!(shared.expire(start, ms(500), &mut expired), start + ms(500));
        // so a call with the usual deadline is still covered by the sweeps.
        assert!(shared.register(2, start + ms(500)).unwrap());
    }

    #[test]
    fn a_reply_slot_holds_the_answer_until_taken_and_then_is_free() {
        let now = Instant::now();
        let shared = Shared::new(now);
        shared.register(1, now + Duration::from_secs(1)).unwrap();
        assert!(answer(&shared, 1).is_none());
        assert_eq!(shared.pending(), 1);
        shared.complete(1, Reply::Ok(Bytes::from_static(b"x")));
        // A second answer for the same call is ignored.
        shared.complete(1, Reply::Expired);
        // Answered: no cancel needed if the caller gives up now.
        assert!(matches!(answer(&shared, 1), Some(Reply::Ok(b)) if &b[..] == b"x"));
        assert_eq!(shared.pending(), 0, "taken: the slot is gone");
        assert!(!shared.forget(1));

        // A call given up before its answer needs a cancel; after it, not.
        shared.register(3, now).unwrap();
        assert!(shared.forget(3));
        shared.register(5, now).unwrap();
        shared.complete(5, Reply::Ok(Bytes::new()));
        assert!(!shared.forget(5));
    }

    #[test]
    fn closing_answers_every_waiting_call_and_fails_later_ones() {
        let now = Instant::now();
        let shared = Shared::new(now);
        shared.register(1, now).unwrap();
        shared.register(3, now).unwrap();
        shared.complete(3, Reply::Ok(Bytes::new()));
        shared.close(crate::RpcError::ShuttingDown, true);
        assert!(matches!(answer(&shared, 1), Some(Reply::NotRun(_))));
        assert!(
            matches!(answer(&shared, 3), Some(Reply::Ok(_))),
            "answered before"
        );
        assert!(shared.register(5, now).is_err());
        assert!(matches!(answer(&shared, 7), Some(Reply::Failed(_))));
    }
}
