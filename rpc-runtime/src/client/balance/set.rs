//! The endpoints of a balanced channel and their states, and the snapshot
//! of them that calls read: the ready ones, with their connections.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::RpcError;
use crate::session::{Channel, Connection, Picked};

use super::load::{Load, LoadTicket};

/// Where an endpoint of a balanced channel stands.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EndpointState {
    /// Dialing (the first time, or again after its connection ended).
    Connecting,
    /// Connected and serving: calls go here.
    Ready,
    /// Connected, but its server said it is not serving (it is shutting
    /// down, or its owner said so): no new calls go here; calls already
    /// sent finish.
    Draining,
    /// The last attempt to connect failed; the next is paced by backoff.
    Failing {
        /// Why the last attempt failed.
        error: RpcError,
    },
}

impl EndpointState {
    /// Whether calls go to the endpoint now.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        matches!(self, EndpointState::Ready)
    }
}

/// A connected endpoint as calls see it: its connection, and whether its
/// server is serving (a draining one takes only targeted calls).
#[derive(Clone)]
pub(super) struct Ready {
    pub key: Arc<str>,
    pub load: Arc<Load>,
    pub connection: Arc<Connection>,
    pub serving: bool,
}

impl Ready {
    /// This endpoint's connection for one attempt, counted in its load.
    pub(super) fn picked(&self) -> Picked<LoadTicket> {
        (
            Arc::clone(&self.connection),
            LoadTicket::new(Arc::clone(&self.load)),
        )
    }
}

/// An endpoint's state, as the snapshot keeps it.
#[derive(Clone)]
pub(super) enum State {
    Connecting,
    Ready(Channel),
    Draining(Channel),
    Failing {
        error: RpcError,
        /// When the next attempt is made.
        retry_at: Instant,
    },
}

impl State {
    /// The state as users see it.
    pub(super) fn public(&self) -> EndpointState {
        match self {
            State::Connecting => EndpointState::Connecting,
            State::Ready(_) => EndpointState::Ready,
            State::Draining(_) => EndpointState::Draining,
            State::Failing { error, .. } => EndpointState::Failing {
                error: error.clone(),
            },
        }
    }

    /// What the state says of the endpoint, for an error.
    pub(super) fn describe(&self) -> String {
        match self {
            State::Failing { error, retry_at } => format!(
                "{error}, next attempt in {:?}",
                retry_at.saturating_duration_since(Instant::now())
            ),
            State::Draining(_) => "not serving".to_owned(),
            State::Connecting => "connecting".to_owned(),
            State::Ready(_) => "ready".to_owned(),
        }
    }

    /// Why the endpoint `key`, in this state, cannot take a call.
    pub(super) fn unavailable(&self, key: &str) -> RpcError {
        RpcError::Unavailable {
            message: format!("{key} is not ready: {}", self.describe()),
        }
    }

    /// Whether an endpoint in this state may be ready by `deadline`.
    pub(super) fn may_be_ready_by(&self, deadline: Instant) -> bool {
        match self {
            State::Connecting | State::Ready(_) => true,
            State::Draining(_) => false,
            State::Failing { retry_at, .. } => *retry_at <= deadline,
        }
    }
}

/// One endpoint in the set.
struct Member {
    key: Arc<str>,
    load: Arc<Load>,
    state: State,
    /// Stops the task that keeps the endpoint connected.
    stop: CancellationToken,
}

/// What calls read: the ready endpoints, and the state of every one.
#[derive(Default)]
pub(super) struct Snapshot {
    /// The connected endpoints.
    pub ready: Vec<Ready>,
    members: Vec<(Arc<str>, State)>,
    /// Discovery has reported its first set of endpoints.
    discovered: bool,
}

impl Snapshot {
    /// Whether a call with this deadline may yet find an endpoint ready.
    pub(super) fn may_be_ready_by(&self, deadline: Instant) -> bool {
        !self.discovered
            || self
                .members
                .iter()
                .any(|(_, s)| s.may_be_ready_by(deadline))
    }

    /// Whether discovery has reported its first set.
    pub(super) fn is_discovered(&self) -> bool {
        self.discovered
    }

    /// The connected endpoint named `key`.
    pub(super) fn ready_one(&self, key: &str) -> Option<&Ready> {
        self.ready.iter().find(|r| &*r.key == key)
    }

    /// The state of the endpoint named `key`, if it is in the set.
    pub(super) fn state_of(&self, key: &str) -> Option<&State> {
        self.members
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, state)| state)
    }

    /// Every endpoint and its state.
    pub(super) fn members(&self) -> impl Iterator<Item = (&Arc<str>, &State)> {
        self.members.iter().map(|(key, state)| (key, state))
    }

    /// Every endpoint and its state, as users see them.
    pub(super) fn states(&self) -> Vec<(String, EndpointState)> {
        self.members()
            .map(|(key, state)| (key.to_string(), state.public()))
            .collect()
    }

    /// Why no endpoint can take a call now.
    pub(super) fn unavailable(&self) -> RpcError {
        let mut message = String::new();
        if self.members.is_empty() {
            message.push_str(if self.discovered {
                "discovery found no endpoints"
            } else {
                "discovery has not reported any endpoint yet"
            });
        } else {
            let _ = write!(
                message,
                "none of {} endpoints is ready (",
                self.members.len()
            );
            for (i, (key, state)) in self.members.iter().enumerate() {
                let sep = if i == 0 { "" } else { "; " };
                let _ = write!(message, "{sep}{key}: {}", state.describe());
            }
            message.push(')');
        }
        RpcError::Unavailable { message }
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.members.iter().map(|(k, s)| (k, s.public())))
            .finish()
    }
}

/// The set of endpoints, and the snapshot published on every change.
pub(super) struct Registry {
    members: Mutex<Members>,
    published: watch::Sender<Arc<Snapshot>>,
}

#[derive(Default)]
struct Members {
    list: Vec<Member>,
    discovered: bool,
}

impl Registry {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Registry {
            members: Mutex::new(Members::default()),
            published: watch::Sender::new(Arc::new(Snapshot::default())),
        })
    }

    /// The snapshot now.
    #[inline]
    pub(super) fn snapshot(&self) -> watch::Ref<'_, Arc<Snapshot>> {
        self.published.borrow()
    }

    /// Something to wait on for the next snapshot.
    pub(super) fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.published.subscribe()
    }

    fn with_members<T>(&self, change: impl FnOnce(&mut Members) -> T) -> T {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let result = change(&mut members);
        self.published.send_replace(Arc::new(members.snapshot()));
        result
    }

    /// Adds `key` (connecting); `None` if it is in the set already. The
    /// token stops the task that keeps it connected.
    pub(super) fn insert(&self, key: &str) -> Option<(Arc<str>, CancellationToken)> {
        self.with_members(|members| {
            if members.list.iter().any(|m| &*m.key == key) {
                return None;
            }
            let member = Member {
                key: Arc::from(key),
                load: Load::new(),
                state: State::Connecting,
                stop: CancellationToken::new(),
            };
            let handles = (Arc::clone(&member.key), member.stop.clone());
            members.list.push(member);
            Some(handles)
        })
    }

    /// Removes `key`: no new calls go there, its connection closes once
    /// the calls on it end.
    pub(super) fn remove(&self, key: &str) {
        self.with_members(|members| {
            members.list.retain(|m| {
                let keep = &*m.key != key;
                if !keep {
                    m.stop.cancel();
                }
                keep
            });
        });
    }

    /// Discovery has reported its first set.
    pub(super) fn discovered(&self) {
        self.with_members(|members| members.discovered = true);
    }

    /// `key` is now in `state` (unless it was removed meanwhile).
    pub(super) fn set(&self, key: &str, state: State) {
        self.with_members(|members| {
            let connected = matches!(state, State::Ready(_) | State::Draining(_));
            let now = Instant::now();
            // The best latency of the others, for one that (re)joins.
            let best = members
                .list
                .iter()
                .filter(|m| &*m.key != key && matches!(m.state, State::Ready(_)))
                .map(|m| m.load.rtt_now(now))
                .min_by(f64::total_cmp);
            if let Some(member) = members.list.iter_mut().find(|m| &*m.key == key) {
                if connected {
                    member.load.clear_suspect();
                }
                // Back to taking calls: its old samples are stale.
                let ready = |s: &State| matches!(s, State::Ready(_));
                if ready(&state) && !ready(&member.state) {
                    member.load.restart(best, now);
                }
                member.state = state;
            }
        });
    }

    /// Stops every endpoint's task.
    pub(super) fn close(&self) {
        self.with_members(|members| {
            for member in members.list.drain(..) {
                member.stop.cancel();
            }
        });
    }
}

impl Members {
    fn snapshot(&self) -> Snapshot {
        let ready = self
            .list
            .iter()
            .filter_map(|m| match &m.state {
                State::Ready(channel) | State::Draining(channel) => Some(Ready {
                    key: Arc::clone(&m.key),
                    load: Arc::clone(&m.load),
                    connection: channel.current(),
                    serving: matches!(m.state, State::Ready(_)),
                }),
                _ => None,
            })
            .collect();
        Snapshot {
            ready,
            members: self
                .list
                .iter()
                .map(|m| (Arc::clone(&m.key), m.state.clone()))
                .collect(),
            discovered: self.discovered,
        }
    }
}
