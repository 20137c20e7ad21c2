//! The names of the metrics and of their labels (see the [table](super)).

/// Label: the service's wire name (`example.KeyValue`).
pub const SERVICE: &str = "service";
/// Label: the method's wire name (`get`).
pub const METHOD: &str = "method";
/// Label: how a call ended: `OK`, a status code's name
/// (`DEADLINE_EXCEEDED`, `UNAVAILABLE`, ...), or `OTHER` for an
/// application's own status codes.
pub const CODE: &str = "code";
/// Label: which transport carried the bytes (`stream` for TCP, Unix
/// sockets and other byte streams, TLS included; `nats`).
pub const TRANSPORT: &str = "transport";

/// Counter: calls a client started.
pub const CLIENT_CALLS_STARTED: &str = "rpc_client_calls_started_total";
/// Counter: calls a client saw end, by `code`.
pub const CLIENT_CALLS_FINISHED: &str = "rpc_client_calls_finished_total";
/// Histogram, in seconds: from the call to its answer (for a stream, to
/// its end).
pub const CLIENT_CALL_DURATION: &str = "rpc_client_call_duration_seconds";
/// Gauge: calls a client has made that have not ended.
pub const CLIENT_CALLS_IN_FLIGHT: &str = "rpc_client_calls_in_flight";
/// Counter: items a client sent in its calls' streams.
pub const CLIENT_STREAM_ITEMS_SENT: &str = "rpc_client_stream_items_sent_total";
/// Counter: items a client received in answer streams.
pub const CLIENT_STREAM_ITEMS_RECEIVED: &str = "rpc_client_stream_items_received_total";
/// Counter: calls sent again after their connection broke (idempotent
/// calls, and calls the server said it did not run).
pub const CLIENT_RETRIES: &str = "rpc_client_retries_total";
/// Counter: calls that never reached a server and went to another one.
pub const CLIENT_FAILOVERS: &str = "rpc_client_failovers_total";
/// Counter: connections a channel opened again after one ended.
pub const CLIENT_RECONNECTS: &str = "rpc_client_reconnects_total";
/// Gauge: open client connections (sessions a client dialed).
pub const CLIENT_CONNECTIONS: &str = "rpc_client_connections";

/// Counter: calls a server started (after routing: calls to a method it
/// does not have are not counted).
pub const SERVER_CALLS_STARTED: &str = "rpc_server_calls_started_total";
/// Counter: calls a server ended, by `code` (refusals included).
pub const SERVER_CALLS_FINISHED: &str = "rpc_server_calls_finished_total";
/// Histogram, in seconds: from a request's arrival to its answer (for a
/// stream, to its end).
pub const SERVER_CALL_DURATION: &str = "rpc_server_call_duration_seconds";
/// Gauge: calls a server is running.
pub const SERVER_CALLS_IN_FLIGHT: &str = "rpc_server_calls_in_flight";
/// Counter: items handlers sent in answer streams.
pub const SERVER_STREAM_ITEMS_SENT: &str = "rpc_server_stream_items_sent_total";
/// Counter: items handlers received in their callers' streams.
pub const SERVER_STREAM_ITEMS_RECEIVED: &str = "rpc_server_stream_items_received_total";
/// Gauge: open server connections (sessions a server accepted, one per
/// caller inbox over NATS).
pub const SERVER_CONNECTIONS: &str = "rpc_server_connections";

/// Counter: bytes written to links, frame headers included, by
/// `transport`.
pub const BYTES_SENT: &str = "rpc_bytes_sent_total";
/// Counter: bytes read from links, frame headers included, by
/// `transport`.
pub const BYTES_RECEIVED: &str = "rpc_bytes_received_total";
