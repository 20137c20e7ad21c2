//! Where the calls go: an address (`host:port`, `unix:PATH`,
//! `nats://host:port`) and the connection options, made into a carrier of
//! calls.

use std::path::PathBuf;
use std::time::Duration;

use rpc_runtime::nats::NatsChannel;
use rpc_runtime::{tls, Channel, ChannelBuilder, RpcError};

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// TCP, by host name or address and port.
    Tcp(String),
    /// A Unix socket.
    Unix(PathBuf),
    /// A NATS server; calls go through subjects under `prefix`.
    Nats(String),
}

impl Address {
    /// Reads `host:port`, `unix:PATH` or `nats://host:port`.
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Some(server) = text.strip_prefix("nats://") {
            if server.is_empty() {
                return Err("a NATS address needs a server: nats://host:port".to_owned());
            }
            return Ok(Address::Nats(server.to_owned()));
        }
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if text
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            return Err(format!(
                "`{text}` is not an address: write host:port, unix:PATH or nats://host:port"
            ));
        }
        Ok(Address::Tcp(text.to_owned()))
    }
}

/// TLS settings for a TCP address.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

impl Tls {
    /// Whether any TLS option was given.
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.server_name.is_some()
    }
}

/// A connection to a server, of either kind.
pub enum Carrier {
    Channel(Channel),
    Nats(NatsChannel),
}

/// Where to connect, with every option checked and every file read: a
/// mistake found here is the command's, found before anything is sent.
pub struct Plan {
    target: Target,
}

enum Target {
    Tcp(String, ChannelBuilder),
    Unix(PathBuf, ChannelBuilder),
    Nats(String),
}

/// Checks the options for `address` and reads the TLS files they name.
pub fn plan(address: &Address, timeout: Duration, tls: &Tls) -> Result<Plan, String> {
    let builder = || Channel::builder().timeout(timeout).connect_timeout(timeout);
    let target = match address {
        Address::Tcp(addr) => Target::Tcp(addr.clone(), with_tls(builder(), addr, tls)?),
        Address::Unix(path) => {
            refuse_tls(tls, "a Unix socket")?;
            Target::Unix(path.clone(), builder())
        }
        Address::Nats(server) => {
            refuse_tls(
                tls,
                "a NATS address (the NATS connection's own TLS is not configured here)",
            )?;
            Target::Nats(server.clone())
        }
    };
    Ok(Plan { target })
}

/// TLS options are for TCP addresses only: given for another, they would
/// be silently unused.
fn refuse_tls(tls: &Tls, what: &str) -> Result<(), String> {
    if tls.is_set() {
        return Err(format!(
            "--ca, --cert, --key and --server-name apply to host:port addresses, not to {what}"
        ));
    }
    Ok(())
}

/// `builder`, with TLS if `tls` asks for it, to `addr`.
fn with_tls(builder: ChannelBuilder, addr: &str, tls: &Tls) -> Result<ChannelBuilder, String> {
    let Some(ca) = &tls.ca else {
        if tls.is_set() {
            return Err("TLS needs --ca, the roots the server's certificate chains to".to_owned());
        }
        return Ok(builder);
    };
    let failed = |e: RpcError| e.to_string();
    let roots = tls::load_certs(ca).map_err(|e| format!("--ca {}: {e}", ca.display()))?;
    let identity = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some((
            tls::load_certs(cert).map_err(|e| format!("--cert {}: {e}", cert.display()))?,
            tls::load_private_key(key).map_err(|e| format!("--key {}: {e}", key.display()))?,
        )),
        (None, None) => None,
        _ => return Err("--cert and --key go together".to_owned()),
    };
    let config = tls::client_config(roots, identity).map_err(failed)?;
    let name = match &tls.server_name {
        Some(name) => name.as_str(),
        None => host(addr),
    };
    builder.tls(config, name).map_err(failed)
}

/// The host of `host:port`, without the brackets of an IPv6 address.
fn host(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
}

/// Connects as `plan` says.
pub async fn connect(
    plan: Plan,
    timeout: Duration,
    nats_prefix: Option<&str>,
) -> Result<Carrier, String> {
    let failed = |e: RpcError| e.to_string();
    match plan.target {
        Target::Tcp(addr, builder) => Ok(Carrier::Channel(
            builder.connect(addr.as_str()).await.map_err(failed)?,
        )),
        Target::Unix(path, builder) => Ok(Carrier::Channel(
            builder.connect_unix(path).await.map_err(failed)?,
        )),
        Target::Nats(server) => {
            let client = tokio::time::timeout(timeout, async_nats::connect(server.as_str()))
                .await
                .map_err(|_| {
                    format!("the NATS server at {server} did not answer within {timeout:?}")
                })?
                .map_err(|e| format!("cannot reach the NATS server at {server}: {e}"))?;
            let mut builder = NatsChannel::builder(client).timeout(timeout);
            if let Some(prefix) = nats_prefix {
                builder = builder.prefix(prefix);
            }
            Ok(Carrier::Nats(builder.build().map_err(failed)?))
        }
    }
}

/// A duration: `500ms`, `10s`, `2m`, or a number of seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (500ms, 10s, 2m)"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("`{text}`: the units are ms, s and m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{duration, host, plan, Address, Tls};

    #[test]
    fn addresses() {
        assert_eq!(
            Address::parse("127.0.0.1:7878"),
            Ok(Address::Tcp("127.0.0.1:7878".into()))
        );
        assert_eq!(
            Address::parse("localhost:1"),
            Ok(Address::Tcp("localhost:1".into()))
        );
        assert_eq!(
            Address::parse("nats://127.0.0.1:4222"),
            Ok(Address::Nats("127.0.0.1:4222".into()))
        );
        assert_eq!(
            Address::parse("unix:/tmp/s"),
            Ok(Address::Unix("/tmp/s".into()))
        );
        assert!(Address::parse("127.0.0.1").is_err());
        assert!(Address::parse(":80").is_err());
        assert!(Address::parse("nats://").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(host("example.com:443"), "example.com");
        assert_eq!(host("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host("[::1]:7878"), "::1");
    }

    #[test]
    fn tls_options_only_for_tcp() {
        let tls = Tls {
            server_name: Some("example.com".into()),
            ..Tls::default()
        };
        let second = Duration::from_secs(1);
        for address in ["unix:/tmp/s", "nats://127.0.0.1:4222", "127.0.0.1:1"] {
            let address = Address::parse(address).unwrap();
            let refused = plan(&address, second, &tls).err().unwrap();
            assert!(refused.contains("--ca"), "{refused}");
        }
        let address = Address::parse("unix:/tmp/s").unwrap();
        assert!(plan(&address, second, &Tls::default()).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("soon").is_err());
        assert!(duration("5h").is_err());
        assert!(duration("-1s").is_err());
    }
}
