//! Metrics in Prometheus's text format: `metrics-exporter-prometheus` as
//! the `metrics` recorder, a server and a client making a few calls, and
//! the scrape endpoint a Prometheus server would read.
//!
//! ```text
//! cargo run --example prometheus            # makes calls, prints one scrape
//! cargo run --example prometheus -- serve   # and keeps serving /metrics
//! ```
//!
//! The recorder is installed before the first call: each method's metrics
//! are registered with the recorder present at its first call.

use metrics_exporter_prometheus::PrometheusBuilder;
use rpc_runtime::{rpc_service, Channel, Server, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A counter service.
#[rpc_service(name = "demo.Tally")]
pub trait Tally {
    /// Adds `n`; refuses zero.
    async fn add(&self, n: u32) -> Result<u32, Status>;
}

struct Adder;

impl Tally for Adder {
    async fn add(&self, n: u32) -> Result<u32, Status> {
        if n == 0 {
            return Err(Status::invalid_argument("nothing to add"));
        }
        Ok(n + 1)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handle = PrometheusBuilder::new().install_recorder()?;

    let server = Server::builder()
        .add_service(TallyServer::new(Adder))
        .bind("127.0.0.1:0")
        .await?;
    let client = TallyClient::new(Channel::connect(server.local_addr()).await?);
    for n in 0..5 {
        let _ = client.add(n).await;
    }

    // The scrape endpoint: every request gets the current text.
    let scrape = TcpListener::bind("127.0.0.1:0").await?;
    let at = scrape.local_addr()?;
    let serving = tokio::spawn(async move {
        while let Ok((mut socket, _)) = scrape.accept().await {
            let text = handle.render();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    text.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(text.as_bytes()).await;
            });
        }
    });

    // What a Prometheus server would read.
    let mut socket = TcpStream::connect(at).await?;
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await?;
    let mut response = String::new();
    socket.read_to_string(&mut response).await?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    for line in body.lines().filter(|line| line.starts_with("rpc_")) {
        println!("{line}");
    }
    assert!(body.contains(
        r#"rpc_server_calls_finished_total{service="demo.Tally",method="add",code="OK"} 4"#
    ));
    assert!(body.contains(r#"code="INVALID_ARGUMENT"} 1"#));

    if std::env::args().nth(1).as_deref() == Some("serve") {
        println!("serving http://{at}/metrics; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    serving.abort();
    server.shutdown().await;
    Ok(())
}
