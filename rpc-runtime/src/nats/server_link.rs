//! One caller's calls to this server, as a link: the frames a caller
//! (one inbox) sends arrive from the server's demultiplexer; the frames
//! the session writes go to that caller's inbox.
//!
//! A NATS link has no greeting of its own: the link answers the session's
//! greeting itself, with the NATS server's `max_payload` as the caller's
//! frame limit and no callbacks (a caller over NATS serves none).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_nats::{Client, Subject};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use crate::link::negotiate::Offer;
use crate::link::{FrameRead, Link};
use crate::wire::codec;
use crate::wire::frame::{code, flags, Message, MAGIC, ROLE_DIALER};
use crate::wire::version::Extensions;

use super::held::{claim_loop, Held};
use super::micro::Stats;
use super::publish::{publish_error, Publisher};
use super::subjects::reply_to;
use super::NATS_VERSION;
use crate::telemetry::{self, Transport};

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
    /// Calls taken and not yet answered.
    held: Arc<Held>,
}

impl Outbox {
    pub(super) fn new(
        client: Client,
        inbox: Option<Arc<str>>,
        from: Subject,
        stats: Arc<Stats>,
    ) -> Self {
        Outbox {
            client,
            inbox,
            from,
            held: Arc::new(Held::new(stats)),
        }
    }

    /// The calls taken and not yet answered.
    pub(super) fn held(&self) -> &Arc<Held> {
        &self.held
    }

    /// Publishes one frame of the session to the caller.
    async fn send(&self, frame: Bytes) -> io::Result<()> {
        let Some(inbox) = &self.inbox else {
            return Ok(());
        };
        let (id, own) = match codec::decode_message(&frame) {
            // Over NATS an idle session just ends: the caller holds nothing
            // on it.
            Ok((
                Message::Goodbye {
                    code: code::IDLE_TIMEOUT,
                    ..
                },
                _,
            )) => return Ok(()),
            Ok((Message::Response { id, status }, _)) => {
                (id, self.held.answered(id, Some(&status)))
            }
            Ok((message, _)) => {
                let id = message.call_id().unwrap_or(0);
                (id, self.held.answered(id, None))
            }
            Err(_) => (0, None),
        };
        let subject = own.unwrap_or_else(|| Subject::from(reply_to(inbox, id)));
        telemetry::bytes(Transport::Nats)
            .0
            .increment(frame.len() as u64);
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
        for refusal in refusals(&mut self.frames, code, message, self.max_payload) {
            self.outbox.send(refusal).await?;
        }
        Ok(())
    }
}

/// Takes what is queued in `frames`, and answers each request in it that
/// wants an answer with `code` (within the caller's `limit`).
fn refusals(
    frames: &mut mpsc::Receiver<Bytes>,
    code: u32,
    message: &str,
    limit: usize,
) -> Vec<Bytes> {
    let mut refusals = Vec::new();
    while let Ok(frame) = frames.try_recv() {
        if let Ok((Message::Request { id, flags: f, .. }, _)) = codec::decode_message(&frame) {
            if f & flags::ONEWAY == 0 {
                refusals.push(codec::encode_refusal(id, code, message, &[], limit));
            }
        }
    }
    refusals
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
            // What a caller's greeting would say (section 10 of
            // docs/PROTOCOL.md): requests without a version header are of
            // version 3, callers serve no callbacks, and frames over NATS
            // are not compressed.
            return Ok(Some(
                Offer::new(self.max_payload, 0, Extensions::none())
                    .up_to(NATS_VERSION)
                    .greeting(ROLE_DIALER),
            ));
        }
        Ok(self.frames.recv().await)
    }

    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn split(self, max_in: usize, _max_out: usize) -> (ServerReader, Publisher) {
        let outbox = self.outbox;
        let reader_outbox = outbox.clone();
        if let Some(inbox) = &outbox.inbox {
            let inbox = Arc::clone(inbox);
            let (client, from) = (outbox.client.clone(), outbox.from.clone());
            let claim = move |id: u64, own: Option<Subject>| {
                let subject = own.unwrap_or_else(|| Subject::from(reply_to(&inbox, id)));
                let claim = codec::encode_control(&Message::Credit { id, items: 0 });
                let client = client.clone();
                let from = from.clone();
                async move {
                    client
                        .publish_with_reply(subject, from, claim)
                        .await
                        .is_ok()
                }
            };
            tokio::spawn(claim_loop(Arc::downgrade(&outbox.held), claim));
        }
        let writer = Publisher::new(outbox, |outbox: Outbox, frame| async move {
            outbox.send(frame).await?;
            Ok(outbox)
        });
        (
            ServerReader {
                frames: self.frames,
                max_in,
                outbox: reader_outbox,
                max_payload: self.max_payload,
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
    /// Where the calls still queued when the session ends are refused.
    outbox: Outbox,
    max_payload: usize,
}

impl Drop for ServerReader {
    /// The session ended (shut down, or idle) with calls still queued for
    /// it: they did not run, and their callers are told so, to send them
    /// elsewhere.
    fn drop(&mut self) {
        self.frames.close();
        let refusals = refusals(
            &mut self.frames,
            code::SHUTTING_DOWN,
            "the server's session for this caller ended before it read the call",
            self.max_payload,
        );
        if refusals.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let outbox = self.outbox.clone();
            runtime.spawn(async move {
                for refusal in refusals {
                    if outbox.send(refusal).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
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
