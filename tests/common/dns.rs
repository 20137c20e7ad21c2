//! A DNS server for discovery tests: answers A and SRV queries over UDP on
//! 127.0.0.1 from records the test sets and changes, and NXDOMAIN for any
//! other name, so a test never asks the machine's resolver.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What the server answers, by lower-case name with its trailing dot.
#[derive(Default)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    srv: HashMap<String, Vec<(u16, String)>>,
}

/// A running test DNS server; it stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    ttl: u32,
    /// How many NXDOMAIN answers the server has sent.
    nxdomains: tokio::sync::watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

fn key(name: &str) -> String {
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name
}

impl DnsServer {
    /// Starts a server whose records live `ttl` seconds.
    pub async fn start(ttl: u32) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let (count, nxdomains) = tokio::sync::watch::channel(0);
        let task = tokio::spawn(serve(socket, Arc::clone(&zone), ttl, count));
        DnsServer {
            addr,
            zone,
            ttl,
            nxdomains,
            task,
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The time to live of every record.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Waits until the server has answered NXDOMAIN `n` more times.
    pub async fn nxdomains(&mut self, n: u64) {
        let start = *self.nxdomains.borrow_and_update();
        while *self.nxdomains.borrow_and_update() < start + n {
            self.nxdomains.changed().await.unwrap();
        }
    }

    /// `name`'s A records from now on (none: NXDOMAIN).
    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        let mut zone = self.zone.lock().unwrap();
        if ips.is_empty() {
            zone.a.remove(&key(name));
        } else {
            zone.a.insert(key(name), ips.to_vec());
        }
    }

    /// `name`'s SRV records from now on: each a port and a target.
    pub fn set_srv(&self, name: &str, targets: &[(u16, &str)]) {
        let targets = targets.iter().map(|(p, t)| (*p, key(t))).collect();
        self.zone.lock().unwrap().srv.insert(key(name), targets);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    socket: UdpSocket,
    zone: Arc<Mutex<Zone>>,
    ttl: u32,
    nxdomains: tokio::sync::watch::Sender<u64>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let reply = answer(&request, &zone.lock().unwrap(), ttl);
        if reply.metadata.response_code == ResponseCode::NXDomain {
            nxdomains.send_modify(|n| *n += 1);
        }
        if let Ok(bytes) = reply.to_vec() {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

fn answer(request: &Message, zone: &Zone, ttl: u32) -> Message {
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let mut found = false;
    for query in &request.queries {
        reply.add_query(query.clone());
        let name = key(&query.name().to_ascii());
        let records: Vec<RData> = match query.query_type() {
            RecordType::A => zone
                .a
                .get(&name)
                .into_iter()
                .flatten()
                .map(|ip| RData::A(A(*ip)))
                .collect(),
            RecordType::SRV => zone
                .srv
                .get(&name)
                .into_iter()
                .flatten()
                .map(|(port, target)| {
                    RData::SRV(SRV::new(0, 0, *port, Name::from_str(target).unwrap()))
                })
                .collect(),
            _ => Vec::new(),
        };
        found |= zone.a.contains_key(&name) || zone.srv.contains_key(&name);
        for data in records {
            reply.add_answer(Record::from_rdata(query.name().clone(), ttl, data));
        }
    }
    if !found {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply
}
