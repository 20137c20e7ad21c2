//! Opening connections: TCP, Unix sockets, in-memory streams and links,
//! streams and links handed in, TLS on byte streams; the greeting; and the
//! channel over the first connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::ToSocketAddrs;

use crate::error::RpcError;
use crate::link::greeting::{self, HandshakeError};
use crate::link::negotiate::Offer;
use crate::link::{memory::MemoryLinkAddr, ByteLink, Link};
use crate::session::{self, goodbye_error, Channel, Connection, Redial, SessionConfig};
use crate::transport::{memory::MemoryAddr, Io, PeerAddr};

use super::builder::ChannelBuilder;
use super::reconnect::{Backoff, Connector, Redialer};

impl Channel {
    /// Connects over TCP with the default settings; see [`Channel::builder`].
    ///
    /// # Errors
    /// [`RpcError::Connect`] when nothing listens there,
    /// [`RpcError::NotAServer`] when the peer is not a server of this protocol,
    /// [`RpcError::VersionMismatch`], [`RpcError::ServerBusy`], or
    /// [`RpcError::ConnectTimeout`].
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
        Channel::builder().connect(addr).await
    }

    /// Connects over a Unix domain socket with the default settings.
    ///
    /// # Errors
    /// As [`Channel::connect`].
    #[cfg(unix)]
    pub async fn connect_unix(path: impl AsRef<std::path::Path>) -> Result<Channel, RpcError> {
        Channel::builder().connect_unix(path).await
    }

    /// Settings for a new channel.
    #[must_use]
    pub fn builder() -> ChannelBuilder {
        ChannelBuilder::default()
    }
}

impl ChannelBuilder {
    /// Connects over TCP (with `TCP_NODELAY`), trying each resolved address.
    /// Reconnects go to the same resolved addresses.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect(self, addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(addr).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => return Err(connect_error("(unresolved address)", e)),
        };
        let label = addrs
            .first()
            .map_or_else(|| "(no address)".to_owned(), ToString::to_string);
        let builder = self.clone();
        let addrs = Arc::new(addrs);
        let connector: Connector = Box::new(move || {
            let builder = builder.clone();
            let addrs = Arc::clone(&addrs);
            Box::pin(again_if_older(builder, move |builder| {
                let addrs = Arc::clone(&addrs);
                async move { builder.dial_tcp(&addrs).await }
            }))
        });
        self.open(label, connector).await
    }

    async fn dial_tcp(&self, addrs: &[SocketAddr]) -> Result<Arc<Connection>, RpcError> {
        let mut label = addrs.first().map_or_else(String::new, ToString::to_string);
        let attempt = async {
            let mut last =
                io::Error::new(io::ErrorKind::NotFound, "the address resolved to nothing");
            for addr in addrs {
                label = addr.to_string();
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream
                            .set_nodelay(true)
                            .map_err(|e| connect_error(&label, e))?;
                        return self.handshake(stream, &label).await;
                    }
                    Err(e) => last = e,
                }
            }
            Err(connect_error(&label, last))
        };
        with_timeout(
            self.connect_timeout,
            addrs.first().map_or_else(String::new, ToString::to_string),
            attempt,
        )
        .await
    }

    /// Connects over a Unix domain socket.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    #[cfg(unix)]
    pub async fn connect_unix(
        self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Channel, RpcError> {
        let path = Arc::new(path.as_ref().to_path_buf());
        let label = path.display().to_string();
        let connector = self.connector(label.clone(), move |builder| {
            let path = Arc::clone(&path);
            async move {
                let label = path.display().to_string();
                let stream = tokio::net::UnixStream::connect(path.as_path())
                    .await
                    .map_err(|e| connect_error(&label, e))?;
                builder.handshake(stream, &label).await
            }
        });
        self.open(label, connector).await
    }

    /// Connects to an in-memory listener (see [`transport::memory`](crate::transport::memory));
    /// reconnects like a TCP channel.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_memory(self, addr: &MemoryAddr) -> Result<Channel, RpcError> {
        let addr = addr.clone();
        let connector = self.connector("memory".to_owned(), move |builder| {
            let connected = addr.connect();
            async move {
                let stream = connected.map_err(|e| connect_error("memory", e))?;
                builder.handshake(stream, "memory").await
            }
        });
        self.open("memory".to_owned(), connector).await
    }

    /// Connects to an in-memory link listener (see
    /// [`link::memory`](crate::link::memory)): frames travel as whole
    /// messages, with no byte stream. Reconnects like a TCP channel.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_memory_link(self, addr: &MemoryLinkAddr) -> Result<Channel, RpcError> {
        let addr = addr.clone();
        let connector = self.connector("memory link".to_owned(), move |builder| {
            let connected = addr.connect();
            async move {
                let link = connected.map_err(|e| connect_error("memory link", e))?;
                builder.greet(link, "memory link").await
            }
        });
        self.open("memory link".to_owned(), connector).await
    }

    /// Runs the protocol over a [`Link`] you opened yourself (see
    /// [`link`](crate::link)); `label` names the peer in errors. TLS, if
    /// set, does not apply. Such a channel cannot reconnect.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_link<L: Link>(
        self,
        link: L,
        label: impl Into<String>,
    ) -> Result<Channel, RpcError> {
        let label = label.into();
        let connection = with_timeout(
            self.connect_timeout,
            label.clone(),
            self.greet(link, &label),
        )
        .await?;
        Ok(self.channel(label, None, connection))
    }

    /// Runs the protocol over a stream you opened yourself (a TLS stream, a
    /// socket from elsewhere). `label` names the peer in errors. Such a
    /// channel cannot reconnect: once the stream breaks, calls fail.
    ///
    /// # Errors
    /// See [`Channel::connect`].
    pub async fn connect_io<T: Io>(
        self,
        io: T,
        label: impl Into<String>,
    ) -> Result<Channel, RpcError> {
        let label = label.into();
        let connection = with_timeout(
            self.connect_timeout,
            label.clone(),
            self.handshake(io, &label),
        )
        .await?;
        Ok(self.channel(label, None, connection))
    }

    /// A connector that dials with `dial` (given a copy of these settings),
    /// within the connect timeout; `label` names the peer if it times out.
    fn connector<F, Fut>(&self, label: String, dial: F) -> Connector
    where
        F: Fn(ChannelBuilder) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<Connection>, RpcError>> + Send + 'static,
    {
        let builder = self.clone();
        let dial = Arc::new(dial);
        Box::new(move || {
            let timeout = builder.connect_timeout;
            let dial = Arc::clone(&dial);
            Box::pin(with_timeout(
                timeout,
                label.clone(),
                again_if_older(builder.clone(), move |builder| dial(builder)),
            ))
        })
    }

    async fn open(self, label: String, connector: Connector) -> Result<Channel, RpcError> {
        let connection = connector().await?;
        Ok(self.channel(label, Some(connector), connection))
    }

    fn channel(
        self,
        peer: String,
        connector: Option<Connector>,
        connection: Arc<Connection>,
    ) -> Channel {
        let defaults = self.defaults();
        let redial = connector.filter(|_| self.reconnect).map(|connector| {
            let backoff = Backoff::new(self.backoff_initial, self.backoff_max);
            Box::new(Redialer::new(peer.clone(), connector, backoff)) as Box<dyn Redial>
        });
        Channel::new(peer, defaults, connection, redial)
    }

    async fn handshake<T: Io>(&self, io: T, peer: &str) -> Result<Arc<Connection>, RpcError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let stream = tls
                .connector
                .connect(tls.name.clone(), io)
                .await
                .map_err(|e| RpcError::Tls {
                    addr: peer.to_owned(),
                    message: e.to_string(),
                })?;
            return self.greet(ByteLink::new(stream), peer).await;
        }
        self.greet(ByteLink::new(io), peer).await
    }

    /// The greeting, on a link ready for it.
    async fn greet<L: Link>(&self, link: L, peer: &str) -> Result<Arc<Connection>, RpcError> {
        let services = self
            .services
            .routes()
            .map_err(|message| RpcError::Connect {
                addr: peer.to_owned(),
                source: Arc::new(io::Error::new(io::ErrorKind::InvalidInput, message)),
            })?;
        let serving = if services.is_empty() {
            0
        } else {
            self.serve_in_flight
        };
        let offer = Offer::new(
            self.max_frame_length,
            serving,
            self.compression.extensions(),
        )
        .up_to(self.newest_version);
        let established = greeting::dial(link, offer, self.compression)
            .await
            .map_err(|e| match e {
                // A TLS alert after the handshake: a server that wants a
                // client certificate refuses this one (TLS 1.3 says so only
                // once the client has finished its side).
                #[cfg(feature = "tls")]
                HandshakeError::Io(e)
                    if e.get_ref()
                        .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>()) =>
                {
                    RpcError::Tls {
                        addr: peer.to_owned(),
                        message: e.to_string(),
                    }
                }
                HandshakeError::Io(e) => RpcError::NotAServer {
                    addr: peer.to_owned(),
                    reason: format!("the greeting failed: {e}"),
                },
                HandshakeError::Closed => RpcError::NotAServer {
                    addr: peer.to_owned(),
                    reason: "it closed the connection without greeting (a server that requires TLS does that to a client without it)".to_owned(),
                },
                HandshakeError::NotProtocol(reason) => RpcError::NotAServer {
                    addr: peer.to_owned(),
                    reason,
                },
                HandshakeError::Version { oldest, newest } => RpcError::VersionMismatch {
                    local: offer.oldest..=offer.newest,
                    remote: oldest..=newest,
                },
                // Ranges that overlap: see `again_if_older`.
                HandshakeError::Again { newest } => RpcError::VersionMismatch {
                    local: offer.oldest..=offer.newest,
                    remote: newest..=newest,
                },
                HandshakeError::Refused { code, message } => goodbye_error(code, &message),
            })?;
        let config = SessionConfig {
            write_queue: self.write_queue,
            keepalive: self
                .keepalive_interval
                .map(|interval| (interval, self.keepalive_timeout)),
            // With nothing pending the reader sweeps once per default
            // timeout (at most ten times a second), so a call with the
            // default timeout is always covered by a sweep.
            sweep_idle: self.timeout.max(Duration::from_millis(100)),
            services: services.clone(),
            serve_in_flight: self.serve_in_flight,
        };
        Ok(session::start(
            established,
            PeerAddr::Dialed(peer.to_owned()),
            &config,
        ))
    }
}

/// Dials with `dial`, and once more if a server of an older version
/// answered: a listener of version 3 reads only its own version's
/// greeting, answers any other with its greeting and a goodbye, and
/// closes. The versions it named then overlap this side's (a true
/// mismatch names versions apart), and the second greeting offers no
/// version newer than the server's.
async fn again_if_older<F, Fut>(
    builder: ChannelBuilder,
    dial: F,
) -> Result<Arc<Connection>, RpcError>
where
    F: Fn(ChannelBuilder) -> Fut,
    Fut: Future<Output = Result<Arc<Connection>, RpcError>>,
{
    match dial(builder.clone()).await {
        Err(RpcError::VersionMismatch { local, remote })
            if *remote.end() >= *local.start() && *remote.end() < *local.end() =>
        {
            tracing::debug!(
                version = *remote.end(),
                "the server reads only its own version's greeting; greeting again with it"
            );
            dial(builder.newest_version(*remote.end())).await
        }
        other => other,
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    label: String,
    attempt: impl Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(RpcError::ConnectTimeout {
            addr: label,
            timeout,
        }),
    }
}

fn connect_error(addr: &str, source: io::Error) -> RpcError {
    RpcError::Connect {
        addr: addr.to_owned(),
        source: Arc::new(source),
    }
}
