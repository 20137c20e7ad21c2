//! An in-memory transport: a client and a server in one process, with no
//! socket, running exactly the same protocol code as TCP.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rpc_runtime::{transport::memory, Channel, Server};
//!
//! let (listener, addr) = memory::listener();
//! let server = Server::builder().serve(listener)?;
//! let channel = Channel::builder().connect_io(addr.connect()?, "memory").await?;
//! # drop(channel);
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::io;

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::{Listener, PeerAddr};

/// Bytes buffered in each direction of an in-memory connection.
const BUFFER: usize = 256 * 1024;

/// Creates a listener and the address that connects to it.
#[must_use]
pub fn listener() -> (MemoryListener, MemoryAddr) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        MemoryListener {
            incoming: rx,
            addr: MemoryAddr { tx: tx.clone() },
        },
        MemoryAddr { tx },
    )
}

/// The server side: yields one stream per [`MemoryAddr::connect`].
#[derive(Debug)]
pub struct MemoryListener {
    incoming: mpsc::UnboundedReceiver<DuplexStream>,
    addr: MemoryAddr,
}

/// The client side: each [`connect`](Self::connect) opens a new connection.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryAddr {
    tx: mpsc::UnboundedSender<DuplexStream>,
}

impl MemoryAddr {
    /// Opens a connection to the listener.
    ///
    /// # Errors
    /// `ConnectionRefused` when the listener is gone (its server stopped).
    pub fn connect(&self) -> io::Result<DuplexStream> {
        let (client, server) = tokio::io::duplex(BUFFER);
        self.tx.send(server).map_err(|_| {
            io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "in-memory listener is closed",
            )
        })?;
        Ok(client)
    }
}

impl Listener for MemoryListener {
    type Io = DuplexStream;
    type Addr = MemoryAddr;

    async fn accept(&mut self) -> io::Result<(DuplexStream, PeerAddr)> {
        // `self.addr` keeps a sender alive, so `recv` only ends if the
        // listener itself is being dropped; report that as an error.
        match self.incoming.recv().await {
            Some(stream) => Ok((stream, PeerAddr::Memory)),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "in-memory listener closed",
            )),
        }
    }

    fn local_addr(&self) -> io::Result<MemoryAddr> {
        Ok(self.addr.clone())
    }
}
