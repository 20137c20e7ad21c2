//! What NATS tooling sees of a server: the NATS "micro" service
//! discovery protocol (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, alone, with
//! a service's name, and with its name and the server's), answered for
//! each service the server hosts, with per-method statistics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};

use super::subjects::Subjects;
use crate::wire::version::{OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// The verbs of the discovery protocol.
const VERBS: [&str; 3] = ["PING", "INFO", "STATS"];

/// A service's name as the micro protocol allows it (`A-Z a-z 0-9 - _`):
/// every other character of its wire name becomes `_`
/// (`example.KeyValue` is `example_KeyValue`).
pub(crate) fn micro_name(wire_name: &str) -> String {
    wire_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One method's counts.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Answered calls, and the time they took, in nanoseconds.
    timed: AtomicU64,
    nanos: AtomicU64,
    last_error: Mutex<String>,
}

/// One hosted service.
struct Hosted {
    wire: String,
    name: String,
    subject: String,
    group: String,
    /// Its methods by name, sorted, with their ids.
    methods: Vec<(String, u32)>,
}

/// What a server says of itself, and its counts.
pub(crate) struct Stats {
    instance: String,
    version: String,
    started: String,
    services: Vec<Hosted>,
    counts: HashMap<u32, Counts>,
    /// The frame limit and the call window callers keep to.
    limits: (usize, usize),
}

impl Stats {
    /// The statistics of a server named `instance` serving `methods`
    /// (id, service, method) in the queue groups `group` gives.
    pub(crate) fn new<'a>(
        instance: &str,
        version: &str,
        subjects: &Subjects,
        methods: impl Iterator<Item = (u32, &'a str, &'a str)>,
        group: impl Fn(&str) -> String,
    ) -> Self {
        let mut services: HashMap<String, Hosted> = HashMap::new();
        let mut counts = HashMap::new();
        for (id, service, method) in methods {
            counts.insert(id, Counts::default());
            services
                .entry(service.to_owned())
                .or_insert_with(|| Hosted {
                    wire: service.to_owned(),
                    name: micro_name(service),
                    subject: subjects.call(service),
                    group: group(service),
                    methods: Vec::new(),
                })
                .methods
                .push((method.to_owned(), id));
        }
        let mut services: Vec<Hosted> = services.into_values().collect();
        services.sort_by(|a, b| a.wire.cmp(&b.wire));
        for hosted in &mut services {
            hosted.methods.sort();
        }
        Stats {
            instance: instance.to_owned(),
            version: version.to_owned(),
            started: rfc3339(SystemTime::now()),
            services,
            counts,
            limits: (0, 0),
        }
    }

    /// The discovery subjects to subscribe to.
    pub(crate) fn subjects(&self) -> Vec<String> {
        let mut subjects: Vec<String> = VERBS.iter().map(|v| format!("$SRV.{v}")).collect();
        for hosted in &self.services {
            for verb in VERBS {
                subjects.push(format!("$SRV.{verb}.{}", hosted.name));
                subjects.push(format!("$SRV.{verb}.{}.{}", hosted.name, self.instance));
            }
        }
        subjects
    }

    /// A request for `method` arrived.
    pub(crate) fn request(&self, method: u32) {
        if let Some(counts) = self.counts.get(&method) {
            counts.requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A call of `method` was answered after `took`, with `error` if it
    /// failed.
    pub(crate) fn finished(&self, method: u32, took: Duration, error: Option<&str>) {
        let Some(counts) = self.counts.get(&method) else {
            return;
        };
        counts.timed.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        counts.nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some(error) = error {
            counts.errors.fetch_add(1, Ordering::Relaxed);
            let mut last = counts
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            last.clear();
            last.push_str(error);
        }
    }

    /// The answers to a discovery request on `subject`: one per service
    /// it names (every hosted one, for a subject without a name).
    pub(crate) fn answer(&self, subject: &str) -> Vec<Bytes> {
        let mut tokens = subject.split('.');
        let (Some("$SRV"), Some(verb)) = (tokens.next(), tokens.next()) else {
            return Vec::new();
        };
        let name = tokens.next();
        let id = tokens.next();
        if tokens.next().is_some() || id.is_some_and(|id| id != self.instance) {
            return Vec::new();
        }
        self.services
            .iter()
            .filter(|hosted| name.is_none_or(|name| name == hosted.name))
            .filter_map(|hosted| {
                let value = match verb {
                    "PING" => self.ping(hosted),
                    "INFO" => self.info(hosted),
                    "STATS" => self.stats(hosted),
                    _ => return None,
                };
                serde_json::to_vec(&value).ok().map(Bytes::from)
            })
            .collect()
    }

    fn metadata(&self, hosted: &Hosted) -> Value {
        json!({
            "rpc.service": hosted.wire,
            "rpc.instance": self.instance,
            // What a greeting would say (section 10.5 of PROTOCOL.md).
            "rpc.oldest_version": OLDEST_PROTOCOL_VERSION.to_string(),
            "rpc.version": PROTOCOL_VERSION.to_string(),
            "rpc.extensions": "",
            "rpc.max_frame_length": self.limits.0.to_string(),
            "rpc.max_in_flight": self.limits.1.to_string(),
        })
    }

    /// These statistics, for a server that accepts frames of up to
    /// `max_frame_length` bytes and runs `max_in_flight` calls of each
    /// caller at once.
    pub(crate) fn with_limits(mut self, max_frame_length: usize, max_in_flight: usize) -> Self {
        self.limits = (max_frame_length, max_in_flight);
        self
    }

    fn ping(&self, hosted: &Hosted) -> Value {
        json!({
            "type": "io.nats.micro.v1.ping_response",
            "name": hosted.name,
            "id": self.instance,
            "version": self.version,
            "metadata": self.metadata(hosted),
        })
    }

    fn info(&self, hosted: &Hosted) -> Value {
        let endpoints: Vec<Value> = hosted
            .methods
            .iter()
            .map(|(method, id)| {
                json!({
                    "name": method,
                    "subject": hosted.subject,
                    "queue_group": hosted.group,
                    "metadata": { "rpc.method_id": format!("{id:#010x}") },
                })
            })
            .collect();
        json!({
            "type": "io.nats.micro.v1.info_response",
            "name": hosted.name,
            "id": self.instance,
            "version": self.version,
            "description": format!("rpc service {}", hosted.wire),
            "metadata": self.metadata(hosted),
            "endpoints": endpoints,
        })
    }

    fn stats(&self, hosted: &Hosted) -> Value {
        let endpoints: Vec<Value> = hosted
            .methods
            .iter()
            .map(|(method, id)| {
                let counts = self.counts.get(id);
                let load = |a: Option<&AtomicU64>| a.map_or(0, |a| a.load(Ordering::Relaxed));
                let timed = load(counts.map(|c| &c.timed));
                let nanos = load(counts.map(|c| &c.nanos));
                let last_error = counts
                    .map(|c| {
                        c.last_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .clone()
                    })
                    .unwrap_or_default();
                json!({
                    "name": method,
                    "subject": hosted.subject,
                    "queue_group": hosted.group,
                    "num_requests": load(counts.map(|c| &c.requests)),
                    "num_errors": load(counts.map(|c| &c.errors)),
                    "last_error": last_error,
                    "processing_time": nanos,
                    "average_processing_time": nanos.checked_div(timed).unwrap_or(0),
                })
            })
            .collect();
        json!({
            "type": "io.nats.micro.v1.stats_response",
            "name": hosted.name,
            "id": self.instance,
            "version": self.version,
            "metadata": self.metadata(hosted),
            "started": self.started,
            "endpoints": endpoints,
        })
    }
}

/// `time` in UTC, as RFC 3339 (`2026-12-02T10:00:00.123Z`).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{micro_name, rfc3339, Stats};
    use crate::nats::subjects::Subjects;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_212_800_250);
        assert_eq!(rfc3339(t), "2026-12-02T12:00:00.250Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn wire_names_become_micro_names() {
        assert_eq!(micro_name("example.KeyValue"), "example_KeyValue");
        assert_eq!(micro_name("a-b_c9"), "a-b_c9");
    }

    #[test]
    fn answers_name_the_services_asked_for() {
        let subjects = Subjects::new("rpc").unwrap();
        let methods = [(1, "a.One", "x"), (2, "a.One", "y"), (3, "b.Two", "z")];
        let stats = Stats::new("i1", "1.0.0", &subjects, methods.into_iter(), str::to_owned);
        assert_eq!(stats.answer("$SRV.PING").len(), 2);
        assert_eq!(stats.answer("$SRV.INFO.a_One").len(), 1);
        assert_eq!(stats.answer("$SRV.STATS.a_One.i1").len(), 1);
        assert!(stats.answer("$SRV.STATS.a_One.other").is_empty());
        assert!(stats.answer("$SRV.PING.nobody").is_empty());
        stats.request(1);
        stats.finished(1, Duration::from_millis(2), Some("boom"));
        let body: serde_json::Value =
            serde_json::from_slice(&stats.answer("$SRV.STATS.a_One")[0]).unwrap();
        let x = &body["endpoints"][0];
        assert_eq!(x["name"], "x");
        assert_eq!(x["num_requests"], 1);
        assert_eq!(x["num_errors"], 1);
        assert_eq!(x["last_error"], "boom");
        assert_eq!(x["processing_time"], 2_000_000);
    }
}
