//! Reads the annotated trait into a model of the service.
//!
//! Parsing never rejects a shape (that is [`valid`](crate::valid)'s job); it
//! only records what is there, keeping the original tokens for spans.

use proc_macro2::{Span, TokenStream};
use quote::format_ident;
use syn::{Attribute, FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, TraitItemFn, Type};

use crate::attr::{self, ServiceArgs};
use crate::ctxt::Ctxt;

/// A service: the trait and its methods.
pub struct Service {
    /// The trait as written.
    pub item: ItemTrait,
    /// The name requests carry.
    pub wire_name: String,
    /// Every `fn` item of the trait, in order.
    pub methods: Vec<Method>,
}

/// One trait method.
pub struct Method {
    /// The method as written.
    pub item: TraitItemFn,
    /// Its attributes, without the macro's own `#[rpc(...)]`.
    pub attrs: Vec<Attribute>,
    /// The method's name.
    pub ident: Ident,
    /// The name requests carry, and the tokens that chose it (for errors).
    pub wire_name: String,
    /// Where `wire_name` came from.
    pub wire_name_span: Span,
    /// Whether `wire_name` was set with `#[rpc(name = "...")]`.
    pub renamed: bool,
    /// `#[rpc(oneway)]`, kept for its span.
    pub oneway: Option<syn::Path>,
    /// `#[rpc(idempotent)]`, kept for its span.
    pub idempotent: Option<syn::Path>,
    /// The arguments after the receiver.
    pub args: Vec<Arg>,
    /// The declared return type; `()` when there is none.
    pub output: Type,
    /// The item type when the method returns `Streaming<T>` (a server
    /// stream).
    pub stream_item: Option<Type>,
    /// `T` when the method returns `Result<T, Status>`: its handler fails
    /// with a status, and its client answers with `T` (for a refusable
    /// stream, `Streaming<I>`).
    pub status_value: Option<Type>,
    /// When the method returns `Result<Streaming<T>, E>`: the server may
    /// refuse the stream before it starts, with `E` or with a status.
    pub refusal: Option<Refusal>,
}

/// What a call sends and answers with: the runtime's `CallKind`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value each way.
    Unary,
    /// One value, no answer.
    OneWay,
    /// One value, a stream back.
    ServerStream,
    /// A stream, one value back.
    ClientStream,
    /// A stream each way.
    BothWays,
}

impl Kind {
    /// The name of the runtime's `CallKind` variant.
    pub fn variant(self) -> &'static str {
        match self {
            Kind::Unary => "Unary",
            Kind::OneWay => "OneWay",
            Kind::ServerStream => "ServerStream",
            Kind::ClientStream => "ClientStream",
            Kind::BothWays => "BothWays",
        }
    }
}

/// How a server refuses a stream.
pub enum Refusal {
    /// `Result<Streaming<T>, Status>`.
    Status,
    /// `Result<Streaming<T>, E>`: a value of the application's own type.
    Value,
}

impl Method {
    /// What the method's calls send and answer with.
    pub fn kind(&self) -> Kind {
        match (self.stream_arg().is_some(), self.stream_item.is_some()) {
            (true, true) => Kind::BothWays,
            (true, false) => Kind::ClientStream,
            (false, true) => Kind::ServerStream,
            (false, false) if self.oneway.is_some() => Kind::OneWay,
            (false, false) => Kind::Unary,
        }
    }

    /// The position of the (first) `Streaming<T>` argument: the stream the
    /// caller sends.
    pub fn stream_arg(&self) -> Option<usize> {
        self.args
            .iter()
            .position(|arg| streaming_item(&arg.ty).is_some())
    }

    /// What the client's call answers with: the return type, or `T` of
    /// `Result<T, Status>`.
    pub fn reply_type(&self) -> &Type {
        self.status_value.as_ref().unwrap_or(&self.output)
    }

    /// Whether any stream crosses the connection for this method.
    pub fn streams(&self) -> bool {
        self.stream_item.is_some() || self.stream_arg().is_some()
    }
}

/// One argument.
pub struct Arg {
    /// The name to declare it under: the pattern's identifier without `mut`,
    /// or `argN` for `_` and other patterns.
    pub ident: Ident,
    /// Its type.
    pub ty: Type,
    /// `#[rpc(default)]`, kept for its span: a server decoding a request
    /// that ends before this argument uses `Default::default()`.
    pub default: Option<syn::Path>,
}

impl Service {
    /// Builds the model from the trait and the attribute's arguments.
    pub fn from_trait(cx: &Ctxt, item: ItemTrait, args: TokenStream) -> Service {
        let ServiceArgs { name } = attr::service_args(cx, args);
        let wire_name = name.map_or_else(|| item.ident.unraw_string(), |lit| lit.value());
        let methods = item
            .items
            .iter()
            .filter_map(|trait_item| match trait_item {
                TraitItem::Fn(f) => Some(Method::from_fn(cx, f)),
                _ => None,
            })
            .collect();
        Service {
            item,
            wire_name,
            methods,
        }
    }
}

impl Method {
    fn from_fn(cx: &Ctxt, item: &TraitItemFn) -> Method {
        let method_args = attr::method_args(cx, &item.attrs);
        let ident = item.sig.ident.clone();
        let renamed = method_args.name.is_some();
        let (wire_name, wire_name_span) = match method_args.name {
            Some(lit) => (lit.value(), lit.span()),
            None => (ident.unraw_string(), ident.span()),
        };
        let args = item
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(pat_type) => Some(pat_type),
                FnArg::Receiver(_) => None,
            })
            .enumerate()
            .map(|(i, pat_type)| Arg {
                ident: match &*pat_type.pat {
                    Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
                    _ => format_ident!("arg{}", i),
                },
                ty: (*pat_type.ty).clone(),
                default: attr::arg_default(cx, &pat_type.attrs),
            })
            .collect();
        let output = match &item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let mut stream_item = streaming_item(&output).cloned();
        let status_value = status_value(&output).cloned();
        let mut refusal = None;
        if let Some((value, error)) = result_parts(&output) {
            if let Some(item) = streaming_item(value) {
                stream_item = Some(item.clone());
                refusal = Some(if is_status(error) {
                    Refusal::Status
                } else {
                    Refusal::Value
                });
            }
        }
        Method {
            stream_item,
            status_value,
            refusal,
            attrs: item
                .attrs
                .iter()
                .filter(|a| !attr::is_rpc_attr(a))
                .cloned()
                .collect(),
            item: item.clone(),
            ident,
            wire_name,
            wire_name_span,
            renamed,
            oneway: method_args.oneway,
            idempotent: method_args.idempotent,
            args,
            output,
        }
    }

    /// The attributes that belong on every generated copy of the method:
    /// `#[cfg]`, `#[cfg_attr]`, `#[doc]`, `#[deprecated]`, `#[allow]` and
    /// friends.
    pub fn forwarded_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|a| {
            [
                "cfg",
                "cfg_attr",
                "doc",
                "deprecated",
                "allow",
                "expect",
                "warn",
                "deny",
            ]
            .iter()
            .any(|name| a.path().is_ident(name))
        })
    }

    /// Only the `#[cfg]` attributes.
    pub fn cfg_attrs(&self) -> impl Iterator<Item = &Attribute> {
        self.attrs.iter().filter(|a| a.path().is_ident("cfg"))
    }

    /// Whether the method carries `#[deprecated]`.
    pub fn is_deprecated(&self) -> bool {
        self.attrs.iter().any(|a| a.path().is_ident("deprecated"))
    }
}

/// `T` when `ty` is `Streaming<T>`, under any path (`rpc_runtime::Streaming<T>`).
///
/// The macro knows the type by its name, as it cannot resolve paths.
pub fn streaming_item(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Streaming" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(item)) if args.args.len() == 1 => Some(item),
        _ => None,
    }
}

/// `T` when `ty` is `Result<T, Status>`, under any path
/// (`rpc_runtime::Status`); known by the names, as for [`streaming_item`].
/// A `Status` of the user's own is then reported by the compiler, where the
/// answer is encoded.
pub fn status_value(ty: &Type) -> Option<&Type> {
    let (value, error) = result_parts(ty)?;
    is_status(error).then_some(value)
}

/// `(T, E)` when `ty` is `Result<T, E>`, under any path.
pub fn result_parts(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if path.qself.is_some() || last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter();
    match (types.next(), types.next(), types.next()) {
        (
            Some(syn::GenericArgument::Type(value)),
            Some(syn::GenericArgument::Type(error)),
            None,
        ) => Some((value, error)),
        _ => None,
    }
}

/// Whether `ty` is named `Status` (with no generic arguments).
fn is_status(ty: &Type) -> bool {
    let Type::Path(error) = ty else {
        return false;
    };
    error.qself.is_none()
        && error
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Status" && segment.arguments.is_none())
}

/// `r#type` → `"type"`.
pub trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for Ident {
    fn unraw_string(&self) -> String {
        let s = self.to_string();
        s.strip_prefix("r#").map_or(s.clone(), str::to_owned)
    }
}
