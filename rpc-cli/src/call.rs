//! `rpc call`: JSON arguments encoded from the method's description, the
//! call, and its answer printed as JSON.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use rpc_runtime::call::{RawCall, RawReply};
use rpc_runtime::reflection::{
    ContainerFormat, Format, MethodDescriptor, Named, Registry, VariantFormat,
};
use rpc_runtime::{CallOptions, Invoke, RpcError, StreamSender, Streaming};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::encode::{encode, Encoded};
use crate::{decode, descriptor, inspect, render, Failure};

/// Calls `target` (`SERVICE.METHOD`) with `arguments` (JSON).
pub async fn call<C>(
    channel: C,
    target: &str,
    arguments: Option<&str>,
    timeout: Duration,
    headers: &[(String, String)],
) -> Result<ExitCode, Failure>
where
    C: Invoke + Clone,
{
    let Some((service_name, method_name)) = target.rsplit_once('.') else {
        return Err(Failure::Usage(format!("`{target}` is not SERVICE.METHOD")));
    };
    let service = descriptor(&channel, service_name).await?;
    let method = inspect::find(&service, method_name)?;
    if let Some(problem) = &method.problem {
        return Err(Failure::Usage(format!(
            "`{target}` cannot be called from here: {problem}"
        )));
    }
    let json: Value = serde_json::from_str(arguments.unwrap_or("[]"))
        .map_err(|e| Failure::Usage(format!("the arguments are not JSON: {e}")))?;
    let args = arguments_of(method, &json, &service.types)?;

    let mut options = CallOptions::new()
        .timeout(timeout)
        .idempotent(method.idempotent);
    for (key, value) in headers {
        options = options.metadata(key.clone(), value.clone());
    }
    let mut call = RawCall::new(
        service.name.clone(),
        method.name.clone(),
        method.kind,
        options,
        &Encoded::Tuple(args),
    )?;
    let mut feeding = None;
    if method.kind.sends_stream() {
        let (sender, items) = Streaming::channel(16);
        call = call.with_stream(items);
        feeding = Some(sender);
    }
    if method.refusable {
        call = call.refusable();
    }
    let item = method.stream.clone().unwrap_or(Format::Unit);
    let bad_line = Mutex::new(None);
    let work = async {
        let reply = channel.invoke(call).await?;
        answer(method, &service.types, reply).await
    };
    let feed = async {
        if let Some(sender) = feeding {
            feed(sender, &item, &service.types, &bad_line).await;
        }
    };
    // The answer may come before stdin ends (a failure, a stream both
    // ways): the call's end stops the feeding.
    tokio::pin!(work, feed);
    let mut fed = false;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            () = &mut feed, if !fed => fed = true,
        }
    };
    // A stream line that did not fit: the stream was failed with it.
    if let Some(message) = bad_line
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(Failure::Usage(message));
    }
    result
}

/// The arguments, encoded: `json` is an array (in order) or an object (by
/// name). Arguments marked `default` may be left out at the end.
fn arguments_of(
    method: &MethodDescriptor,
    json: &Value,
    types: &Registry,
) -> Result<Vec<Encoded>, Failure> {
    let names = || {
        let names: Vec<String> = method
            .args
            .iter()
            .map(|a| match &a.format {
                Some(format) => format!("{}: {}", a.name, render::format(format)),
                None => a.name.clone(),
            })
            .collect();
        format!("({})", names.join(", "))
    };
    let given: Vec<Option<&Value>> = match json {
        Value::Array(items) => {
            if items.len() > method.args.len() {
                return Err(Failure::Usage(format!(
                    "`{}` takes {} arguments {}, {} given",
                    method.name,
                    method.args.len(),
                    names(),
                    items.len()
                )));
            }
            (0..method.args.len()).map(|i| items.get(i)).collect()
        }
        Value::Object(object) => {
            if let Some(unknown) = object
                .keys()
                .find(|k| !method.args.iter().any(|a| &a.name == *k))
            {
                return Err(Failure::Usage(format!(
                    "`{}` has no argument `{unknown}`; its arguments are {}",
                    method.name,
                    names()
                )));
            }
            method.args.iter().map(|a| object.get(&a.name)).collect()
        }
        other => {
            return Err(Failure::Usage(format!(
                "the arguments must be a JSON array (in order) or object (by name) {}, not {}",
                names(),
                crate::encode::found(other)
            )))
        }
    };
    let mut encoded = Vec::new();
    let mut ended = None;
    for (arg, value) in method.args.iter().zip(given) {
        let Some(format) = &arg.format else {
            return Err(Failure::Usage(format!(
                "argument `{}` has no description",
                arg.name
            )));
        };
        match (value, ended) {
            (Some(value), None) => encoded.push(encode(format, value, types).map_err(|m| {
                let at = if m.at.is_empty() { String::new() } else { format!(" at `{}`", m.at) };
                Failure::Usage(format!("argument `{}`{at}: {}", arg.name, m.message))
            })?),
            (Some(_), Some(left_out)) => {
                return Err(Failure::Usage(format!(
                    "argument `{}` is given but `{left_out}` before it is not; only the last arguments may be left out",
                    arg.name
                )))
            }
            (None, _) if arg.default => ended = ended.or(Some(arg.name.as_str())),
            (None, _) => {
                return Err(Failure::Usage(format!(
                    "argument `{}` ({}) is missing; `{}` takes {}",
                    arg.name,
                    render::format(format),
                    method.name,
                    names()
                )))
            }
        }
    }
    Ok(encoded)
}

/// Sends the stream of a call that takes one: one item per line of stdin
/// (blank lines skipped). A line that is not JSON, or does not fit, fails
/// the stream and is reported in `bad_line`.
async fn feed(
    sender: StreamSender<Encoded>,
    format: &Format,
    types: &Registry,
    bad_line: &Mutex<Option<String>>,
) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut number = 0usize;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                let message = format!("stdin: {e}");
                let _ = sender.fail(RpcError::BadRequest { message }).await;
                return;
            }
        };
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("stream item on line {number} is not JSON: {e}"))
            .and_then(|json| {
                encode(format, &json, types).map_err(|m| {
                    let at = if m.at.is_empty() {
                        String::new()
                    } else {
                        format!(" at `{}`", m.at)
                    };
                    format!("stream item on line {number}{at}: {}", m.message)
                })
            });
        match item {
            Ok(item) => {
                if sender.send(item).await.is_err() {
                    return;
                }
            }
            Err(message) => {
                *bad_line.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
                let _ = sender.fail(RpcError::BadRequest { message }).await;
                return;
            }
        }
    }
}

/// Prints the answer: a value, or a stream's items a line each.
async fn answer(
    method: &MethodDescriptor,
    types: &Registry,
    reply: RawReply,
) -> Result<ExitCode, Failure> {
    let returns = method.returns.clone().unwrap_or(Format::Unit);
    let bad = |e: String| {
        Failure::Remote(format!(
            "the answer does not decode as the description says: {e}"
        ))
    };
    match reply {
        RawReply::Sent => Ok(ExitCode::SUCCESS),
        RawReply::Value(bytes) => {
            if method.refusable {
                // A value in place of the stream: the refusal.
                let error = method.error.clone().unwrap_or(Format::Unit);
                return Err(Failure::Application(
                    decode::decode(&error, types, &bytes).map_err(bad)?,
                ));
            }
            match &method.error {
                None => {
                    print_line(&decode::decode(&returns, types, &bytes).map_err(bad)?)?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(error) => {
                    // `Result<T, E>`: variant 0 holds the value, 1 the error.
                    let mut with_result = types.clone();
                    let name = result_name(types);
                    with_result.insert(name.clone(), result_format(&returns, error));
                    let decoded = decode::decode(&Format::TypeName(name), &with_result, &bytes)
                        .map_err(bad)?;
                    match decoded {
                        Value::Object(mut object) => {
                            match (object.remove("Ok"), object.remove("Err")) {
                                (Some(value), _) => {
                                    print_line(&value)?;
                                    Ok(ExitCode::SUCCESS)
                                }
                                (_, Some(error)) => Err(Failure::Application(error)),
                                _ => Err(bad("neither Ok nor Err".to_owned())),
                            }
                        }
                        _ => Err(bad("not a Result".to_owned())),
                    }
                }
            }
        }
        RawReply::Stream(mut items) => {
            while let Some(item) = items.next().await {
                print_line(&decode::decode(&returns, types, &item?).map_err(bad)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(Failure::Remote(
            "the answer is of a kind this tool does not know".to_owned(),
        )),
    }
}

/// A name for the `Result` the answer is, that no type of the service has.
fn result_name(types: &Registry) -> String {
    let mut name = "Result".to_owned();
    while types.contains_key(&name) {
        name.push('_');
    }
    name
}

fn result_format(value: &Format, error: &Format) -> ContainerFormat {
    let variant = |name: &str, format: &Format| Named {
        name: name.to_owned(),
        value: VariantFormat::NewType(Box::new(format.clone())),
    };
    ContainerFormat::Enum(BTreeMap::from([
        (0, variant("Ok", value)),
        (1, variant("Err", error)),
    ]))
}

/// One JSON value on a line of stdout (line-buffered: a stream's items
/// show as they arrive). Fails when stdout is closed, which ends a stream.
fn print_line(value: &Value) -> Result<(), Failure> {
    out!("{value}");
    Ok(())
}
