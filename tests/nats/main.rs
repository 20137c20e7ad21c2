//! The NATS transport against real `nats-server` processes on loopback.

#[path = "../common/mod.rs"]
mod common;

mod calls;
mod discovery;
mod failover;
mod protocol;
mod replica;
