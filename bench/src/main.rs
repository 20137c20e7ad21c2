//! Whole-system benchmarks: rpc-runtime against a raw-socket floor, tarpc and tonic,
//! server in its own process, the same workloads for each.
//!
//! ```text
//! rpc-bench run [--smoke] [--systems ours,floor,tarpc,tonic,balanced,balanced3,nats,natsfloor,tower,layered,plain] [--workloads latency,pipelined,conns,bulk,bulktext,bulkrandom,fanin] [--tag NAME]
//! rpc-bench table RESULTS.jsonl...
//! rpc-bench serve SYSTEM            (internal: the server process)
//! ```
//!
//! `run` starts one server process per system (this binary, re-spawned with
//! `serve`; it inherits CPU pinning, so `taskset -c 0 rpc-bench run` puts
//! both processes on one CPU), drives each workload from this process and
//! prints one JSON line per result, then one per comparison of ours with
//! each peer. `table` turns the lines of several runs into a markdown table
//! of medians. `bench/run-matrix.sh` runs the whole matrix.

mod floor;
mod nats;
mod ours;
mod peer_tarpc;
mod peer_tonic;

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts heap allocations, so the bench can report allocations per call
/// on the client's hot path (one relaxed atomic add per allocation).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

const SYSTEMS: [&str; 4] = ["ours", "floor", "tarpc", "tonic"];

/// The servers besides the first that `balanced3` spreads its calls over.
static EXTRA_SERVERS: std::sync::OnceLock<Vec<SocketAddr>> = std::sync::OnceLock::new();
const WORKLOADS: [&str; 6] = ["latency", "pipelined", "conns", "bulk", "fanin", "memory"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(args.get(1).map_or("", String::as_str)),
        Some("run") => run(&args[1..]),
        Some("table") => table(&args[1..]),
        _ => Err(
            "usage: rpc-bench run [--smoke] [--systems a,b] [--workloads a,b] [--tag NAME] | table FILES... | serve SYSTEM"
                .to_owned(),
        ),
    };
    if let Err(e) = result {
        eprintln!("rpc-bench: {e}");
        std::process::exit(2);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start a runtime: {e}"))
}

/// The server process: binds a loopback port, prints it, serves until its
/// standard input closes (the parent went away).
fn serve(system: &str) -> Result<(), String> {
    let rt = runtime();
    rt.block_on(async {
        let any: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        let addr = match system {
            "ours" | "floor" | "balanced" | "balanced3" | "tower" | "layered" | "plain" => {
                let listener = tokio::net::TcpListener::bind(any)
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                match system {
                    "floor" => tokio::spawn(floor::serve(listener)),
                    "layered" => tokio::spawn(ours::serve_layered(listener)),
                    "plain" => tokio::spawn(ours::serve_plain(listener)),
                    _ => tokio::spawn(ours::serve(listener)),
                };
                addr
            }
            "nats" | "natsfloor" => nats::serve(system).await?,
            "tarpc" => peer_tarpc::serve(any).await.map_err(|e| e.to_string())?,
            "tonic" => {
                let listener = tokio::net::TcpListener::bind(any)
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                tokio::spawn(peer_tonic::serve(listener));
                addr
            }
            other => return Err(format!("unknown system {other:?}")),
        };
        println!("listening {addr}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        // Until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin()
                .read_line(&mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                sink.clear();
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    })
}

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(system: &str) -> Result<Self, String> {
        Self::start_with(system, None)
    }

    /// A server process; a NATS system's is told where `nats` is.
    fn start_with(system: &str, nats: Option<SocketAddr>) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        if let Some(nats) = nats {
            command.env(nats::NATS_URL, nats.to_string());
        }
        let mut child = command
            .args(["serve", system])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {system} server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the {system} server said {line:?}"))?;
        Ok(ServerProcess { child, addr })
    }

    /// Peak resident memory of the server process, in KiB (Linux).
    fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident memory of the server process now, in KiB (Linux).
    fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// CPU time the server process has used so far (Linux).
    fn cpu(&self) -> Option<Duration> {
        cpu_time(&format!("/proc/{}/stat", self.child.id()))
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// The user and system CPU time of the process whose `/proc/<pid>/stat`
/// is at `path`, all threads, in clock ticks of 10 ms (Linux's `USER_HZ`).
fn cpu_time(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces: state is field 3, utime 14 and stime 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin asks the server to exit; it gets a moment to do so
        // on its own (so that a profiler around it can write its output),
        // then it is killed.
        drop(self.child.stdin.take());
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection of any system.
#[derive(Clone)]
enum Client {
    Ours(ours::BenchClient),
    Tower(ours::BenchClient<ours::Towered>),
    Balanced(ours::BenchClient<rpc_runtime::balance::BalancedChannel>),
    Nats(ours::BenchClient<rpc_runtime::nats::NatsChannel>),
    NatsFloor(nats::FloorClient),
    Floor(floor::FloorClient),
    Tarpc(peer_tarpc::TarpcBenchClient),
    Tonic(peer_tonic::TonicClient<tonic::transport::Channel>),
}

impl Client {
    async fn connect(system: &str, addr: SocketAddr) -> Result<Client, String> {
        Ok(match system {
            "ours" | "layered" => {
                Client::Ours(ours::connect(addr).await.map_err(|e| e.to_string())?)
            }
            "tower" => Client::Tower(ours::connect_tower(addr).await.map_err(|e| e.to_string())?),
            "plain" => Client::Ours(ours::connect_plain(addr).await.map_err(|e| e.to_string())?),
            "balanced" | "balanced3" => {
                let mut addrs = vec![addr];
                if system == "balanced3" {
                    addrs.extend(EXTRA_SERVERS.get().into_iter().flatten());
                }
                Client::Balanced(
                    ours::connect_balanced(&addrs)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            }
            "floor" => Client::Floor(floor::connect(addr).await.map_err(|e| e.to_string())?),
            "nats" => Client::Nats(nats::connect_ours(addr).await?),
            "natsfloor" => Client::NatsFloor(nats::connect_floor(addr).await?),
            "tarpc" => Client::Tarpc(peer_tarpc::connect(addr).await.map_err(|e| e.to_string())?),
            "tonic" => Client::Tonic(peer_tonic::connect(addr).await?),
            other => return Err(format!("unknown system {other:?}")),
        })
    }

    async fn add(&self, a: u64, b: u64) -> Result<u64, String> {
        match self {
            Client::Ours(c) => c.add(a, b).await.map_err(|e| e.to_string()),
            Client::Tower(c) => c.add(a, b).await.map_err(|e| e.to_string()),
            Client::Balanced(c) => c.add(a, b).await.map_err(|e| e.to_string()),
            Client::Nats(c) => c.add(a, b).await.map_err(|e| e.to_string()),
            Client::NatsFloor(c) => c.add(a, b).await,
            Client::Floor(c) => c
                .add(a, b)
                .await
                .ok_or_else(|| "floor call failed".to_owned()),
            Client::Tarpc(c) => c
                .add(peer_tarpc::ctx(), a, b)
                .await
                .map_err(|e| e.to_string()),
            // tonic's client needs `&mut`; clones share the HTTP/2 connection.
            Client::Tonic(c) => c
                .clone()
                .add(peer_tonic::AddRequest { a, b })
                .await
                .map(|r| r.into_inner().sum)
                .map_err(|e| e.to_string()),
        }
    }

    /// Sends `data`, returns the size of what came back. Each system takes
    /// the payload in its natural type (ours: `Bytes`; the others: a
    /// `Vec<u8>` encoded as bytes).
    async fn echo(&self, data: &Bytes) -> Result<usize, String> {
        match self {
            Client::Ours(c) => c
                .echo(data.clone())
                .await
                .map(|d| d.len())
                .map_err(|e| e.to_string()),
            Client::Tower(c) => c
                .echo(data.clone())
                .await
                .map(|d| d.len())
                .map_err(|e| e.to_string()),
            Client::Balanced(c) => c
                .echo(data.clone())
                .await
                .map(|d| d.len())
                .map_err(|e| e.to_string()),
            Client::Nats(c) => c
                .echo(data.clone())
                .await
                .map(|d| d.len())
                .map_err(|e| e.to_string()),
            Client::NatsFloor(c) => c.echo(data).await,
            Client::Floor(c) => c
                .echo(data.to_vec())
                .await
                .map(|d| d.len())
                .ok_or_else(|| "floor call failed".to_owned()),
            Client::Tarpc(c) => c
                .echo(peer_tarpc::ctx(), serde_bytes::ByteBuf::from(data.to_vec()))
                .await
                .map(|d| d.len())
                .map_err(|e| e.to_string()),
            Client::Tonic(c) => c
                .clone()
                .echo(peer_tonic::Blob { data: data.clone() })
                .await
                .map(|r| r.into_inner().data.len())
                .map_err(|e| e.to_string()),
        }
    }
}

/// What a workload measured.
struct Outcome {
    calls: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    bytes: u64,
    extra: Vec<(&'static str, f64)>,
}

struct Counts {
    latency: u64,
    pipelined: u64,
    conns: u64,
    bulk: u64,
    fanin_conns: u64,
    fanin_calls: u64,
    idle_conns: u64,
}

impl Counts {
    fn new(smoke: bool) -> Counts {
        if smoke {
            Counts {
                latency: 200,
                pipelined: 2_000,
                conns: 2_000,
                bulk: 8,
                fanin_conns: 20,
                fanin_calls: 5,
                idle_conns: 50,
            }
        } else {
            Counts {
                latency: 20_000,
                pipelined: 200_000,
                conns: 200_000,
                bulk: 2_000,
                fanin_conns: 1_000,
                fanin_calls: 20,
                idle_conns: 10_000,
            }
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut smoke = false;
    let mut systems: Vec<String> = SYSTEMS.iter().map(|s| (*s).to_owned()).collect();
    let mut workloads: Vec<String> = WORKLOADS.iter().map(|s| (*s).to_owned()).collect();
    let mut tag = "default".to_owned();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--systems" => systems = list(it.next())?,
            "--workloads" => workloads = list(it.next())?,
            "--tag" => tag = it.next().ok_or("--tag needs a value")?.clone(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let counts = Counts::new(smoke);
    let mut results: Vec<(String, String, f64, f64)> = Vec::new();
    for system in &systems {
        // The NATS systems go through a NATS server of their own.
        let broker = if system.starts_with("nats") {
            Some(nats::NatsServer::start()?)
        } else {
            None
        };
        let server = ServerProcess::start_with(system, broker.as_ref().map(|b| b.addr))?;
        // `balanced3`: a balanced channel over this server and two more.
        let mut extra = Vec::new();
        if system == "balanced3" {
            for _ in 0..2 {
                extra.push(ServerProcess::start(system)?);
            }
            let _ = EXTRA_SERVERS.set(extra.iter().map(|s| s.addr).collect());
        }
        let rt = runtime();
        for workload in &workloads {
            let cpu_before = (cpu_time("/proc/self/stat"), server.cpu());
            let outcome = if workload == "memory" {
                rt.block_on(memory(system, &server, &counts))
            } else {
                rt.block_on(run_workload(system, workload, server.addr, &counts))
            };
            // CPU per call, both processes: what the calls cost, whatever
            // the placement lets them overlap.
            let outcome = outcome.map(|mut outcome| {
                let cpu_after = (cpu_time("/proc/self/stat"), server.cpu());
                if let ((Some(c0), Some(s0)), (Some(c1), Some(s1))) = (cpu_before, cpu_after) {
                    if workload != "memory" {
                        let used = (c1 + s1).saturating_sub(c0 + s0);
                        #[allow(clippy::cast_precision_loss)]
                        let per_call = used.as_secs_f64() * 1e6 / outcome.calls.max(1) as f64;
                        outcome.extra.push(("cpu_us_per_call", per_call));
                    }
                }
                outcome
            });
            let outcome = match outcome {
                Ok(outcome) => outcome,
                // The smoke run must fail loudly; a full run records the
                // failure (one peer refusing connections under `fanin`,
                // say) and goes on with the rest of the matrix.
                Err(error) if smoke => return Err(format!("{system} {workload}: {error}")),
                Err(error) => {
                    eprintln!("rpc-bench: {system} {workload} failed: {error}");
                    let line = serde_json::json!({
                        "tag": tag, "system": system, "workload": workload, "error": error,
                    });
                    println!("{line}");
                    continue;
                }
            };
            let line = report(&tag, system, workload, &outcome);
            println!("{line}");
            let calls_per_sec = per_sec(outcome.calls, outcome.elapsed);
            let p50 = percentile(&outcome.latencies, 0.50).as_secs_f64() * 1e6;
            results.push((system.clone(), workload.clone(), calls_per_sec, p50));
        }
        if let Some(rss) = server.peak_rss_kib() {
            println!(
                "{{\"tag\":\"{tag}\",\"system\":\"{system}\",\"workload\":\"server\",\"peak_rss_kib\":{rss}}}"
            );
        }
    }
    // Our NATS transport against its floor and against our direct TCP.
    for (workload, rate, p50) in results
        .iter()
        .filter(|r| r.0 == "nats")
        .map(|r| (&r.1, r.2, r.3))
    {
        for base in ["natsfloor", "ours"] {
            if let Some((_, _, base_rate, base_p50)) =
                results.iter().find(|r| r.0 == base && &r.1 == workload)
            {
                println!(
                    "{{\"tag\":\"{tag}\",\"compare\":\"nats/{base}\",\"workload\":\"{workload}\",\"throughput_ratio\":{:.3},\"p50_ratio\":{:.3}}}",
                    rate / base_rate,
                    p50 / base_p50
                );
            }
        }
    }
    for (system, workload, rate, p50) in results.iter().filter(|r| r.0 == "ours") {
        for (peer, _, peer_rate, peer_p50) in
            results.iter().filter(|r| r.0 != "ours" && &r.1 == workload)
        {
            println!(
                "{{\"tag\":\"{tag}\",\"compare\":\"{system}/{peer}\",\"workload\":\"{workload}\",\"throughput_ratio\":{:.3},\"p50_ratio\":{:.3}}}",
                rate / peer_rate,
                p50 / peer_p50
            );
        }
    }
    Ok(())
}

fn list(value: Option<&String>) -> Result<Vec<String>, String> {
    let value = value.ok_or("a list is missing")?;
    Ok(value.split(',').map(str::to_owned).collect())
}

async fn run_workload(
    system: &str,
    workload: &str,
    addr: SocketAddr,
    counts: &Counts,
) -> Result<Outcome, String> {
    match workload {
        "latency" => {
            let client = Client::connect(system, addr).await?;
            for i in 0..counts.latency / 10 {
                client.add(i, 1).await?;
            }
            // Allocations in this (the client's) process, per call.
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            let mut outcome = callers(vec![client], 1, counts.latency, Op::Add).await?;
            let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
            #[allow(clippy::cast_precision_loss)]
            let per_call = allocations as f64 / outcome.calls.max(1) as f64;
            outcome.extra.push(("client_allocs_per_call", per_call));
            Ok(outcome)
        }
        "pipelined" => {
            let client = Client::connect(system, addr).await?;
            callers(vec![client], 64, counts.pipelined, Op::Add).await
        }
        "conns" => {
            let mut clients = Vec::new();
            for _ in 0..16 {
                clients.push(Client::connect(system, addr).await?);
            }
            callers(clients, 8, counts.conns, Op::Add).await
        }
        "bulk" => {
            let client = Client::connect(system, addr).await?;
            callers(
                vec![client],
                4,
                counts.bulk,
                Op::Echo(Bytes::from(vec![0xa5u8; 1 << 20])),
            )
            .await
        }
        // 1 MiB that compresses (text) and that does not (noise): what
        // compression gains, and what trying costs.
        "bulktext" | "bulkrandom" => {
            let client = Client::connect(system, addr).await?;
            let payload = if workload == "bulktext" {
                text(1 << 20)
            } else {
                noise(1 << 20)
            };
            callers(vec![client], 4, counts.bulk, Op::Echo(Bytes::from(payload))).await
        }
        "fanin" => fanin(system, addr, counts).await,
        other => Err(format!("unknown workload {other:?}")),
    }
}

/// Text: a sentence over and over (compresses about 100 to 1).
fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// Noise: a xorshift sequence (does not compress).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

#[derive(Clone)]
enum Op {
    Add,
    Echo(Bytes),
}

/// `per_client` callers on each client share `total` calls.
async fn callers(
    clients: Vec<Client>,
    per_client: u64,
    total: u64,
    op: Op,
) -> Result<Outcome, String> {
    let tasks = clients.len() as u64 * per_client;
    let each = total / tasks;
    let started = Instant::now();
    let mut handles = Vec::new();
    for client in clients {
        for t in 0..per_client {
            let client = client.clone();
            let op = op.clone();
            handles.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(usize::try_from(each).unwrap_or(0));
                let mut bytes = 0u64;
                for i in 0..each {
                    let start = Instant::now();
                    match &op {
                        Op::Add => {
                            let sum = client.add(i, t).await?;
                            if sum != i + t {
                                return Err(format!("add({i}, {t}) = {sum}"));
                            }
                        }
                        Op::Echo(data) => {
                            let n = client.echo(data).await?;
                            if n != data.len() {
                                return Err(format!("echo returned {n} bytes of {}", data.len()));
                            }
                            bytes += n as u64;
                        }
                    }
                    latencies.push(start.elapsed());
                }
                Ok::<_, String>((latencies, bytes))
            }));
        }
    }
    let mut latencies = Vec::new();
    let mut bytes = 0;
    for handle in handles {
        let (l, b) = handle.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        bytes += b;
    }
    Ok(Outcome {
        calls: each * tasks,
        elapsed: started.elapsed(),
        latencies,
        bytes,
        extra: Vec::new(),
    })
}

/// Memory per idle connection on the server, and bytes on the wire per
/// small call (through a counting proxy) against the arguments alone.
async fn memory(system: &str, server: &ServerProcess, counts: &Counts) -> Result<Outcome, String> {
    let started = Instant::now();
    let base = server.rss_kib().ok_or("cannot read the server's memory")?;
    let mut idle = Vec::new();
    for _ in 0..counts.idle_conns {
        let client = Client::connect(system, server.addr).await?;
        // One call each, so every connection is fully set up on both sides.
        client.add(1, 2).await?;
        idle.push(client);
    }
    let loaded = server.rss_kib().ok_or("cannot read the server's memory")?;
    drop(idle);
    #[allow(clippy::cast_precision_loss)]
    let per_conn = loaded.saturating_sub(base) as f64 / counts.idle_conns.max(1) as f64;

    let (proxy, sent, received) = counting_proxy(server.addr).await?;
    let client = Client::connect(system, proxy).await?;
    client.add(1, 2).await?;
    let (s0, r0) = (sent.load(Ordering::SeqCst), received.load(Ordering::SeqCst));
    let calls = 1_000u64;
    for i in 0..calls {
        client.add(i % 200, 7).await?;
    }
    let (s1, r1) = (sent.load(Ordering::SeqCst), received.load(Ordering::SeqCst));
    // The arguments alone: bincode (standard config) of two small u64s.
    let payload = bincode::serde::encode_to_vec((5u64, 7u64), bincode::config::standard())
        .map_err(|e| e.to_string())?
        .len();
    #[allow(clippy::cast_precision_loss)]
    let request = (s1 - s0) as f64 / calls as f64;
    #[allow(clippy::cast_precision_loss)]
    let response = (r1 - r0) as f64 / calls as f64;
    #[allow(clippy::cast_precision_loss)]
    let payload = payload as f64;
    Ok(Outcome {
        calls,
        elapsed: started.elapsed(),
        latencies: Vec::new(),
        bytes: 0,
        extra: vec![
            (
                "idle_connections",
                f64::from(u32::try_from(counts.idle_conns).unwrap_or(u32::MAX)),
            ),
            ("server_kib_per_idle_connection", per_conn),
            ("request_bytes_per_call", request),
            ("response_bytes_per_call", response),
            ("args_bytes", payload),
            ("request_overhead_bytes", request - payload),
        ],
    })
}

/// A loopback proxy to `target` that counts the bytes each way.
async fn counting_proxy(
    target: SocketAddr,
) -> Result<
    (
        SocketAddr,
        std::sync::Arc<AtomicU64>,
        std::sync::Arc<AtomicU64>,
    ),
    String,
> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let received = std::sync::Arc::new(AtomicU64::new(0));
    let (s, r) = (sent.clone(), received.clone());
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut ir, mut iw) = inbound.into_split();
            let (mut or, mut ow) = outbound.into_split();
            let (s, r) = (s.clone(), r.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = ir.read(&mut buf).await {
                    if n == 0 || ow.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    s.fetch_add(n as u64, Ordering::SeqCst);
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = or.read(&mut buf).await {
                    if n == 0 || iw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    r.fetch_add(n as u64, Ordering::SeqCst);
                }
            });
        }
    });
    Ok((addr, sent, received))
}

/// Many connections, each opened and used for a few calls.
async fn fanin(system: &str, addr: SocketAddr, counts: &Counts) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in 0..counts.fanin_conns {
        let system = system.to_owned();
        let calls = counts.fanin_calls;
        handles.push(tokio::spawn(async move {
            let connect_start = Instant::now();
            let client = Client::connect(&system, addr).await?;
            let connect = connect_start.elapsed();
            let mut latencies = Vec::new();
            for i in 0..calls {
                let start = Instant::now();
                client.add(c, i).await?;
                latencies.push(start.elapsed());
            }
            Ok::<_, String>((connect, latencies, client))
        }));
    }
    let mut latencies = Vec::new();
    let mut connects = Vec::new();
    let mut clients = Vec::new();
    for handle in handles {
        let (connect, l, client) = handle.await.map_err(|e| e.to_string())??;
        connects.push(connect);
        latencies.extend(l);
        clients.push(client);
    }
    let elapsed = started.elapsed();
    drop(clients);
    let connect_p50 = percentile(&connects, 0.5).as_secs_f64() * 1e6;
    Ok(Outcome {
        calls: counts.fanin_conns * counts.fanin_calls,
        elapsed,
        latencies,
        bytes: 0,
        extra: vec![("connect_p50_us", connect_p50)],
    })
}

#[allow(clippy::cast_precision_loss)]
fn per_sec(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(tag: &str, system: &str, workload: &str, outcome: &Outcome) -> String {
    let mut line = format!(
        "{{\"tag\":\"{tag}\",\"system\":\"{system}\",\"workload\":\"{workload}\",\"calls\":{},\"secs\":{:.4},\"calls_per_sec\":{:.0},\"p50_us\":{:.1},\"p99_us\":{:.1},\"mb_per_sec\":{:.1}",
        outcome.calls,
        outcome.elapsed.as_secs_f64(),
        per_sec(outcome.calls, outcome.elapsed),
        percentile(&outcome.latencies, 0.50).as_secs_f64() * 1e6,
        percentile(&outcome.latencies, 0.99).as_secs_f64() * 1e6,
        per_sec(outcome.bytes, outcome.elapsed) / 1e6,
    );
    for (key, value) in &outcome.extra {
        line.push_str(&format!(",\"{key}\":{value:.2}"));
    }
    line.push('}');
    line
}

/// calls/s, p50 µs, MB/s, CPU µs per call.
type Figures = (f64, f64, f64, f64);

/// The `memory` workload's figures, in table order.
const MEMORY_KEYS: [&str; 3] = [
    "server_kib_per_idle_connection",
    "request_bytes_per_call",
    "response_bytes_per_call",
];

/// Medians over runs, as a markdown table with ratios of ours to each peer.
fn table(files: &[String]) -> Result<(), String> {
    use std::collections::BTreeMap;
    let mut samples: BTreeMap<(String, String, String), Vec<Figures>> = BTreeMap::new();
    let mut memory_rows: BTreeMap<(String, String), [Vec<f64>; MEMORY_KEYS.len() + 1]> =
        BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let tag = value["tag"].as_str().unwrap_or_default().to_owned();
            if let (Some(system), Some("memory")) =
                (value["system"].as_str(), value["workload"].as_str())
            {
                let entry = memory_rows.entry((tag, system.to_owned())).or_default();
                for (column, key) in entry.iter_mut().zip(MEMORY_KEYS) {
                    if let Some(v) = value[key].as_f64() {
                        column.push(v);
                    }
                }
                continue;
            }
            if let (Some(system), Some(allocs)) = (
                value["system"].as_str(),
                value["client_allocs_per_call"].as_f64(),
            ) {
                let entry = memory_rows.entry((tag, system.to_owned())).or_default();
                entry[MEMORY_KEYS.len()].push(allocs);
            }
            let (Some(tag), Some(system), Some(workload), Some(rate)) = (
                value["tag"].as_str(),
                value["system"].as_str(),
                value["workload"].as_str(),
                value["calls_per_sec"].as_f64(),
            ) else {
                continue;
            };
            let p50 = value["p50_us"].as_f64().unwrap_or(0.0);
            let mbps = value["mb_per_sec"].as_f64().unwrap_or(0.0);
            let cpu = value["cpu_us_per_call"].as_f64().unwrap_or(0.0);
            samples
                .entry((tag.to_owned(), workload.to_owned(), system.to_owned()))
                .or_default()
                .push((rate, p50, mbps, cpu));
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    let mut medians: BTreeMap<(String, String), BTreeMap<String, Figures>> = BTreeMap::new();
    for ((tag, workload, system), runs) in samples {
        let mut rates: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let mut p50s: Vec<f64> = runs.iter().map(|r| r.1).collect();
        let mut mbps: Vec<f64> = runs.iter().map(|r| r.2).collect();
        let mut cpu: Vec<f64> = runs.iter().map(|r| r.3).collect();
        medians.entry((tag, workload)).or_default().insert(
            system,
            (
                median(&mut rates),
                median(&mut p50s),
                median(&mut mbps),
                median(&mut cpu),
            ),
        );
    }
    println!("| run | workload | system | calls/s | p50 µs | MB/s | CPU µs per call | ours ÷ it (calls/s) | ours ÷ it (p50) | ours ÷ it (CPU) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for ((tag, workload), systems) in &medians {
        let ours = systems.get("ours").copied();
        for (system, (rate, p50, mbps, cpu)) in systems {
            let (ratio, p50_ratio, cpu_ratio) = match (ours, system.as_str()) {
                (Some((our_rate, our_p50, _, our_cpu)), s) if s != "ours" => (
                    format!("{:.2}×", our_rate / rate),
                    format!("{:.2}×", our_p50 / p50),
                    format!("{:.2}×", our_cpu / cpu),
                ),
                _ => (String::new(), String::new(), String::new()),
            };
            println!("| {tag} | {workload} | {system} | {rate:.0} | {p50:.1} | {mbps:.0} | {cpu:.2} | {ratio} | {p50_ratio} | {cpu_ratio} |");
        }
    }
    println!();
    println!(
        "| run | system | server KiB per idle connection | request bytes per small call | response bytes | client allocations per call |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for ((tag, system), mut columns) in memory_rows {
        let cells: Vec<String> = columns
            .iter_mut()
            .map(|column| format!("{:.1}", median(column)))
            .collect();
        println!("| {tag} | {system} | {} |", cells.join(" | "));
    }
    Ok(())
}
