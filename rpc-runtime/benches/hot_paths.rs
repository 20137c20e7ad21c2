//! Micro-benchmarks of the hot paths that need no sockets:
//! `cargo bench -p rpc-runtime --bench hot_paths`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rpc_runtime::__private::bench;
use rpc_runtime::{rpc_service, transport::memory, Channel, Server};

#[rpc_service]
trait Math {
    async fn add(&self, a: u64, b: u64) -> u64;
}

struct Impl;

impl Math for Impl {
    async fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }
}

fn envelope(c: &mut Criterion) {
    c.bench_function("encode request add(u64, u64)", |b| {
        b.iter(|| bench::encode_request(black_box(1), "Math", "add", black_box(&(2u64, 3u64))));
    });
    let frame = bench::encode_request(1, "Math", "add", &(2u64, 3u64)).unwrap_or_default();
    c.bench_function("decode request add(u64, u64)", |b| {
        b.iter(|| bench::decode_request::<(u64, u64)>(black_box(&frame)));
    });
}

fn pending(c: &mut Criterion) {
    c.bench_function("pending-call table: 1,000 register + complete", |b| {
        b.iter(|| bench::pending_round_trips(black_box(1_000)));
    });
}

fn in_memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let client = rt.block_on(async {
        let (listener, addr) = memory::listener();
        let server = Server::builder()
            .add_service(MathServer::new(Impl))
            .serve(listener)
            .unwrap_or_else(|e| panic!("serve: {e}"));
        std::mem::forget(server);
        let channel = Channel::builder()
            .connect_memory(&addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        MathClient::new(channel)
    });
    c.bench_function("call add(u64, u64) through the in-memory transport", |b| {
        b.to_async(&rt)
            .iter(|| async { client.add(black_box(2), black_box(3)).await });
    });
}

criterion_group!(benches, envelope, pending, in_memory);
criterion_main!(benches);
