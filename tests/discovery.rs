//! Discovery for balanced channels: DNS (A and SRV records, from a DNS
//! server the test runs on 127.0.0.1) picked up again after the time to
//! live, a failed lookup that keeps the last good set, and a stream of
//! changes from a registry of the user's own.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::dns::DnsServer;
use common::{Calc, CalculatorClient, CalculatorServer};
use rpc_runtime::balance::{BalancedChannel, Change, Discover, Dns};
use rpc_runtime::{Channel, Server};

const PROMPT: Duration = Duration::from_secs(5);

async fn calculator(addr: SocketAddr) -> std::io::Result<Server> {
    Server::builder()
        .add_service(CalculatorServer::new(Calc))
        .bind(addr)
        .await
}

/// Servers on 127.0.0.1, 127.0.0.2, ... all on one port (A records name
/// addresses, not ports).
async fn on_one_port(n: u8) -> (u16, Vec<Server>) {
    'port: for _ in 0..20 {
        let first = calculator("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = first.local_addr().port();
        let mut servers = vec![first];
        for i in 2..=n {
            match calculator(SocketAddr::from(([127, 0, 0, i], port))).await {
                Ok(server) => servers.push(server),
                Err(_) => continue 'port,
            }
        }
        return (port, servers);
    }
    panic!("no port free on every loopback address");
}

fn ips(n: u8) -> Vec<Ipv4Addr> {
    (1..=n).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect()
}

fn balanced(discover: Discover) -> BalancedChannel {
    Channel::builder()
        .timeout(PROMPT)
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .balance(discover)
}

/// The set's endpoints, once it equals `wanted` (within `PROMPT`).
async fn until_endpoints(channel: &BalancedChannel, wanted: &BTreeSet<String>) {
    tokio::time::timeout(PROMPT, async {
        loop {
            let now: BTreeSet<String> = channel.endpoints().into_iter().map(|(k, _)| k).collect();
            if &now == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("endpoints {:?}, wanted {wanted:?}", channel.endpoints()));
}

fn keys(port: u16, ips: &[Ipv4Addr]) -> BTreeSet<String> {
    ips.iter()
        .map(|ip| SocketAddr::from((*ip, port)).to_string())
        .collect()
}

#[tokio::test]
async fn dns_records_that_grow_from_two_to_three_are_picked_up_and_a_failed_lookup_keeps_them() {
    let (port, _servers) = on_one_port(3).await;
    let mut dns = DnsServer::start(1).await;
    dns.set_a("replicas.test", &ips(2));
    let channel = balanced(
        Dns::host("replicas.test", port)
            .name_server(dns.addr())
            .min_interval(Duration::from_millis(100))
            .retry(Duration::from_millis(100))
            .into(),
    );
    let client = CalculatorClient::new(channel.clone());
    assert_eq!(client.add(1, 2).await.unwrap(), 3);
    until_endpoints(&channel, &keys(port, &ips(2))).await;

    dns.set_a("replicas.test", &ips(3));
    until_endpoints(&channel, &keys(port, &ips(3))).await;

    // The name disappears: lookups fail, the set stays, calls go on.
    dns.set_a("replicas.test", &[]);
    tokio::time::timeout(PROMPT, dns.nxdomains(2))
        .await
        .expect("the name is looked up again");
    assert_eq!(
        channel.endpoints().len(),
        3,
        "an NXDOMAIN keeps the last good set"
    );
    for i in 0..30 {
        assert_eq!(client.add(i, 1).await.unwrap(), i + 1);
    }

    // Records that shrink remove endpoints.
    dns.set_a("replicas.test", &ips(1));
    until_endpoints(&channel, &keys(port, &ips(1))).await;
    assert_eq!(client.add(2, 2).await.unwrap(), 4);
}

#[tokio::test]
async fn srv_records_give_each_target_with_its_port() {
    let a = calculator("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let b = calculator("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dns = DnsServer::start(1).await;
    dns.set_a("a.replicas.test", &[Ipv4Addr::LOCALHOST]);
    dns.set_a("b.replicas.test", &[Ipv4Addr::LOCALHOST]);
    dns.set_srv(
        "_calc._tcp.replicas.test",
        &[
            (a.local_addr().port(), "a.replicas.test"),
            (b.local_addr().port(), "b.replicas.test"),
        ],
    );
    let channel = balanced(
        Dns::srv("_calc._tcp.replicas.test")
            .name_server(dns.addr())
            .into(),
    );
    let client = CalculatorClient::new(channel.clone());
    assert_eq!(client.add(20, 22).await.unwrap(), 42);
    let wanted: BTreeSet<String> = [a.local_addr().to_string(), b.local_addr().to_string()].into();
    until_endpoints(&channel, &wanted).await;
}

#[tokio::test]
async fn a_name_that_never_resolves_fails_calls_within_their_deadline() {
    let dns = DnsServer::start(1).await;
    let channel = balanced(
        Dns::host("nowhere.test", 7000)
            .name_server(dns.addr())
            .into(),
    );
    let client = CalculatorClient::new(channel).with_timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    let error = client.add(1, 1).await.unwrap_err();
    assert!(started.elapsed() < PROMPT);
    assert!(
        matches!(error, rpc_runtime::RpcError::Unavailable { ref message } if message.contains("discovery")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stream_of_changes_adds_and_removes_endpoints() {
    let a = calculator("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let b = calculator("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (key_a, key_b) = (a.local_addr().to_string(), b.local_addr().to_string());
    let (changes, rx) = tokio::sync::mpsc::unbounded_channel();
    let channel = balanced(Discover::changes(tokio_stream_from(rx)));
    let client = CalculatorClient::new(channel.clone());
    changes.send(Change::Insert(key_a.clone())).unwrap();
    assert_eq!(client.add(1, 1).await.unwrap(), 2);

    changes.send(Change::Insert(key_b.clone())).unwrap();
    until_endpoints(&channel, &[key_a.clone(), key_b.clone()].into()).await;
    changes.send(Change::Remove(key_a.clone())).unwrap();
    until_endpoints(&channel, &[key_b.clone()].into()).await;
    // `a` is gone: shut it down, and every call still succeeds, on `b`.
    a.shutdown().await;
    for i in 0..50 {
        assert_eq!(client.add(i, 1).await.unwrap(), i + 1);
    }
}

/// A stream of what `rx` receives.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
