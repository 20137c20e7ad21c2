//! The session: what both ends of a connection share once the greeting is
//! done. Calls this side makes (the table of pending calls, deadlines,
//! cancels, answer streams), calls the peer makes (dispatch to services,
//! the streams they send and receive), credit, keepalive and goodbyes.
//! Either side can call and either side can serve: a client that serves
//! callbacks runs the same dispatch as a server.
//!
//! A session runs over a [`Link`](crate::link::Link) and knows nothing of
//! sockets, dialing or accepting: the client end dials and reconnects, the
//! server end accepts and limits, and both hand their links here.

mod caller;
mod channel;
mod context;
mod dispatch;
mod flow;
mod id_hash;
mod inbox;
mod listener;
mod paths;
mod pending;
mod quiet;
mod reader;
mod reply;
mod request;
mod routes;
mod run;
mod service;
mod serving;
mod stream;
mod target;
mod writer;

pub use channel::Channel;
pub(crate) use channel::{current_of, Redial};
pub use context::CallContext;
pub(crate) use context::{has_inbox, inherited_deadline, take_inbox};
pub(crate) use inbox::InboxStream;
pub(crate) use listener::serve as serve_listener;
#[cfg(feature = "nats")]
pub(crate) use paths::wire_timeout;
pub(crate) use paths::{oneway, sending, streaming, unary};
pub(crate) use pending::bench_pending;
pub(crate) use routes::{misfit, Routes};
pub use service::{Request, Service, ServiceFuture};
pub(crate) use serving::{Counted, Serving, DEFAULT_MAX_METADATA, DEFAULT_WRITE_TIMEOUT};
pub(crate) use stream::RemoteStream;
pub(crate) use target::{CallDefaults, Outcome, Picked, Target, Ticket, Waiting};
pub(crate) use writer::Outgoing;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::RpcError;
use crate::link::greeting::Established;
use crate::link::Link;
use crate::telemetry::{OpenConnection, Side};

use crate::transport::PeerAddr;
use crate::wire::codec;
use crate::wire::frame::{code, Message};
use crate::wire::version::Negotiated;

use caller::CallerHalf;
use pending::Shared;
use reader::{read_loop, ReaderServing};

/// Encoded calls that may wait for the writer of a callback's way back.
const REVERSE_WRITE_QUEUE: usize = 1024;

/// The calling side of one session: where a [`Channel`] sends its calls.
pub(crate) struct Connection {
    queue: mpsc::Sender<Outgoing>,
    control: mpsc::UnboundedSender<Bytes>,
    shared: Arc<Shared>,
    /// The next request id: odd numbers counting up from 1 on a dialer's
    /// connection, even from 2 on a listener's (callbacks), so an id says
    /// whose call it is.
    next_id: AtomicU64,
    /// What the greetings settled on: the version, the extensions, the
    /// peer's limits.
    negotiated: Negotiated,
    /// One permit per call the peer said it runs at once: calls beyond
    /// that wait here, so the peer never has to stop reading (and always
    /// sees cancels and pings).
    slots: Arc<tokio::sync::Semaphore>,
    /// Who is at the other end (for traces).
    peer: PeerAddr,
    /// Cancelled when the session ends.
    ended: CancellationToken,
    /// Stops the reader and the writer when the connection is dropped.
    _stop: DropGuard,
}

impl Connection {
    /// The calling side of a session whose frames go to `queue` and
    /// `control`, whose ids count up by two from `first_id` (odd for the
    /// dialer, even for the listener), within the peer's frame limit and
    /// window that the greetings `negotiated`; `stop` fires when it is
    /// dropped.
    #[allow(clippy::too_many_arguments)] // each is a different part, used once
    fn new(
        queue: mpsc::Sender<Outgoing>,
        control: mpsc::UnboundedSender<Bytes>,
        shared: Arc<Shared>,
        first_id: u64,
        negotiated: Negotiated,
        peer: PeerAddr,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Connection {
            queue,
            control,
            shared,
            next_id: AtomicU64::new(first_id),
            negotiated,
            slots: Arc::new(tokio::sync::Semaphore::new(
                negotiated
                    .peer_max_in_flight()
                    .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            )),
            peer,
            ended: stop.clone(),
            _stop: stop.drop_guard(),
        })
    }

    /// A new request id.
    #[inline]
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(2, std::sync::atomic::Ordering::Relaxed)
    }

    /// The largest frame the peer accepts.
    #[inline]
    pub(crate) fn peer_max_frame(&self) -> usize {
        self.negotiated.peer_max_frame_length()
    }

    /// What the greetings settled on.
    pub(crate) fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// Who is at the other end.
    pub(crate) fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    /// Whether the session has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Completes when the session has ended (its reader or writer
    /// stopped, or it was closed).
    pub(crate) fn ended(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.ended.clone().cancelled_owned()
    }

    /// Why the session ended (or a generic reason if it has not).
    pub(crate) fn closed_reason(&self) -> RpcError {
        self.shared.closed_reason()
    }

    /// Gives up on call `id`: if it still waits, it leaves the table and
    /// the peer is told to stop it.
    pub(crate) fn abandon(&self, id: u64) {
        if self.shared.forget(id) {
            let cancel = codec::encode_control(&Message::Cancel { id });
            // Fails only when the connection is gone, and the call with it.
            let _ = self.control.send(cancel);
        }
    }

    /// How many calls wait for their answers.
    pub(crate) fn pending(&self) -> usize {
        self.shared.pending()
    }
}

/// How a dialer's session runs.
pub(crate) struct SessionConfig {
    /// Encoded calls that may wait for the writer.
    pub write_queue: usize,
    /// Ping after this much quiet with calls pending, and give up if
    /// nothing arrives within the second duration after the ping.
    pub keepalive: Option<(Duration, Duration)>,
    /// With nothing pending, how often the reader looks for expired calls.
    pub sweep_idle: Duration,
    /// Services this side serves to the peer (callbacks), and how many of
    /// their calls run at once.
    pub services: Routes,
    pub serve_in_flight: usize,
}

/// Starts a dialer's session over an established link: a writer task, and
/// a reader task that also serves the peer's calls when this side serves.
pub(crate) fn start<L: Link>(
    established: Established<L>,
    peer: PeerAddr,
    config: &SessionConfig,
) -> Arc<Connection> {
    let Established {
        reader,
        writer,
        negotiated,
    } = established;
    let shared = Arc::new(Shared::new(Instant::now()));
    let stop = CancellationToken::new();
    let dialed = peer.clone();
    let (queue, queue_rx) = mpsc::channel(config.write_queue);
    let (control, control_rx) = mpsc::unbounded_channel();

    let writer_shared = Arc::clone(&shared);
    let writer_stop = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = writer::write_loop(writer, queue_rx, control_rx, writer_stop.clone()).await
        {
            writer_shared.close(
                RpcError::connection_lost(format!("writing to the server failed: {e}")),
                false,
            );
            writer_stop.cancel();
        }
    });
    let serving = (!config.services.is_empty()).then(|| ReaderServing {
        serving: Serving::for_channel(
            config.services.clone(),
            config.serve_in_flight,
            stop.clone(),
        ),
        peer,
        queue: queue.clone(),
        negotiated,
    });
    tokio::spawn(read_loop(
        reader,
        Arc::clone(&shared),
        control.clone(),
        stop.clone(),
        config.keepalive,
        serving,
        config.sweep_idle,
        OpenConnection::new(Side::Client),
    ));

    Connection::new(queue, control, shared, 1, negotiated, dialed, stop)
}

/// The error a peer's goodbye means for the calls pending on it.
pub(crate) fn goodbye_error(code: u32, message: &str) -> RpcError {
    match code {
        code::SHUTTING_DOWN => RpcError::ShuttingDown,
        code::SERVER_BUSY => RpcError::ServerBusy {
            message: message.to_owned(),
        },
        _ => RpcError::connection_lost(format!("the server closed the connection: {message}")),
    }
}

/// A channel for calls from a server's handlers back to the client, on the
/// client's own connection: the server's connection loop writes what
/// `queue` and `control` carry and hands frames about these calls to
/// `caller`.
pub(crate) struct Reverse {
    pub channel: Channel,
    pub caller: CallerHalf,
    pub queue: mpsc::Receiver<Outgoing>,
    pub control: mpsc::UnboundedReceiver<Bytes>,
}

impl Reverse {
    pub(crate) fn new(peer: String, defaults: CallDefaults, negotiated: Negotiated) -> Self {
        // No reader sweeps this table: every call keeps its own deadline.
        let never = Instant::now() + Duration::from_secs(86_400 * 365 * 30);
        let shared = Arc::new(Shared::new(never));
        let (queue, queue_rx) = mpsc::channel(REVERSE_WRITE_QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let connection = Connection::new(
            queue,
            control.clone(),
            Arc::clone(&shared),
            2,
            negotiated,
            PeerAddr::Dialed(peer.clone()),
            CancellationToken::new(),
        );
        Reverse {
            channel: Channel::new(peer, defaults, connection, None),
            caller: CallerHalf::new(shared, control),
            queue: queue_rx,
            control: control_rx,
        }
    }
}
