//! tarpc, with its bincode serde transport over TCP.

use std::net::SocketAddr;

use futures::{future, StreamExt};
use serde_bytes::ByteBuf;
use tarpc::server::{self, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::{client, context};

/// The benchmark service, tarpc's way.
#[tarpc::service]
pub trait TarpcBench {
    /// A small call.
    async fn add(a: u64, b: u64) -> u64;
    /// A bulk call.
    async fn echo(data: ByteBuf) -> ByteBuf;
}

#[derive(Clone)]
struct Impl;

impl TarpcBench for Impl {
    async fn add(self, _: context::Context, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
    async fn echo(self, _: context::Context, data: ByteBuf) -> ByteBuf {
        data
    }
}

/// Serves until the process ends, as tarpc's examples do: a task per
/// connection, a task per request.
pub async fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let mut listener = tarpc::serde_transport::tcp::listen(addr, Bincode::default).await?;
    listener.config_mut().max_frame_length(64 << 20);
    let local = listener.local_addr();
    tokio::spawn(async move {
        listener
            .filter_map(|r| future::ready(r.ok()))
            .map(server::BaseChannel::with_defaults)
            .for_each(|channel| async move {
                tokio::spawn(
                    channel
                        .execute(Impl.serve())
                        .for_each(|response| async move {
                            tokio::spawn(response);
                        }),
                );
            })
            .await;
    });
    Ok(local)
}

/// One connection.
pub async fn connect(addr: SocketAddr) -> std::io::Result<TarpcBenchClient> {
    let mut transport = tarpc::serde_transport::tcp::connect(addr, Bincode::default);
    transport.config_mut().max_frame_length(64 << 20);
    let transport = transport.await?;
    Ok(TarpcBenchClient::new(client::Config::default(), transport).spawn())
}

/// A context with a deadline far enough away for any workload.
pub fn ctx() -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    ctx
}
