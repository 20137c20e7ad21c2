//! The `rpc` binary against real servers: every type shape the macro
//! accepts, streams, errors and exit statuses, over TCP, TLS and NATS.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use rpc_runtime::{rpc_service, CallContext, Server, ServerBuilder, Status, StreamExt, Streaming};
use serde::{Deserialize, Serialize};

#[path = "../../tests/common/nats.rs"]
#[allow(dead_code)]
mod nats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Circle { center: Point, radius: f64 },
    Polygon(Vec<Point>),
    Segment(Point, Point),
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meters(pub f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nothing;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreError {
    NotFound(String),
    Full { capacity: usize },
}

/// Every shape of method.
#[rpc_service(name = "test.Shapes")]
pub trait Shapes {
    /// No arguments, a value back.
    async fn zero(&self) -> u8;
    #[allow(clippy::too_many_arguments)]
    async fn many(
        &self,
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        e: i8,
        f: i16,
        g: i32,
        h: i64,
        i: bool,
        j: char,
        k: String,
        l: f32,
    ) -> (String, f32);
    async fn big(&self, x: u128, y: i128) -> (u128, i128);
    async fn structs(&self, p: Point, shape: Shape) -> Shape;
    async fn option(&self, v: Option<Vec<(u8, String)>>) -> Option<usize>;
    async fn map(&self, m: HashMap<String, Vec<u32>>) -> BTreeMap<u32, String>;
    async fn pairs(&self, m: BTreeMap<Point, u8>) -> BTreeMap<u8, Point>;
    async fn tuple(&self, t: (u8, (String, bool))) -> ((String, bool), u8);
    async fn array(&self, a: [u8; 3]) -> [u8; 3];
    async fn newtypes(&self, m: Meters, n: Nothing) -> (Meters, Nothing);
    async fn result(&self, key: String) -> Result<Point, StoreError>;
    async fn status(&self, x: f64) -> Result<f64, Status>;
    async fn boxed(&self, b: Box<Point>) -> Box<i32>;
    async fn unit(&self) -> ();
    async fn defaulted(&self, x: u32, #[rpc(default)] y: u32) -> u32;
    /// Fire and forget.
    #[rpc(oneway)]
    async fn log(&self, line: String);
    async fn logged(&self) -> Vec<String>;
    async fn header(&self, key: String) -> Option<String>;
    async fn sleep(&self, ms: u64) -> ();
    async fn count(&self, n: u32) -> Streaming<u32>;
    async fn refusable(&self, n: u32) -> Result<Streaming<u32>, StoreError>;
    async fn sum(&self, xs: Streaming<i64>) -> i64;
    async fn mirror(&self, points: Streaming<Point>) -> Streaming<Point>;
    async fn calls(&self) -> usize;
}

#[derive(Default)]
struct Impl {
    log: Mutex<Vec<String>>,
    calls: AtomicUsize,
}

impl Impl {
    fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl Shapes for Arc<Impl> {
    async fn zero(&self) -> u8 {
        7
    }
    async fn many(
        &self,
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        e: i8,
        f: i16,
        g: i32,
        h: i64,
        i: bool,
        j: char,
        k: String,
        l: f32,
    ) -> (String, f32) {
        (
            format!("{a} {b} {c} {d} {e} {f} {g} {h} {i} {j} {k} {l}"),
            l,
        )
    }
    async fn big(&self, x: u128, y: i128) -> (u128, i128) {
        (x + 1, y - 1)
    }
    async fn structs(&self, p: Point, shape: Shape) -> Shape {
        self.called();
        match shape {
            Shape::Polygon(mut points) => {
                points.push(p);
                Shape::Polygon(points)
            }
            Shape::Circle { radius, .. } => Shape::Circle { center: p, radius },
            other => other,
        }
    }
    async fn option(&self, v: Option<Vec<(u8, String)>>) -> Option<usize> {
        v.map(|v| v.iter().map(|(n, s)| usize::from(*n) + s.len()).sum())
    }
    async fn map(&self, m: HashMap<String, Vec<u32>>) -> BTreeMap<u32, String> {
        m.into_iter().map(|(k, v)| (v.iter().sum(), k)).collect()
    }
    async fn pairs(&self, m: BTreeMap<Point, u8>) -> BTreeMap<u8, Point> {
        m.into_iter().map(|(k, v)| (v, k)).collect()
    }
    async fn tuple(&self, t: (u8, (String, bool))) -> ((String, bool), u8) {
        (t.1, t.0)
    }
    async fn array(&self, mut a: [u8; 3]) -> [u8; 3] {
        a.reverse();
        a
    }
    async fn newtypes(&self, m: Meters, n: Nothing) -> (Meters, Nothing) {
        (Meters(m.0 * 2.0), n)
    }
    async fn result(&self, key: String) -> Result<Point, StoreError> {
        match key.as_str() {
            "origin" => Ok(Point { x: 0, y: 0 }),
            "full" => Err(StoreError::Full { capacity: 3 }),
            _ => Err(StoreError::NotFound(key)),
        }
    }
    async fn status(&self, x: f64) -> Result<f64, Status> {
        if x < 0.0 {
            Err(Status::invalid_argument("negative"))
        } else {
            Ok(x.sqrt())
        }
    }
    async fn boxed(&self, b: Box<Point>) -> Box<i32> {
        Box::new(b.x * b.y)
    }
    async fn unit(&self) {}
    async fn defaulted(&self, x: u32, y: u32) -> u32 {
        x * 10 + y
    }
    async fn log(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
    async fn logged(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    async fn header(&self, key: String) -> Option<String> {
        let cx = CallContext::current()?;
        cx.metadata().get(&key)?.as_str().map(str::to_owned)
    }
    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    async fn count(&self, n: u32) -> Streaming<u32> {
        Streaming::from_iter(1..=n)
    }
    async fn refusable(&self, n: u32) -> Result<Streaming<u32>, StoreError> {
        if n == 0 {
            Err(StoreError::NotFound("zero".into()))
        } else {
            Ok(Streaming::from_iter(0..n))
        }
    }
    async fn sum(&self, xs: Streaming<i64>) -> i64 {
        self.called();
        xs.filter_map(|x| async move { x.ok() })
            .fold(0, |a, b| async move { a + b })
            .await
    }
    async fn mirror(&self, points: Streaming<Point>) -> Streaming<Point> {
        Streaming::from_stream(
            points.filter_map(|p| async move { p.ok().map(|p| Point { x: p.y, y: p.x }) }),
        )
    }
    async fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl PartialOrd for Point {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Point {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.x, self.y).cmp(&(other.x, other.y))
    }
}
impl Eq for Point {}

/// A server on its own runtime, for as long as this lives.
struct Running {
    addr: String,
    state: Arc<Impl>,
    _server: Server,
    _runtime: tokio::runtime::Runtime,
}

fn serve(builder: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = Arc::new(Impl::default());
    let server = runtime.block_on(async {
        builder(Server::builder().add_service(ShapesServer::new(Arc::clone(&state))))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
    });
    Running {
        addr: server.local_addr().to_string(),
        state,
        _server: server,
        _runtime: runtime,
    }
}

fn rpc() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpc"));
    command.timeout(Duration::from_secs(30));
    command
}

/// `rpc call ADDR test.Shapes.METHOD ARGS` (no `ARGS` when empty): its
/// stdout, on success.
fn call(running: &Running, method: &str, args: &str) -> String {
    let mut command = rpc();
    command.args(["call", &running.addr, &format!("test.Shapes.{method}")]);
    if !args.is_empty() {
        command.arg(args);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{method} {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The failure of a call: its exit status and stderr.
fn fails(running: &Running, method: &str, args: &str) -> (i32, String) {
    let output = rpc()
        .args([
            "call",
            &running.addr,
            &format!("test.Shapes.{method}"),
            args,
        ])
        .output()
        .unwrap();
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn every_type_shape_round_trips_through_json() {
    let s = serve(|b| b);
    let cases = [
        ("zero", "[]", "7"),
        ("zero", "", "7"),
        (
            "many",
            r#"[1, 2, 3, 4, -5, -6, -7, -8, true, "x", "k", 0.1]"#,
            // An f32 prints as its own shortest decimal, not its widening.
            r#"["1 2 3 4 -5 -6 -7 -8 true x k 0.1",0.1]"#,
        ),
        (
            "big",
            r#"["340282366920938463463374607431768211454", "-170141183460469231731687303715884105727"]"#,
            r#"["340282366920938463463374607431768211455","-170141183460469231731687303715884105728"]"#,
        ),
        ("big", "[1, 2]", "[2,1]"),
        (
            "structs",
            r#"[{"x": 1, "y": 2}, {"Circle": {"center": {"x": 0, "y": 0}, "radius": 2.5}}]"#,
            r#"{"Circle":{"center":{"x":1,"y":2},"radius":2.5}}"#,
        ),
        (
            "structs",
            r#"{"shape": {"Polygon": [{"x": 5, "y": 6}]}, "p": {"y": 2, "x": 1}}"#,
            r#"{"Polygon":[{"x":5,"y":6},{"x":1,"y":2}]}"#,
        ),
        (
            "structs",
            r#"[{"x": 1, "y": 2}, {"Segment": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}]"#,
            r#"{"Segment":[{"x":1,"y":1},{"x":2,"y":2}]}"#,
        ),
        ("structs", r#"[{"x": 1, "y": 2}, "Empty"]"#, r#""Empty""#),
        ("option", r#"[[[1, "ab"], [2, "c"]]]"#, "6"),
        ("option", "[null]", "null"),
        (
            "map",
            r#"[{"a": [1, 2], "b": [10]}]"#,
            r#"{"3":"a","10":"b"}"#,
        ),
        (
            "pairs",
            r#"[[[{"x": 1, "y": 2}, 9]]]"#,
            r#"{"9":{"x":1,"y":2}}"#,
        ),
        ("tuple", r#"[[1, ["s", true]]]"#, r#"[["s",true],1]"#),
        ("array", "[[1, 2, 3]]", "[3,2,1]"),
        ("newtypes", "[1.25, null]", "[2.5,null]"),
        ("result", r#"["origin"]"#, r#"{"x":0,"y":0}"#),
        ("status", "[16]", "4.0"),
        ("boxed", r#"[{"x": 3, "y": 4}]"#, "12"),
        ("unit", "[]", "null"),
        ("defaulted", "[4, 2]", "42"),
        ("defaulted", "[4]", "40"),
        ("defaulted", r#"{"x": 5}"#, "50"),
        ("header", r#"["absent"]"#, "null"),
    ];
    for (method, args, expected) in cases {
        assert_eq!(
            call(&s, method, args),
            format!("{expected}\n"),
            "{method} {args}"
        );
    }
}

#[test]
fn the_kv_demo_and_metadata() {
    let s = serve(|b| b);
    let output = rpc()
        .args([
            "-H",
            "who=ada",
            "call",
            &s.addr,
            "test.Shapes.header",
            r#"["who"]"#,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "\"ada\"\n");
    // A one-way call prints nothing; the server has run it once the next
    // call on a new connection is answered... after it, in order.
    rpc()
        .args(["call", &s.addr, "test.Shapes.log", r#"["hello"]"#])
        .assert()
        .success()
        .stdout("");
    let logged = (0..100)
        .map(|_| call(&s, "logged", "[]"))
        .find(|out| out != "[]\n");
    assert_eq!(logged.as_deref(), Some("[\"hello\"]\n"));
}

#[test]
fn application_errors_and_statuses_fail_with_status_1() {
    let s = serve(|b| b);
    assert_eq!(
        fails(&s, "result", r#"["full"]"#),
        (1, "{\"Full\":{\"capacity\":3}}\n".to_owned())
    );
    assert_eq!(
        fails(&s, "result", r#"["k"]"#),
        (1, "{\"NotFound\":\"k\"}\n".to_owned())
    );
    let (code, stderr) = fails(&s, "status", "[-1]");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("INVALID_ARGUMENT") && stderr.contains("negative"),
        "{stderr}"
    );
    let (code, stderr) = fails(&s, "refusable", "[0]");
    assert_eq!((code, stderr.as_str()), (1, "{\"NotFound\":\"zero\"}\n"));
    // A deadline.
    let output = rpc()
        .args([
            "--timeout",
            "100ms",
            "call",
            &s.addr,
            "test.Shapes.sleep",
            "[5000]",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("deadline") || stderr.contains("timed out"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_fail_with_status_2_before_anything_is_sent() {
    let s = serve(|b| b);
    let cases = [
        ("structs", "[{", "the arguments are not JSON"),
        (
            "structs",
            r#"[{"x": 1, "y": 2}, {"Circle": {"center": {"x": "a", "y": 0}, "radius": 1}}]"#,
            "argument `shape` at `.Circle.center.x`: expected i32, found \"a\"",
        ),
        (
            "structs",
            r#"[{"x": 1}, "Empty"]"#,
            "argument `p` at `.y`: missing field `y` (i32)",
        ),
        (
            "structs",
            r#"[{"x": 1, "y": 2, "z": 3}, "Empty"]"#,
            "argument `p`: Point has no field `z`; its fields are: x, y",
        ),
        (
            "structs",
            r#"[{"x": 1, "y": 2}, "Square"]"#,
            "argument `shape`: Shape has no variant `Square`; its variants are: Circle, Polygon, Segment, Empty",
        ),
        (
            "structs",
            r#"[{"x": 1, "y": 2}]"#,
            "argument `shape` (Shape) is missing",
        ),
        (
            "structs",
            r#"{"p": {"x": 1, "y": 2}, "q": 1}"#,
            "`structs` has no argument `q`",
        ),
        ("many", r#"[300]"#, "argument `a`: expected u8, found 300"),
        ("map", r#"[{"a": [1, -2]}]"#, "argument `m` at `{\"a\"}[1]`: expected u32, found -2"),
        ("array", "[[1, 2]]", "argument `a`: expected 3 elements ((u8, u8, u8)), found 2"),
        ("zero", "[1]", "`zero` takes 0 arguments (), 1 given"),
        ("nope", "[]", "has no method `nope`; its methods are: zero, many"),
    ];
    for (method, args, message) in cases {
        let (code, stderr) = fails(&s, method, args);
        assert_eq!(code, 2, "{method} {args}: {stderr}");
        assert!(stderr.contains(message), "{method} {args}: {stderr}");
    }
    let output = rpc()
        .args(["call", &s.addr, "test.Nope.x", "[]"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("the server hosts no service `test.Nope`; it hosts: rpc.health.v1.Health, rpc.reflection.v1.Reflection, test.Shapes"));
    // None of them reached the handler.
    assert_eq!(s.state.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn streams_print_a_line_per_item_and_read_one_per_line() {
    let s = serve(|b| b);
    assert_eq!(call(&s, "count", "[3]"), "1\n2\n3\n");
    assert_eq!(call(&s, "refusable", "[2]"), "0\n1\n");
    rpc()
        .args(["call", &s.addr, "test.Shapes.sum"])
        .write_stdin("1\n2\n\n39\n")
        .assert()
        .success()
        .stdout("42\n");
    rpc()
        .args(["call", &s.addr, "test.Shapes.mirror"])
        .write_stdin("{\"x\": 1, \"y\": 2}\n{\"x\": 3, \"y\": 4}\n")
        .assert()
        .success()
        .stdout("{\"x\":2,\"y\":1}\n{\"x\":4,\"y\":3}\n");
    // A line that does not fit fails the stream: status 2, the line named.
    let output = rpc()
        .args(["call", &s.addr, "test.Shapes.sum"])
        .write_stdin("1\n\"two\"\n3\n")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("stream item on line 2: expected i64, found \"two\""),
        "{stderr}"
    );
}

#[test]
fn list_describe_and_health() {
    let s = serve(|b| b);
    let list = rpc().args(["list", &s.addr]).output().unwrap();
    assert!(list.status.success());
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.starts_with("rpc.health.v1.Health\n"), "{list}");
    assert!(list.contains("\ntest.Shapes\n  zero() -> u8 "), "{list}");
    assert!(list.contains("  log(line: String) "), "{list}");
    assert!(list.contains("Fire and forget.\n"), "{list}");

    let describe = rpc()
        .args(["describe", &s.addr, "test.Shapes.structs"])
        .output()
        .unwrap();
    assert!(describe.status.success());
    let describe = String::from_utf8(describe.stdout).unwrap();
    assert!(
        describe.contains("  structs(p: Point, shape: Shape) -> Shape\n"),
        "{describe}"
    );
    assert!(
        describe.contains("  struct Point { x: i32, y: i32 }\n"),
        "{describe}"
    );
    assert!(
        describe.contains(
            "  enum Shape { Circle { center: Point, radius: f64 }, Polygon(Vec<Point>), Segment(Point, Point), Empty }\n"
        ),
        "{describe}"
    );
    assert!(!describe.contains("zero()"), "{describe}");
    let json = rpc()
        .args(["describe", &s.addr, "test.Shapes", "--json"])
        .output()
        .unwrap();
    let parsed: rpc_runtime::reflection::ServiceDescriptor =
        serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(parsed, ShapesClient::descriptor());

    rpc()
        .args(["health", &s.addr])
        .assert()
        .success()
        .stdout("SERVING\n");
    rpc()
        .args(["health", &s.addr, "test.Shapes"])
        .assert()
        .success()
        .stdout("SERVING\n");
    rpc()
        .args(["health", &s.addr, "test.Nope"])
        .assert()
        .code(1)
        .stdout("SERVICE_UNKNOWN\n");
}

#[test]
fn a_server_without_reflection_or_a_wrong_address() {
    let s = serve(|b| b.reflection(false));
    let output = rpc().args(["list", &s.addr]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not answer reflection"));
    // Health still answers.
    rpc().args(["health", &s.addr]).assert().success();
    rpc().args(["list", "127.0.0.1"]).assert().code(2);
    // TLS options where they cannot apply are refused, not ignored.
    for address in ["unix:/nonexistent", "nats://127.0.0.1:1"] {
        let output = rpc()
            .args(["list", address, "--server-name", "example.com"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{address}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("apply to host:port addresses"),
            "{address}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    drop(s);
}

/// A reader that stops reading (`rpc call … | head -1`) ends the call:
/// the stream is given up and the status is 0, with no panic.
#[test]
fn a_closed_stdout_ends_a_stream() {
    use std::io::BufRead;
    let s = serve(|b| b);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rpc"))
        .args(["call", &s.addr, "test.Shapes.count", "[4000000000]"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert_eq!(first, "1\n");
    drop(lines);
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = waited
        .recv_timeout(Duration::from_secs(30))
        .expect("rpc kept streaming into a closed pipe")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn over_nats() {
    let nats = nats::NatsProcess::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _server = runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        rpc_runtime::nats::serve(
            client,
            Server::builder().add_service(ShapesServer::new(Arc::new(Impl::default()))),
            rpc_runtime::nats::ServeOptions::new(),
        )
        .await
        .unwrap()
    });
    let addr = format!("nats://127.0.0.1:{}", nats.port);
    let list = rpc().args(["list", &addr]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("\ntest.Shapes\n"));
    rpc()
        .args(["call", &addr, "test.Shapes.count", "[2]"])
        .assert()
        .success()
        .stdout("1\n2\n");
    rpc()
        .args(["call", &addr, "test.Shapes.result", r#"{"key": "origin"}"#])
        .assert()
        .success()
        .stdout("{\"x\":0,\"y\":0}\n");
}

#[test]
fn over_tls() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rpc_runtime::tls;

    let dir = std::env::temp_dir().join(format!("rpc-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test ca");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let ca_path = write("ca.pem", &ca_cert.pem());
    let cert_path = write("leaf.pem", &leaf.pem());
    let key_path = write("leaf.key", &key.serialize_pem());
    let config = tls::server_config(
        tls::load_certs(&cert_path).unwrap(),
        tls::load_private_key(&key_path).unwrap(),
        None,
    )
    .unwrap();
    let s = serve(|b| b.tls(config));
    let ca_arg = ca_path.to_str().unwrap();
    rpc()
        .args([
            "--ca",
            ca_arg,
            "--server-name",
            "localhost",
            "call",
            &s.addr,
            "test.Shapes.zero",
        ])
        .assert()
        .success()
        .stdout("7\n");
    // Without TLS, the server is not understood.
    rpc()
        .args(["call", &s.addr, "test.Shapes.zero"])
        .assert()
        .code(1);

    // Mutual TLS: a server that wants a client certificate from the CA.
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["client.test".to_owned()]).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "cli");
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
    let client_cert_path = write("client.pem", &client_cert.pem());
    let client_key_path = write("client.key", &client_key.serialize_pem());
    let mutual = tls::server_config(
        tls::load_certs(&cert_path).unwrap(),
        tls::load_private_key(&key_path).unwrap(),
        Some(tls::load_certs(&ca_path).unwrap()),
    )
    .unwrap();
    let m = serve(|b| b.tls(mutual));
    let base = ["--ca", ca_arg, "--server-name", "localhost"];
    rpc()
        .args(base)
        .args(["call", &m.addr, "test.Shapes.zero"])
        .assert()
        .code(1);
    rpc()
        .args(base)
        .args(["--cert", client_cert_path.to_str().unwrap()])
        .args(["--key", client_key_path.to_str().unwrap()])
        .args(["call", &m.addr, "test.Shapes.zero"])
        .assert()
        .success()
        .stdout("7\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's two-terminal demo, against the `kv_server` example's own
/// service.
#[path = "../../examples/kv/service.rs"]
#[allow(dead_code)]
mod kv;

#[test]
fn the_readme_demo_against_the_key_value_service() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        Server::builder()
            .add_service(kv::KeyValueServer::new(kv::Store::default()))
            .bind("127.0.0.1:0")
            .await
            .unwrap()
    });
    let addr = server.local_addr().to_string();
    let list = rpc().args(["list", &addr]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.starts_with("example.KeyValue\n  put(key: String, value: String) -> Option<String>  Stores `value` under `key`"),
        "{list}"
    );
    rpc()
        .args([
            "call",
            &addr,
            "example.KeyValue.put",
            r#"["greeting","hello"]"#,
        ])
        .assert()
        .success()
        .stdout("null\n");
    rpc()
        .args([
            "call",
            &addr,
            "example.KeyValue.get",
            r#"{"key":"greeting"}"#,
        ])
        .assert()
        .success()
        .stdout("\"hello\"\n");
}
