//! Where the calls go: an address (`host:port`, `unix:PATH`,
//! `nats://host:port`) and the connection options, made into a carrier of
//! calls.

use std::path::PathBuf;
use std::time::Duration;

use rpc_runtime::nats::NatsChannel;
use rpc_runtime::{tls, Channel, RpcError};

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

/// A connection to a server, of either kind.
pub enum Carrier {
    Channel(Channel),
    Nats(NatsChannel),
}

/// Connects to `address`.
pub async fn connect(
    address: &Address,
    timeout: Duration,
    tls: &Tls,
    nats_prefix: Option<&str>,
) -> Result<Carrier, String> {
    let failed = |e: RpcError| e.to_string();
    match address {
        Address::Tcp(addr) => {
            let mut builder = Channel::builder().timeout(timeout).connect_timeout(timeout);
            if let Some(ca) = &tls.ca {
                let roots =
                    tls::load_certs(ca).map_err(|e| format!("--ca {}: {e}", ca.display()))?;
                let identity = match (&tls.cert, &tls.key) {
                    (Some(cert), Some(key)) => Some((
                        tls::load_certs(cert)
                            .map_err(|e| format!("--cert {}: {e}", cert.display()))?,
                        tls::load_private_key(key)
                            .map_err(|e| format!("--key {}: {e}", key.display()))?,
                    )),
                    (None, None) => None,
                    _ => return Err("--cert and --key go together".to_owned()),
                };
                let config = tls::client_config(roots, identity).map_err(failed)?;
                let host = addr
                    .rsplit_once(':')
                    .map_or(addr.as_str(), |(host, _)| host);
                let name = tls.server_name.as_deref().unwrap_or(host);
                builder = builder.tls(config, name).map_err(failed)?;
            } else if tls.cert.is_some() || tls.key.is_some() || tls.server_name.is_some() {
                return Err(
                    "TLS needs --ca, the roots the server's certificate chains to".to_owned(),
                );
            }
            Ok(Carrier::Channel(
                builder.connect(addr.as_str()).await.map_err(failed)?,
            ))
        }
        Address::Unix(path) => Ok(Carrier::Channel(
            Channel::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .connect_unix(path)
                .await
                .map_err(failed)?,
        )),
        Address::Nats(server) => {
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

    use super::{duration, Address};

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
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("soon").is_err());
        assert!(duration("5h").is_err());
        assert!(duration("-1s").is_err());
    }
}
