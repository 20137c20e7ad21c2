//! The old build at work: the peer process as a server, or as a client.
//! Each is killed if dropped while running, and every wait is bounded.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long the peer may take to start serving, or to stop.
const START_STOP: Duration = Duration::from_secs(10);

/// How long the peer may take to make all its calls (each has a timeout of
/// its own, too).
const CALLS: Duration = Duration::from_secs(60);

/// The old build's server: `compat-peer serve`.
pub struct Server {
    child: Child,
    /// Its address, as it printed it.
    pub addr: String,
    /// The rest of its output, kept open so that it can still write.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Server {
    /// Starts `peer` serving with `args`; returns once it has printed its
    /// address.
    pub async fn start(peer: &Path, args: &[String]) -> Server {
        let mut child = Command::new(peer)
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the old server");
        let stdout = child.stdout.take().expect("the old server's output");
        let mut lines = BufReader::new(stdout).lines();
        match tokio::time::timeout(START_STOP, lines.next_line()).await {
            Ok(Ok(Some(addr))) => Server {
                child,
                addr,
                _stdout: lines,
            },
            other => panic!("the old server ({args:?}) printed no address: {other:?}"),
        }
    }

    /// Closes its input, its signal to shut down, and checks that it exits
    /// cleanly.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        match tokio::time::timeout(START_STOP, self.child.wait()).await {
            Ok(Ok(status)) => assert!(status.success(), "the old server exited with {status}"),
            other => panic!("the old server did not exit: {other:?}"),
        }
    }
}

/// Runs `compat-peer call` with `args`: every kind of call to the server at
/// `addr`. Returns what it printed of the server's view of the connection
/// (`negotiated: ...`); panics with the failing call if one fails.
pub async fn call(peer: &Path, args: &[String], addr: &str) -> String {
    let output = Command::new(peer)
        .arg("call")
        .args(args)
        .args(["--addr", addr])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(CALLS, output).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("the old client did not run: {e}"),
        Err(_) => panic!("the old client ({args:?}) did not finish within {CALLS:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the old client ({args:?}) failed, {}: {}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.trim_end().to_owned()
}
