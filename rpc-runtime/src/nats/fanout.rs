//! Fanout over NATS: one call published on a service's fanout subject,
//! which every server of the service receives, and every answer gathered
//! by the server's name.
//!
//! Who serves the service is asked at the same time, with the discovery
//! protocol's `$SRV.PING.<name>`: the gathering ends once every server
//! that answered the ping (within the channel's fanout window) has
//! answered the call, or at the call's deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;

use crate::call::{CallKind, RawCall, RawReply};
use crate::error::RpcError;
use crate::session::{self, CallDefaults};
use crate::wire::codec;
use crate::wire::frame::{flags, Message, Status};
use crate::wire::request::RequestHeader;

use super::micro::micro_name;
use super::subjects::{reply_to, Subjects};

/// What a fanout needs of its channel.
pub(super) struct Fan<'a> {
    pub client: &'a Client,
    pub subjects: &'a Subjects,
    pub defaults: CallDefaults,
    /// The channel's own inbox for fanouts, and this fanout's call id.
    pub inbox: &'a str,
    pub id: u64,
    /// How long the servers have to answer the ping.
    pub window: Duration,
}

/// One fanout: every server's name and its result.
pub(super) async fn fan_out(
    fan: Fan<'_>,
    call: RawCall,
) -> Vec<(String, Result<RawReply, RpcError>)> {
    match gather(fan, call).await {
        Ok(replies) => replies,
        Err(error) => vec![("*".to_owned(), Err(error))],
    }
}

async fn gather(
    fan: Fan<'_>,
    call: RawCall,
) -> Result<Vec<(String, Result<RawReply, RpcError>)>, RpcError> {
    if call.has_stream() {
        return Err(RpcError::Encode {
            what: "request",
            message: "a call that sends a stream cannot be fanned out".to_owned(),
        });
    }
    let oneway = call.kind() == CallKind::OneWay;
    if !matches!(call.kind(), CallKind::Unary | CallKind::OneWay) {
        return Err(RpcError::Encode {
            what: "request",
            message: "only calls that answer with one value (or none) can be fanned out".to_owned(),
        });
    }
    let parts = call.into_parts();
    let (deadline, timeout) = fan
        .defaults
        .deadline(parts.options.get_timeout(), parts.inherited);
    let (service, method) = (&*parts.service, &*parts.method);
    let mut body = parts.args;
    let header = RequestHeader {
        id: fan.id,
        service,
        method,
        // A call without a deadline says none, as on every path.
        timeout_micros: session::wire_timeout(timeout),
        flags: if oneway { flags::ONEWAY } else { 0 },
    };
    let max_payload = fan.client.server_info().max_payload;
    let frame = body.frame(&header, max_payload)?.to_bytes();
    let lost = |e: &dyn std::fmt::Display| RpcError::connection_lost(format!("NATS: {e}"));

    let answers_to = reply_to(fan.inbox, fan.id);
    let pings_to = reply_to(fan.inbox, fan.id + 1);
    let mut answers = fan
        .client
        .subscribe(answers_to.clone())
        .await
        .map_err(|e| lost(&e))?;
    let mut pings = fan
        .client
        .subscribe(pings_to.clone())
        .await
        .map_err(|e| lost(&e))?;
    fan.client
        .publish_with_reply(
            format!("$SRV.PING.{}", micro_name(service)),
            pings_to,
            Bytes::new(),
        )
        .await
        .map_err(|e| lost(&e))?;
    fan.client
        .publish_with_reply(fan.subjects.fanout(service), answers_to, frame)
        .await
        .map_err(|e| lost(&e))?;

    let window_ends = Instant::now() + fan.window;
    let instance_prefix = fan.subjects.instance("");
    let mut servers: BTreeMap<String, Option<Result<RawReply, RpcError>>> = BTreeMap::new();
    loop {
        let done = Instant::now() >= window_ends
            && servers.values().all(|answer| oneway || answer.is_some());
        if done {
            break;
        }
        // Until the window ends, then (for calls with answers) until every
        // server answered or the deadline.
        let until = if Instant::now() < window_ends || oneway {
            window_ends.min(deadline)
        } else {
            deadline
        };
        tokio::select! {
            () = tokio::time::sleep_until(until) => {
                if until >= deadline {
                    break;
                }
            }
            Some(ping) = pings.next() => {
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&ping.payload) {
                    if let Some(id) = value.get("id").and_then(|id| id.as_str()) {
                        servers.entry(id.to_owned()).or_insert(None);
                    }
                }
            }
            Some(answer) = answers.next() => {
                let Some(server) = answer.reply.as_ref().and_then(|from| from.strip_prefix(&*instance_prefix)) else {
                    continue;
                };
                if let Some(result) = decode(&answer.payload, service, method) {
                    servers.insert(server.to_owned(), Some(result));
                } else {
                    servers.entry(server.to_owned()).or_insert(None);
                }
            }
        }
    }
    Ok(servers
        .into_iter()
        .map(|(server, answer)| {
            let result = match answer {
                Some(result) => result,
                None if oneway => Ok(RawReply::Sent),
                None => Err(RpcError::DeadlineExceeded { timeout }),
            };
            (server, result)
        })
        .collect())
}

/// A server's answer to the fanout, if `payload` is one (not a claim).
fn decode(payload: &Bytes, service: &str, method: &str) -> Option<Result<RawReply, RpcError>> {
    let (message, used) = match codec::decode_message(payload) {
        Ok(decoded) => decoded,
        Err(message) => {
            return Some(Err(RpcError::Protocol {
                message: format!("a fanout answer did not decode: {message}"),
            }))
        }
    };
    let body = payload.slice(used.min(payload.len())..);
    match message {
        Message::Response {
            status: Status::Ok, ..
        } => Some(Ok(RawReply::Value(body))),
        Message::Response {
            status: Status::Error { code, message },
            ..
        } => Some(Err(codec::error_from_wire(
            code, message, body, service, method,
        ))),
        _ => None,
    }
}
