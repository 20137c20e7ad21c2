//! What calls look like from outside: a `tracing` span per call on both
//! sides, metrics through the `metrics` facade, and (feature
//! `opentelemetry`) the caller's trace context carried to the server.
//!
//! Nothing here needs setting up, and nothing is exported unless the
//! program installs a `tracing` subscriber or a `metrics` recorder. Install
//! the recorder before the first call: each method's handles are
//! registered once, at its first call, with the recorder installed then.
//!
//! A call nobody watches is not observed at all: with no subscriber that
//! takes `INFO` spans of this crate and no recorder when its method
//! registered, a call pays one level check and one flag (no clock read, no
//! allocation; measured in `docs/PERFORMANCE.md`). "No recorder" is how the
//! `metrics` facade says it: its no-op recorder, a zero-sized type. A
//! recorder of your own that is a zero-sized type is taken for none as
//! well; give it a field.
//!
//! # Spans
//!
//! Every call a generated client makes is an `INFO` span named
//! `rpc.client`, a child of the span current where the call was made;
//! every call a server runs is an `INFO` span named `rpc.server`, entered
//! while its handler runs, so the handler's own events and calls are
//! inside it. A stream's span lasts until the stream ends. Fields, after
//! OpenTelemetry's RPC conventions:
//!
//! | field | on | value |
//! |---|---|---|
//! | `otel.name` | both | `service/method` |
//! | `otel.kind` | both | `client` or `server` |
//! | `rpc.system` | both | `rpc-runtime` |
//! | `rpc.service`, `rpc.method` | both | the wire names |
//! | `rpc.request.id` | both | the request id on its connection (the last attempt's, on a client) |
//! | `server.address` | client | the server the last attempt went to |
//! | `network.peer.address`, `network.peer.port` | server | the caller (an inbox over NATS) |
//! | `rpc.response.status_code` | both | `OK`, a status code's name, or `OTHER` (see [`names::CODE`]) |
//! | `error.type` | both, on failure | the [`RpcError`](crate::RpcError) variant (`DeadlineExceeded`, `Status`, ...) |
//! | `otel.status_code`, `otel.status_message` | both, on failure | `ERROR`, and the error's message |
//! | `rpc.duration_ms` | both | from start to answer (or a stream's end) |
//!
//! An application error returned as a value (`Result<T, MyError>` in the
//! trait) is an answer like any other: `OK`. A failure with a
//! [`Status`](crate::Status) has the status's code.
//!
//! # Trace context
//!
//! With the feature `opentelemetry`, and a `tracing-opentelemetry` layer
//! installed, a client call carries its span's context as W3C
//! `traceparent` and `tracestate` metadata entries, and the server's span
//! takes it as its parent: the server's span, and every call its handler
//! makes, join the caller's trace, over every transport. Without the
//! feature nothing is added to calls.
//!
//! # Metrics
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `rpc_client_calls_started_total` | counter | service, method |
//! | `rpc_client_calls_finished_total` | counter | service, method, code |
//! | `rpc_client_call_duration_seconds` | histogram | service, method |
//! | `rpc_client_calls_in_flight` | gauge | service, method |
//! | `rpc_client_stream_items_sent_total` | counter | service, method |
//! | `rpc_client_stream_items_received_total` | counter | service, method |
//! | `rpc_client_retries_total` | counter | service, method |
//! | `rpc_client_failovers_total` | counter | service, method |
//! | `rpc_client_reconnects_total` | counter | (none) |
//! | `rpc_client_connections` | gauge | (none) |
//! | `rpc_server_calls_started_total` | counter | service, method |
//! | `rpc_server_calls_finished_total` | counter | service, method, code |
//! | `rpc_server_call_duration_seconds` | histogram | service, method |
//! | `rpc_server_calls_in_flight` | gauge | service, method |
//! | `rpc_server_stream_items_sent_total` | counter | service, method |
//! | `rpc_server_stream_items_received_total` | counter | service, method |
//! | `rpc_server_connections` | gauge | (none) |
//! | `rpc_bytes_sent_total` | counter | transport |
//! | `rpc_bytes_received_total` | counter | transport |
//!
//! Label values are bounded: wire names of the methods a program calls or
//! serves (past 4096 distinct names, the rest are counted as `other`),
//! the 18 outcome codes, the transports. No request ids or peer addresses
//! are labels. [`names`] has every name as a constant.
//!
//! A call that is cancelled, or dropped before its answer, ends as
//! `CANCELLED`; a server call whose deadline passes as
//! `DEADLINE_EXCEEDED`. Calls a server refuses once it has found their
//! method (an interceptor, metadata that does not decode) are counted with
//! their codes; requests refused before (a method it does not have, a
//! server shutting down, malformed flags) are not. A fanout is one
//! client call, ending `OK` once every answer is in.

mod future;
mod method;
pub mod names;
mod observed;
mod outcome;
mod process;
#[cfg(feature = "opentelemetry")]
mod propagation;

pub(crate) use future::ObservedStream;
#[doc(hidden)]
pub use method::MethodSlot;
pub(crate) use method::{
    client as client_method, resent, server as server_method, MethodMetrics, Side,
};
pub(crate) use observed::Observed;
pub(crate) use outcome::DEADLINE_EXCEEDED;
pub(crate) use process::{bytes, reconnected, OpenConnection, Transport};
#[cfg(feature = "opentelemetry")]
pub(crate) use propagation::{extract, inject};
