//! The health service every server answers, modelled on gRPC's
//! `grpc.health.v1`: whether the server, or one of its services, is
//! serving; and a stream of that status as it changes.
//!
//! A server adds it by itself (under the wire name
//! `rpc.health.v1.Health`, see `docs/PROTOCOL.md`), reports each of its
//! services and the whole server (the name `""`) as serving, and reports
//! everything as not serving the moment [`shutdown`](crate::Server::shutdown)
//! begins, so that a [balanced channel](crate::balance) stops sending there
//! before any call would be refused. A service's status can be set by hand
//! through [`Server::health`](crate::Server::health) (a dependency is
//! down):
//!
//! ```
//! use rpc_runtime::health::{HealthClient, ServingStatus};
//! use rpc_runtime::{rpc_service, Channel, Server};
//!
//! #[rpc_service]
//! pub trait Greeter {
//!     /// Says hello.
//!     async fn hello(&self, name: String) -> String;
//! }
//!
//! struct English;
//! impl Greeter for English {
//!     async fn hello(&self, name: String) -> String {
//!         format!("Hello, {name}!")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder()
//!     .add_service(GreeterServer::new(English))
//!     .bind("127.0.0.1:0")
//!     .await?;
//! let health = HealthClient::connect(server.local_addr()).await?;
//! assert_eq!(health.check("Greeter".into()).await?, ServingStatus::Serving);
//! assert_eq!(health.check("Nope".into()).await?, ServingStatus::ServiceUnknown);
//!
//! server.health().set("Greeter", ServingStatus::NotServing);
//! assert_eq!(health.check("Greeter".into()).await?, ServingStatus::NotServing);
//! # server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::streaming::Streaming;

/// Whether a service (or the whole server) is serving.
///
/// On the wire, the variant's index as bincode writes it: `0` serving,
/// `1` not serving, `2` unknown service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServingStatus {
    /// Calls are welcome.
    Serving,
    /// Calls should go elsewhere: the server is shutting down, or its
    /// owner said so.
    NotServing,
    /// The server has no service of that name.
    ServiceUnknown,
}

/// The health service: the status of a service of the server, or of the
/// whole server (`""`).
#[crate::rpc_service(name = "rpc.health.v1.Health")]
pub trait Health {
    /// The status of `service` now (`""`: the whole server).
    async fn check(&self, service: String) -> ServingStatus;

    /// The status of `service` now, then each time it changes. The stream
    /// ends after `NotServing` when the server shuts down. Call it without
    /// a deadline (`HealthClient::without_timeout`) to watch for long.
    async fn watch(&self, service: String) -> Streaming<ServingStatus>;
}

/// The statuses a server reports, shared by its health service and its
/// [`HealthReporter`]s.
#[derive(Default)]
struct Statuses {
    by_service: Mutex<HashMap<String, ServingStatus>>,
    /// Bumped on every change, so watchers look again.
    version: watch::Sender<u64>,
    /// Shutdown has begun.
    shutting_down: AtomicBool,
}

/// Sets what a server's health service reports (see
/// [`Server::health`](crate::Server::health)). Cheap to clone.
#[derive(Clone)]
pub struct HealthReporter {
    statuses: Arc<Statuses>,
}

impl HealthReporter {
    /// A reporter of a server that serves (`""`); its services are added
    /// with [`hosts`](Self::hosts).
    pub(crate) fn new() -> Self {
        let by_service = std::iter::once((String::new(), ServingStatus::Serving)).collect();
        HealthReporter {
            statuses: Arc::new(Statuses {
                by_service: Mutex::new(by_service),
                version: watch::Sender::new(0),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Reports each of `services` that has no status yet as serving: the
    /// services a server hosts, its own health and reflection services
    /// among them.
    pub(crate) fn hosts<'a>(&self, services: impl IntoIterator<Item = &'a str>) {
        let mut by_service = self.lock();
        for service in services {
            by_service
                .entry(service.to_owned())
                .or_insert(ServingStatus::Serving);
        }
    }

    /// Reports `service` (`""`: the whole server) as `status` from now on.
    /// [`ServingStatus::ServiceUnknown`] removes it.
    pub fn set(&self, service: &str, status: ServingStatus) {
        {
            let mut by_service = self.lock();
            match status {
                ServingStatus::ServiceUnknown => by_service.remove(service),
                status => by_service.insert(service.to_owned(), status),
            };
        }
        self.statuses
            .version
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    /// What is reported for `service` now.
    #[must_use]
    pub fn status(&self, service: &str) -> ServingStatus {
        self.lock()
            .get(service)
            .copied()
            .unwrap_or(ServingStatus::ServiceUnknown)
    }

    /// Reports every service and the server as not serving: shutdown has
    /// begun. Watch streams end after saying so.
    pub(crate) fn shutting_down(&self) {
        {
            let mut by_service = self.lock();
            for status in by_service.values_mut() {
                *status = ServingStatus::NotServing;
            }
        }
        self.statuses.shutting_down.store(true, Ordering::SeqCst);
        self.statuses
            .version
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ServingStatus>> {
        self.statuses
            .by_service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The health service, answering from these statuses.
    pub(crate) fn service(&self) -> HealthServer<HealthReporter> {
        HealthServer::new(self.clone())
    }
}

impl fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.lock().iter()).finish()
    }
}

impl Health for HealthReporter {
    async fn check(&self, service: String) -> ServingStatus {
        self.status(&service)
    }

    async fn watch(&self, service: String) -> Streaming<ServingStatus> {
        let changes = self.statuses.version.subscribe();
        let reporter = self.clone();
        let watching = Watching {
            reporter,
            service,
            changes,
            last: None,
            done: false,
        };
        Streaming::from_stream(futures::stream::unfold(watching, Watching::next))
    }
}

/// One watch: the status last sent, and the changes to look at.
struct Watching {
    reporter: HealthReporter,
    service: String,
    changes: watch::Receiver<u64>,
    last: Option<ServingStatus>,
    done: bool,
}

impl Watching {
    /// The next status to send, once it differs from the last one sent.
    async fn next(mut self) -> Option<(ServingStatus, Self)> {
        if self.done {
            return None;
        }
        loop {
            self.changes.borrow_and_update();
            let ending = self.reporter.statuses.shutting_down.load(Ordering::SeqCst);
            let now = self.reporter.status(&self.service);
            if self.last != Some(now) {
                self.last = Some(now);
                // Shutdown: this is the last word.
                self.done = ending;
                return Some((now, self));
            }
            if ending || self.changes.changed().await.is_err() {
                return None;
            }
        }
    }
}
