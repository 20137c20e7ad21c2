//! `rpc list`, `rpc describe` and `rpc health`.

use std::process::ExitCode;

use rpc_runtime::health::{HealthClient, ServingStatus};
use rpc_runtime::reflection::{MethodDescriptor, ReflectionClient, ServiceDescriptor};
use rpc_runtime::Invoke;

use crate::{descriptor, reflection_failed, render, Failure};

/// Each service, then each of its methods with its signature and the
/// first line of its documentation.
pub async fn list<C: Invoke + Clone>(channel: &C, json: bool) -> Result<ExitCode, Failure> {
    let names = ReflectionClient::new(channel.clone())
        .list()
        .await
        .map_err(reflection_failed)?;
    let mut services = Vec::new();
    for name in &names {
        services.push(descriptor(channel, name).await?);
    }
    if json {
        out!("{}", pretty(&services));
        return Ok(ExitCode::SUCCESS);
    }
    for service in &services {
        out!("{}", service.name);
        let width = service
            .methods
            .iter()
            .map(|m| m.signature.chars().count())
            .max()
            .unwrap_or(0);
        for method in &service.methods {
            match summary(&method.docs) {
                Some(first) => out!("  {:width$}  {first}", method.signature),
                None => out!("  {}", method.signature),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A service, or one method, in full: documentation, signature and flags,
/// and the definition of every type they use.
pub async fn describe<C: Invoke + Clone>(
    channel: &C,
    target: &str,
    json: bool,
) -> Result<ExitCode, Failure> {
    // A service's name may hold dots: the whole first, then all but the
    // last part, with the method's name after it.
    let (service, method) = match descriptor(channel, target).await {
        Ok(service) => (service, None),
        Err(not_a_service) => match target.rsplit_once('.') {
            Some((service, method)) => match descriptor(channel, service).await {
                Ok(service) => (service, Some(method.to_owned())),
                Err(_) => return Err(not_a_service),
            },
            None => return Err(not_a_service),
        },
    };
    let methods: Vec<&MethodDescriptor> = match &method {
        Some(name) => vec![find(&service, name)?],
        None => service.methods.iter().collect(),
    };
    if json {
        match method {
            Some(_) => out!("{}", pretty(&methods)),
            None => out!("{}", pretty(&service)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    out!("service {}", service.name);
    for line in service.docs.lines() {
        out!("  {line}");
    }
    for method in &methods {
        out!();
        for line in method.docs.lines() {
            out!("  /// {line}");
        }
        out!("  {}{}", method.signature, flags(method));
        if method.name != method.rust_name {
            out!("      (`{}` on the wire)", method.name);
        }
        if let Some(problem) = &method.problem {
            out!("      cannot be called from here: {problem}");
        }
    }
    let formats = methods.iter().flat_map(|m| {
        m.args
            .iter()
            .filter_map(|a| a.format.as_ref())
            .chain(m.stream.iter())
            .chain(m.returns.iter())
            .chain(m.error.iter())
    });
    let used = render::used(formats, &service.types);
    if !used.is_empty() {
        out!();
        out!("types");
        for name in &used {
            if let Some(container) = service.types.get(name) {
                out!("  {}", render::definition(name, container));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The method of `service` called `name` (on the wire or in Rust).
pub fn find<'a>(
    service: &'a ServiceDescriptor,
    name: &str,
) -> Result<&'a MethodDescriptor, Failure> {
    service
        .method(name)
        .or_else(|| service.methods.iter().find(|m| m.rust_name == name))
        .ok_or_else(|| {
            let names: Vec<&str> = service.methods.iter().map(|m| m.name.as_str()).collect();
            Failure::Usage(format!(
                "`{}` has no method `{name}`; its methods are: {}",
                service.name,
                names.join(", ")
            ))
        })
}

/// The documentation's first paragraph, on one line.
fn summary(docs: &str) -> Option<String> {
    let first = docs.split("\n\n").next()?;
    let line = first.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then_some(line)
}

fn flags(method: &MethodDescriptor) -> String {
    use rpc_runtime::call::CallKind;
    let mut flags = Vec::new();
    match method.kind {
        CallKind::OneWay => flags.push("one-way"),
        CallKind::ServerStream => flags.push("streams its answer"),
        CallKind::ClientStream => flags.push("takes a stream"),
        CallKind::BothWays => flags.push("streams both ways"),
        _ => {}
    }
    if method.idempotent {
        flags.push("idempotent");
    }
    if method.refusable {
        flags.push("refusable");
    }
    if method.args.iter().any(|a| a.default) {
        flags.push("later arguments optional");
    }
    if flags.is_empty() {
        String::new()
    } else {
        format!("    [{}]", flags.join(", "))
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The health service's answer for `service` (`""`: the server).
pub async fn health<C: Invoke>(channel: C, service: String) -> Result<ExitCode, Failure> {
    let status = HealthClient::new(channel).check(service).await?;
    let (word, code) = match status {
        ServingStatus::Serving => ("SERVING", ExitCode::SUCCESS),
        ServingStatus::NotServing => ("NOT_SERVING", ExitCode::from(1)),
        ServingStatus::ServiceUnknown => ("SERVICE_UNKNOWN", ExitCode::from(1)),
    };
    out!("{word}");
    Ok(code)
}
