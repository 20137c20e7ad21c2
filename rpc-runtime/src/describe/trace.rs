//! Tracing a service's types into formats, for the descriptions the macro
//! generates.
//!
//! Each type is traced by deserializing it from serde-reflection's tracer
//! (not human-readable, as bincode is). An enum met inside another type is
//! explored a variant at a time, so the tracing runs in rounds until no
//! enum is left incomplete (bounded). A type that cannot be traced (its
//! `Deserialize` validates, or another type has the same name) leaves its
//! method without formats and with the reason, never the service without
//! a description.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_reflection::{ContainerFormat, Format, Registry, Tracer, TracerConfig};

use super::descriptor::{ArgDescriptor, MethodDescriptor, ServiceDescriptor};
use crate::wire::kind::CallKind;

/// Traces one type into the tracer's registry, answering its format.
pub type TraceFn = fn(&mut Tracer) -> serde_reflection::Result<Format>;

/// Traces `T`: what the generated description passes as a [`TraceFn`].
///
/// # Errors
/// The tracer's, when `T` cannot be traced.
pub fn trace<T: DeserializeOwned>(tracer: &mut Tracer) -> serde_reflection::Result<Format> {
    tracer.trace_simple_type::<T>().map(|(format, _)| format)
}

/// Picks the function that traces `T`: [`trace::<T>`](trace) when `T` is
/// `DeserializeOwned` (through [`Traced`]), one that reports it cannot be
/// traced otherwise (through [`Untraced`], the fallback method resolution
/// finds one reference further). The generated code names a method's
/// types only here, so a type that is not `Deserialize` is reported once,
/// where the call needs it, not again by its description.
pub struct Tracing<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> Default for Tracing<T> {
    fn default() -> Self {
        Tracing::new()
    }
}

impl<T: ?Sized> Tracing<T> {
    /// The picker for `T`.
    #[must_use]
    pub const fn new() -> Self {
        Tracing(PhantomData)
    }
}

/// The tracing of a type that is `DeserializeOwned`.
pub trait Traced {
    /// [`trace::<T>`](trace).
    fn trace_fn(&self) -> TraceFn;
}

impl<T: DeserializeOwned> Traced for Tracing<T> {
    fn trace_fn(&self) -> TraceFn {
        trace::<T>
    }
}

/// The tracing of a type that is not: fails.
pub trait Untraced {
    /// A function that fails to trace.
    fn trace_fn(&self) -> TraceFn;
}

impl<T: ?Sized> Untraced for &Tracing<T> {
    fn trace_fn(&self) -> TraceFn {
        |_| {
            Err(serde_reflection::Error::Custom(
                "the type is not `Deserialize`".to_owned(),
            ))
        }
    }
}

/// The most rounds of tracing, each exploring more variants of the enums
/// met inside other types; a type needs one more than its deepest chain of
/// enums nested in enums.
const MAX_ROUNDS: usize = 64;

/// The most times tracing starts again with enums it found late.
const MAX_ATTEMPTS: usize = 16;

/// One method, as the macro describes it.
#[derive(Debug)]
pub struct MethodShape {
    /// The wire name.
    pub name: &'static str,
    /// The Rust name.
    pub rust_name: &'static str,
    /// The documentation.
    pub docs: &'static str,
    /// `name(arg: Type, ...) -> Type`.
    pub signature: &'static str,
    /// The call kind.
    pub kind: CallKind,
    /// `#[rpc(idempotent)]`.
    pub idempotent: bool,
    /// Returns `Result<Streaming<T>, E>`.
    pub refusable: bool,
    /// Fails with an application status.
    pub status: bool,
    /// Each argument's name, whether it is `#[rpc(default)]`, and its type.
    pub args: Vec<(&'static str, bool, TraceFn)>,
    /// The items of the stream the caller sends.
    pub stream: Option<TraceFn>,
    /// The answer's value, or its stream's items.
    pub returns: TraceFn,
    /// The application error (or refusal) type.
    pub error: Option<TraceFn>,
}

/// Builds a [`ServiceDescriptor`]: the generated `descriptor()` adds each
/// method, then [`finish`](Self::finish) traces their types.
#[derive(Debug)]
pub struct Describer {
    name: &'static str,
    docs: &'static str,
    methods: Vec<MethodShape>,
}

impl Describer {
    /// A description of service `name`.
    #[must_use]
    pub fn new(name: &'static str, docs: &'static str) -> Self {
        Describer {
            name,
            docs,
            methods: Vec::new(),
        }
    }

    /// Adds a method.
    pub fn method(&mut self, method: MethodShape) {
        self.methods.push(method);
    }

    /// Traces every type and makes the description.
    #[must_use]
    pub fn finish(self) -> ServiceDescriptor {
        let mut types = Registry::new();
        let methods = self
            .methods
            .iter()
            .map(|method| method.describe(&mut types))
            .collect();
        ServiceDescriptor {
            name: self.name.to_owned(),
            docs: self.docs.to_owned(),
            methods,
            types,
        }
    }
}

/// Traces one type with a tracer of its own (a type that fails to trace
/// leaves nothing half-traced behind for the others): its format, and the
/// named types it holds.
fn trace_alone(job: TraceFn) -> Result<(Format, Registry), String> {
    // A first pass only to learn the names of the enums, whose
    // completeness the rounds below ask after by name. An enum met only
    // in a variant the first pass did not take shows up as missing
    // variants at the end: the tracing starts again knowing its name.
    let mut scout = Tracer::new(config());
    job(&mut scout).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = scout.registry_unchecked().into_keys().collect();
    for _ in 0..MAX_ATTEMPTS {
        let mut tracer = Tracer::new(config());
        let mut format = job(&mut tracer).map_err(|e| e.to_string())?;
        for _ in 1..MAX_ROUNDS {
            let incomplete = names
                .iter()
                .filter(|name| tracer.check_incomplete_enum(name).is_some())
                .count();
            if incomplete == 0 {
                break;
            }
            format = job(&mut tracer).map_err(|e| e.to_string())?;
        }
        match tracer.registry() {
            Ok(types) => {
                // An enum whose variants were found by name but never
                // visited by index (one met only inside a later variant of
                // another) holds provisional indexes: not describable.
                if let Some(name) = types.iter().find_map(|(name, container)| match container {
                    ContainerFormat::Enum(variants)
                        if !variants.keys().copied().eq(0..variants.len() as u32) =>
                    {
                        Some(name)
                    }
                    _ => None,
                }) {
                    return Err(format!(
                        "the variant indexes of enum `{name}` could not be traced (it is met only inside a later variant of another enum)"
                    ));
                }
                return Ok((format, types));
            }
            Err(serde_reflection::Error::MissingVariants(missing))
                if missing.iter().any(|name| !names.contains(name)) =>
            {
                names.extend(missing);
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    Err("its enums nest too deep to trace".to_owned())
}

/// Adds `found` to `types`; fails, adding nothing, when a name in both has
/// two formats (two types of one name, in different modules).
fn merge(types: &mut Registry, found: Registry) -> Result<(), String> {
    if let Some(name) = found
        .iter()
        .find(|(name, format)| types.get(*name).is_some_and(|known| known != *format))
        .map(|(name, _)| name)
    {
        return Err(format!(
            "two types named `{name}` have different formats; rename one (descriptions name types without their paths)"
        ));
    }
    types.extend(found);
    Ok(())
}

impl MethodShape {
    /// What tracing its types takes, in the order `describe` reads them.
    fn jobs(&self) -> impl Iterator<Item = TraceFn> + '_ {
        self.args
            .iter()
            .map(|(.., trace)| *trace)
            .chain(self.stream)
            .chain(std::iter::once(self.returns))
            .chain(self.error)
    }

    /// Traces the method's types, adding the named ones to `types`; a
    /// method one of whose types does not trace is described without
    /// formats, and with the reason.
    fn describe(&self, types: &mut Registry) -> MethodDescriptor {
        let traced: Result<Vec<(Format, Registry)>, String> =
            self.jobs().map(trace_alone).collect();
        let formats = traced.and_then(|traced| {
            let mut found = Registry::new();
            let mut formats = Vec::new();
            for (format, registry) in traced {
                merge(&mut found, registry)?;
                formats.push(format);
            }
            merge(types, found)?;
            Ok(formats)
        });
        let (mut formats, problem) = match formats {
            Ok(formats) => (formats.into_iter(), None),
            Err(problem) => (Vec::new().into_iter(), Some(problem)),
        };
        let args = self
            .args
            .iter()
            .map(|(name, default, _)| ArgDescriptor {
                name: (*name).to_owned(),
                format: formats.next(),
                default: *default,
            })
            .collect();
        let stream = self.stream.and_then(|_| formats.next());
        let returns = formats.next();
        let error = self.error.and_then(|_| formats.next());
        MethodDescriptor {
            name: self.name.to_owned(),
            rust_name: self.rust_name.to_owned(),
            docs: self.docs.to_owned(),
            signature: self.signature.to_owned(),
            kind: self.kind,
            idempotent: self.idempotent,
            refusable: self.refusable,
            status: self.status,
            args,
            stream,
            returns,
            error,
            problem: problem.map(|p| format!("its types cannot be described: {p}")),
        }
    }
}

/// As bincode encodes: not human-readable (addresses, for one, are bytes).
fn config() -> TracerConfig {
    TracerConfig::default().is_human_readable(false)
}
