//! `rpc`: list, describe and call the methods of any server of
//! rpc-runtime, with JSON, from the server's reflection service.
//!
//! ```text
//! rpc list 127.0.0.1:7878
//! rpc describe 127.0.0.1:7878 example.KeyValue
//! rpc call 127.0.0.1:7878 example.KeyValue.put '["greeting","hello"]'
//! rpc call 127.0.0.1:7878 example.KeyValue.get '{"key":"greeting"}'
//! rpc health 127.0.0.1:7878
//! ```
//!
//! Exit status: 0 when the call succeeded; 1 when it failed (an
//! application error, printed as JSON on stderr, or the runtime's error);
//! 2 when the command cannot be made into a call (bad JSON, a value that
//! does not fit the argument's type, an unknown method), before anything
//! is sent; or a line of a client stream that does not fit (the call has
//! then begun, and fails with the stream). When stdout is closed before
//! the output ends (`rpc call … | head`), the call is given up and the
//! status is 0, as for a reader that had what it wanted.

/// `println!` that fails the command, instead of panicking, when stdout
/// cannot be written.
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        writeln!(::std::io::stdout().lock(), $($arg)*).map_err($crate::Failure::Output)?
    }};
}

mod call;
mod connect;
mod decode;
mod encode;
mod inspect;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rpc_runtime::reflection::{ReflectionClient, ServiceDescriptor};
use rpc_runtime::{Invoke, RpcError};

use crate::connect::{Address, Carrier, Tls};

/// Lists, describes and calls the methods of an rpc-runtime server, with
/// JSON, from its reflection service.
#[derive(Debug, Parser)]
#[command(name = "rpc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    options: Options,
}

/// What every command takes.
#[derive(Debug, Args)]
struct Options {
    /// How long a call (and the connection) may take: 500ms, 10s, 2m.
    #[arg(long, global = true, default_value = "10s", value_parser = connect::duration)]
    timeout: Duration,
    /// A metadata entry the call carries, `key=value` (repeatable).
    #[arg(short = 'H', long = "header", global = true, value_parser = metadata)]
    headers: Vec<(String, String)>,
    /// TLS: the roots (PEM) the server's certificate must chain to.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// TLS: this client's certificate chain (PEM), for mutual TLS.
    #[arg(long, global = true, requires = "key")]
    cert: Option<PathBuf>,
    /// TLS: this client's private key (PEM), for mutual TLS.
    #[arg(long, global = true, requires = "cert")]
    key: Option<PathBuf>,
    /// TLS: the name the server's certificate must carry (default: the
    /// address's host).
    #[arg(long, global = true)]
    server_name: Option<String>,
    /// NATS: the subjects' prefix the servers were given (default `rpc`).
    #[arg(long, global = true)]
    nats_prefix: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The services a server hosts, and their methods, one per line.
    List {
        /// host:port, unix:PATH or nats://host:port.
        #[arg(value_parser = Address::parse)]
        address: Address,
        /// The descriptions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The full description of a service or one method, types expanded.
    Describe {
        /// host:port, unix:PATH or nats://host:port.
        #[arg(value_parser = Address::parse)]
        address: Address,
        /// SERVICE or SERVICE.METHOD.
        target: String,
        /// The description as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Calls a method with JSON arguments; prints the answer as JSON.
    ///
    /// The arguments are an array (in order) or an object (by name),
    /// `[]` when left out. A method that answers with a stream prints one
    /// JSON value per line as the items arrive; one that takes a stream
    /// reads its items from stdin, one JSON value per line.
    Call {
        /// host:port, unix:PATH or nats://host:port.
        #[arg(value_parser = Address::parse)]
        address: Address,
        /// SERVICE.METHOD.
        method: String,
        /// The arguments, as JSON.
        arguments: Option<String>,
    },
    /// Whether the server (or one of its services) is serving; exit status
    /// 0 only when it is.
    Health {
        /// host:port, unix:PATH or nats://host:port.
        #[arg(value_parser = Address::parse)]
        address: Address,
        /// The service (default: the whole server).
        service: Option<String>,
    },
}

/// How a command failed, and the exit status that says so.
#[derive(Debug)]
pub enum Failure {
    /// The command cannot be made into a call: nothing was sent. Status 2.
    Usage(String),
    /// The call failed; the message is the runtime's. Status 1.
    Remote(String),
    /// The application answered with its error, printed as JSON. Status 1.
    Application(serde_json::Value),
    /// Stdout could not be written: status 0 if its reader closed it (it
    /// had what it wanted), 1 otherwise.
    Output(std::io::Error),
}

impl From<RpcError> for Failure {
    fn from(error: RpcError) -> Self {
        Failure::Remote(error.to_string())
    }
}

fn metadata(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rpc: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // A read of stdin (a client stream the call no longer takes) may still
    // be blocked: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("rpc: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Remote(message)) => {
            eprintln!("rpc: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Application(error)) => {
            eprintln!("{error}");
            ExitCode::from(1)
        }
        Err(Failure::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            eprintln!("rpc: cannot write the output: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let options = cli.options;
    let address = match &cli.command {
        Command::List { address, .. }
        | Command::Describe { address, .. }
        | Command::Call { address, .. }
        | Command::Health { address, .. } => address.clone(),
    };
    let tls = Tls {
        ca: options.ca.clone(),
        cert: options.cert.clone(),
        key: options.key.clone(),
        server_name: options.server_name.clone(),
    };
    // Every option is checked before anything is sent (status 2).
    let plan = connect::plan(&address, options.timeout, &tls).map_err(Failure::Usage)?;
    let carrier = connect::connect(plan, options.timeout, options.nats_prefix.as_deref())
        .await
        .map_err(Failure::Remote)?;
    match carrier {
        Carrier::Channel(channel) => command(channel, cli.command, &options).await,
        Carrier::Nats(channel) => command(channel, cli.command, &options).await,
    }
}

async fn command<C>(channel: C, command: Command, options: &Options) -> Result<ExitCode, Failure>
where
    C: Invoke + Clone + Send + Sync + 'static,
{
    match command {
        Command::List { json, .. } => inspect::list(&channel, json).await,
        Command::Describe { target, json, .. } => inspect::describe(&channel, &target, json).await,
        Command::Call {
            method, arguments, ..
        } => {
            call::call(
                channel,
                &method,
                arguments.as_deref(),
                options.timeout,
                &options.headers,
            )
            .await
        }
        Command::Health { service, .. } => {
            inspect::health(channel, service.unwrap_or_default()).await
        }
    }
}

/// The description of `service`, from the server's reflection service.
async fn descriptor<C: Invoke + Clone>(
    channel: &C,
    service: &str,
) -> Result<ServiceDescriptor, Failure> {
    let reflection = ReflectionClient::new(channel.clone());
    let json = match reflection.describe(service.to_owned()).await {
        Ok(json) => json,
        Err(RpcError::Status(status)) if status.code() == rpc_runtime::Code::NOT_FOUND => {
            let hosted = reflection.list().await.unwrap_or_default();
            return Err(Failure::Usage(format!(
                "the server hosts no service `{service}`; it hosts: {}",
                hosted.join(", ")
            )));
        }
        Err(error) => return Err(reflection_failed(error)),
    };
    serde_json::from_str(&json).map_err(|e| {
        Failure::Remote(format!(
            "the server's description of `{service}` is not readable: {e}"
        ))
    })
}

/// A failed call of the reflection service, explained.
fn reflection_failed(error: RpcError) -> Failure {
    match error {
        RpcError::UnknownService { .. } | RpcError::UnknownMethod { .. } => Failure::Remote(
            "the server does not answer reflection (it was built with ServerBuilder::reflection(false), or is not an rpc-runtime server)"
                .to_owned(),
        ),
        error => error.into(),
    }
}
