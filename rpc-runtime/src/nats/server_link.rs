//! One caller's calls to this server, as a link: the frames a caller
//! (one inbox) sends arrive from the server's demultiplexer; the frames
//! the session writes go to that caller's inbox.
//!
//! A NATS link has no greeting of its own: the link answers the session's
//! greeting itself, with the NATS server's `max_payload` as the caller's
//! frame limit and no callbacks (a caller over NATS serves none).

use std::collections::{HashMap, HashSet};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, Notify};

use crate::link::greeting::hello;
use crate::link::{FrameRead, Link};
use crate::wire::codec;
use crate::wire::frame::{code, flags, Message, MAGIC, ROLE_DIALER};

use super::publish::{publish_error, Publisher};
use super::subjects::reply_to;

/// Where a session's frames go: the caller's inbox, each call's messages
/// on the subject `<inbox>.<id>`, from this server's instance subject.
#[derive(Clone)]
pub(super) struct Outbox {
    client: Client,
    /// `None`: a caller that gave no reply subject (one-way calls of a
    /// plain NATS client); nothing goes back.
    inbox: Option<Arc<str>>,
    /// This server's instance subject: the reply subject of everything it
    /// sends, so the caller knows where a call's later messages go.
    from: Subject,
    /// Calls whose reply subject is not `<inbox>.<id>` (a plain NATS
    /// client's request), and where their answers go.
    replies: Arc<Replies>,
    /// Calls taken and not yet answered at all.
    claims: Arc<Claims>,
}

/// How long a call may go without a message to its caller before the
/// server claims it (a credit of no items): the caller then knows which
/// server has it, and asks that one whether it is still there.
pub(super) const CLAIM_AFTER: Duration = Duration::from_millis(50);

/// The calls of one caller that have had no message back yet, in two
/// generations: a call still here after a whole generation is claimed.
#[derive(Default)]
pub(super) struct Claims {
    calls: Mutex<Generations>,
    /// Told when the first call comes after a quiet spell.
    arrived: Arc<Notify>,
}

#[derive(Default)]
struct Generations {
    new: HashSet<u64>,
    old: HashSet<u64>,
}

impl Claims {
    /// Call `id` arrived.
    pub(super) fn arrived(&self, id: u64) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let quiet = calls.new.is_empty() && calls.old.is_empty();
        calls.new.insert(id);
        drop(calls);
        if quiet {
            self.arrived.notify_one();
        }
    }

    /// A message about call `id` went to the caller.
    fn answered(&self, id: u64) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if !calls.new.remove(&id) {
            calls.old.remove(&id);
        }
    }

    /// The calls that have waited a whole generation; the rest age.
    fn due(&self) -> (Vec<u64>, bool) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let Generations { new, old } = &mut *calls;
        let due: Vec<u64> = old.drain().collect();
        std::mem::swap(new, old);
        (due, old.is_empty())
    }
}

/// Claims the calls of `outbox`'s caller that wait unanswered, until the
/// link is gone.
async fn claim_loop(
    outbox: std::sync::Weak<Claims>,
    client: Client,
    from: Subject,
    inbox: Arc<str>,
    replies: Arc<Replies>,
) {
    loop {
        let Some(claims) = outbox.upgrade() else {
            return;
        };
        let (due, quiet) = claims.due();
        for id in due {
            let subject = replies
                .get(id, false)
                .unwrap_or_else(|| Subject::from(reply_to(&inbox, id)));
            let claim = codec::encode_control(&Message::Credit { id, items: 0 });
            if client
                .publish_with_reply(subject, from.clone(), claim)
                .await
                .is_err()
            {
                return;
            }
        }
        if quiet {
            let arrived = Arc::clone(&claims.arrived);
            drop(claims);
            // Sleeps until a call comes, and looks whether the link is
            // still there once a second.
            let _ = tokio::time::timeout(Duration::from_secs(1), arrived.notified()).await;
        } else {
            drop(claims);
        }
        tokio::time::sleep(CLAIM_AFTER).await;
    }
}

/// Reply subjects of calls that gave one of their own.
#[derive(Default)]
pub(super) struct Replies {
    any: AtomicBool,
    subjects: Mutex<HashMap<u64, Subject>>,
}

impl Replies {
    /// Call `id` is answered on `subject`.
    pub(super) fn insert(&self, id: u64, subject: Subject) {
        self.subjects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, subject);
        self.any.store(true, Ordering::Release);
    }

    /// Where call `id` is answered, if it said; forgotten with its last
    /// message.
    fn get(&self, id: u64, last: bool) -> Option<Subject> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut subjects = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        if last {
            subjects.remove(&id)
        } else {
            subjects.get(&id).cloned()
        }
    }
}

impl Outbox {
    pub(super) fn new(client: Client, inbox: Option<Arc<str>>, from: Subject) -> Self {
        Outbox {
            client,
            inbox,
            from,
            replies: Arc::default(),
            claims: Arc::default(),
        }
    }

    /// The calls taken and not yet answered.
    pub(super) fn claims(&self) -> &Arc<Claims> {
        &self.claims
    }

    /// Where the calls of this caller that named their own reply subject
    /// are answered.
    pub(super) fn replies(&self) -> &Arc<Replies> {
        &self.replies
    }

    /// Publishes one frame of the session to the caller.
    async fn send(&self, frame: Bytes) -> io::Result<()> {
        let Some(inbox) = &self.inbox else {
            return Ok(());
        };
        let (id, last) = match codec::decode_message(&frame) {
            // Over NATS an idle session just ends: the caller holds nothing
            // on it.
            Ok((
                Message::Goodbye {
                    code: code::IDLE_TIMEOUT,
                    ..
                },
                _,
            )) => return Ok(()),
            Ok((Message::Response { id, .. }, _)) => (id, true),
            Ok((message, _)) => (message.call_id().unwrap_or(0), false),
            Err(_) => (0, false),
        };
        self.claims.answered(id);
        let subject = match self.replies.get(id, last) {
            Some(subject) => subject,
            None => Subject::from(reply_to(inbox, id)),
        };
        self.client
            .publish_with_reply(subject, self.from.clone(), frame)
            .await
            .map_err(publish_error)
    }
}

/// One caller's link to this server.
pub(super) struct ServerLink {
    frames: mpsc::Receiver<Bytes>,
    outbox: Outbox,
    /// The caller's frame limit: what the NATS server carries.
    max_payload: usize,
    greeted: bool,
}

impl ServerLink {
    pub(super) fn new(frames: mpsc::Receiver<Bytes>, outbox: Outbox, max_payload: usize) -> Self {
        ServerLink {
            frames,
            outbox,
            max_payload,
            greeted: false,
        }
    }

    /// Answers every call still queued on the link with `code` (the
    /// server refused the link: it is at its connection limit, or
    /// shutting down): they did not run.
    async fn refuse_queued(&mut self, code: u32, message: &str) -> io::Result<()> {
        while let Ok(frame) = self.frames.try_recv() {
            if let Ok((Message::Request { id, flags: f, .. }, _)) = codec::decode_message(&frame) {
                if f & flags::ONEWAY == 0 {
                    let refusal = codec::encode_refusal(id, code, message, &[], self.max_payload);
                    self.outbox.send(refusal).await?;
                }
            }
        }
        Ok(())
    }
}

impl Link for ServerLink {
    type Read = ServerReader;
    type Write = Publisher;

    async fn send(&mut self, frame: Bytes) -> io::Result<()> {
        if frame.starts_with(&MAGIC) {
            // The server's greeting: the caller needs none.
            return Ok(());
        }
        match codec::decode_message(&frame) {
            Ok((Message::Goodbye { code, message }, _)) => {
                let message = message.to_owned();
                self.refuse_queued(code, &message).await
            }
            _ => self.outbox.send(frame).await,
        }
    }

    async fn recv(&mut self, _limit: usize) -> io::Result<Option<Bytes>> {
        if !self.greeted {
            self.greeted = true;
            return Ok(Some(hello(ROLE_DIALER, self.max_payload, 0)));
        }
        Ok(self.frames.recv().await)
    }

    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn split(self, max_in: usize, _max_out: usize) -> (ServerReader, Publisher) {
        let outbox = self.outbox;
        if let Some(inbox) = &outbox.inbox {
            tokio::spawn(claim_loop(
                Arc::downgrade(&outbox.claims),
                outbox.client.clone(),
                outbox.from.clone(),
                Arc::clone(inbox),
                Arc::clone(&outbox.replies),
            ));
        }
        let writer = Publisher::new(outbox, |outbox: Outbox, frame| async move {
            outbox.send(frame).await?;
            Ok(outbox)
        });
        (
            ServerReader {
                frames: self.frames,
                max_in,
            },
            writer,
        )
    }
}

/// The reading half: the caller's frames, as the demultiplexer hands
/// them over.
pub(super) struct ServerReader {
    frames: mpsc::Receiver<Bytes>,
    max_in: usize,
}

impl Stream for ServerReader {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let max_in = self.max_in;
        self.frames.poll_recv(cx).map(|frame| {
            frame.map(|frame| {
                if frame.len() > max_in {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a message of {} bytes", frame.len()),
                    ))
                } else {
                    Ok(frame)
                }
            })
        })
    }
}

impl FrameRead for ServerReader {}
