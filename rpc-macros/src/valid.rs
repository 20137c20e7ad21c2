//! Checks the model and records every problem with a message that says what
//! to write instead.

use std::collections::{HashMap, HashSet};

use syn::visit::Visit;
use syn::{FnArg, GenericParam, TraitItem, Type};

use crate::ctxt::Ctxt;
use crate::parse::{Method, Service, UnrawString};

/// Records every reason the service cannot be generated.
pub fn check(cx: &Ctxt, service: &Service) {
    check_trait(cx, service);
    for method in &service.methods {
        check_method(cx, method);
    }
    check_wire_names(cx, service);
}

fn check_trait(cx: &Ctxt, service: &Service) {
    let item = &service.item;
    if let Some(unsafety) = &item.unsafety {
        cx.error_spanned_by(
            unsafety,
            "an rpc service cannot be an `unsafe trait`; remove `unsafe`",
        );
    }
    if let Some(auto) = &item.auto_token {
        cx.error_spanned_by(
            auto,
            "an rpc service cannot be an `auto trait`; remove `auto`",
        );
    }
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "an rpc service cannot be generic: the server must know every type it decodes; use concrete types",
        );
    }
    for trait_item in &item.items {
        match trait_item {
            TraitItem::Fn(_) => {}
            TraitItem::Type(t) => cx.error_spanned_by(
                t,
                "an rpc service cannot have associated types: the client must know every type; use a concrete type in the method signatures",
            ),
            TraitItem::Const(c) => cx.error_spanned_by(
                c,
                "an rpc service cannot have associated consts: they cannot be called over the network; move the const out of the trait",
            ),
            TraitItem::Macro(m) => cx.error_spanned_by(
                m,
                format_args!(
                    "an rpc service cannot contain macro invocations: #[rpc_service] runs before `{}!` expands, so it cannot see the methods it would add; write them out as `async fn`s",
                    m.mac.path.segments.last().map_or_else(String::new, |s| s.ident.to_string()),
                ),
            ),
            other => cx.error_spanned_by(
                other,
                "an rpc service can only contain methods: write `async fn name(&self, ...) -> T;`",
            ),
        }
    }
}

fn check_method(cx: &Ctxt, method: &Method) {
    let sig = &method.item.sig;
    let name = &method.ident;
    if let Some(constness) = &sig.constness {
        if sig.asyncness.is_some() {
            cx.error_spanned_by(constness, "an rpc method cannot be `const`; remove `const`");
        } else {
            cx.error_spanned_by(
                constness,
                "an rpc method cannot be `const`: write `async fn` instead of `const fn`",
            );
        }
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "an rpc method cannot be `unsafe`; remove `unsafe`",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "an rpc method cannot have an `extern` ABI; remove it");
    }
    // A `const fn` was told to become `async fn` above.
    if sig.asyncness.is_none() && sig.constness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format_args!("rpc methods must be async: write `async fn {name}(&self, ...)`"),
        );
    }
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(l) => cx.error_spanned_by(
                l,
                format_args!(
                    "an rpc method cannot have lifetime parameters: remove `{}` and take arguments owned (`String`, not `&{} str`), since they cross the network",
                    l.lifetime, l.lifetime,
                ),
            ),
            GenericParam::Type(t) => cx.error_spanned_by(
                t,
                "an rpc method cannot be generic: the server must know the concrete type it decodes; use a concrete type (or an enum of the types you need)",
            ),
            GenericParam::Const(c) => cx.error_spanned_by(
                c,
                "an rpc method cannot have const generics; use a concrete value or an argument",
            ),
        }
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "an rpc method cannot have a `where` clause; remove it",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(
            variadic,
            "an rpc method cannot be variadic; remove `...` and take a `Vec<T>` argument",
        );
    }
    if let Some(body) = &method.item.default {
        cx.error_spanned_by(
            body,
            "an rpc method cannot have a default body: the trait is implemented by the server; write `;` here and put the body in your `impl`",
        );
    }
    check_receiver(cx, method);
    for input in &sig.inputs {
        if let FnArg::Typed(arg) = input {
            check_type(cx, &arg.ty, "argument");

            if !matches!(&*arg.pat, syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none())
                && !matches!(&*arg.pat, syn::Pat::Wild(_))
            {
                cx.error_spanned_by(
                    &arg.pat,
                    "rpc method arguments must be plain names (`x`, `mut x` or `_`); destructure inside the method's body",
                );
            }
        }
    }
    check_type(cx, &method.output, "return type");
    if let Some(oneway) = &method.oneway {
        let returns_unit = matches!(&method.output, Type::Tuple(t) if t.elems.is_empty());
        if !returns_unit {
            cx.error_spanned_by(
                &method.output,
                format_args!(
                    "a oneway method cannot return a value: the caller never hears back; remove `-> {}`, or remove `#[rpc(oneway)]` to get an answer",
                    type_text(&method.output)
                ),
            );
        }
        if let Some(idempotent) = &method.idempotent {
            cx.error_spanned_by(
                idempotent,
                "a oneway call is never retried (nobody learns whether it arrived); remove `idempotent`",
            );
        }
        let _ = oneway;
    }
    let streamed: Vec<_> = method
        .args
        .iter()
        .filter(|arg| crate::parse::streaming_item(&arg.ty).is_some())
        .collect();
    for extra in streamed.iter().skip(1) {
        cx.error_spanned_by(
            &extra.ty,
            "an rpc method can take at most one `Streaming` argument; send one stream of an enum or a tuple instead",
        );
    }
    if let (Some(first), Some(_)) = (streamed.first(), &method.oneway) {
        cx.error_spanned_by(
            &first.ty,
            "a oneway call cannot send a stream (nobody would grant it credit); remove `#[rpc(oneway)]`, or take a `Vec<T>`",
        );
    }
    if method.streams() {
        if let Some(idempotent) = &method.idempotent {
            cx.error_spanned_by(
                idempotent,
                "a streaming call is never sent again (its items may already have been seen); remove `idempotent`",
            );
        }
    }
    check_defaults(cx, method);
    let mut seen = HashMap::new();
    for arg in &method.args {
        if let Some(()) = seen.insert(arg.ident.to_string(), ()) {
            cx.error_spanned_by(
                &arg.ident,
                format_args!(
                    "the argument name `{}` is used twice; rename one",
                    arg.ident
                ),
            );
        }
    }
}

fn check_receiver(cx: &Ctxt, method: &Method) {
    let sig = &method.item.sig;
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            if receiver.colon_token.is_some() {
                cx.error_spanned_by(
                    receiver,
                    "an rpc method must take `&self`; write `&self` here (the server already keeps your implementation in an `Arc` and shares it between calls)",
                );
            } else if receiver.reference.is_none() {
                cx.error_spanned_by(
                    receiver,
                    "an rpc method must take `&self`, not `self`: the server calls one shared implementation for every request; write `&self`",
                );
            } else if let Some(mutability) = &receiver.mutability {
                cx.error_spanned_by(
                    mutability,
                    "an rpc method must take `&self`, not `&mut self`: calls run concurrently; keep mutable state behind a `Mutex` or an atomic",
                );
            }
        }
        _ => cx.error_spanned_by(
            &sig.ident,
            format_args!(
                "an rpc method needs a receiver: write `async fn {}(&self, ...)`",
                method.ident
            ),
        ),
    }
}

/// Rejects borrowed and opaque types anywhere inside `ty`.
fn check_type(cx: &Ctxt, ty: &Type, what: &str) {
    struct Finder<'a> {
        cx: &'a Ctxt,
        what: &'a str,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            self.cx.error_spanned_by(
                r,
                format_args!(
                    "an rpc {} cannot be a reference: it crosses the network; use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`)",
                    self.what
                ),
            );
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            let is_future = t.bounds.iter().any(|bound| {
                matches!(bound, syn::TypeParamBound::Trait(b)
                    if b.path.segments.last().is_some_and(|s| s.ident == "Future"))
            });
            let is_stream = t.bounds.iter().any(|bound| {
                matches!(bound, syn::TypeParamBound::Trait(b)
                    if b.path.segments.last().is_some_and(|s| s.ident == "Stream"))
            });
            if is_future && self.what == "return type" {
                self.cx.error_spanned_by(
                    t,
                    "an rpc method returns the future's output, not the future: for `impl Future<Output = T>`, write `async fn` and `-> T`",
                );
            } else if is_stream {
                self.cx.error_spanned_by(
                    t,
                    format_args!(
                        "an rpc {} cannot be `impl Stream`: a stream that crosses the connection is `rpc_runtime::Streaming<T>`; write `Streaming<T>`, and build it with `Streaming::from_stream(..)`",
                        self.what
                    ),
                );
            } else {
                self.cx.error_spanned_by(
                    t,
                    format_args!(
                        "an rpc {} cannot be `impl Trait`: the other side must know the concrete type to decode it; write that type instead (e.g. `String`, not `impl Into<String>`)",
                        self.what
                    ),
                );
            }
        }
        fn visit_type_trait_object(&mut self, t: &'ast syn::TypeTraitObject) {
            self.cx.error_spanned_by(
                t,
                format_args!(
                    "an rpc {} cannot be a trait object: the other side must know the concrete type; use a concrete type or an enum",
                    self.what
                ),
            );
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "static" {
                self.cx.error_spanned_by(
                    l,
                    format_args!(
                        "an rpc {} cannot borrow (lifetime `{}`): it crosses the network; use an owned type (`String` for `Cow<'_, str>`), or `'static` if the type owns its data",
                        self.what, l
                    ),
                );
            }
        }
    }
    Finder { cx, what }.visit_type(ty);
}

/// Rejects two methods with the same name, and two methods with the same wire
/// name.
fn check_wire_names(cx: &Ctxt, service: &Service) {
    let mut idents: HashSet<String> = HashSet::new();
    let mut seen: HashMap<&str, &Method> = HashMap::new();
    for method in &service.methods {
        // Methods behind different `#[cfg]`s may legitimately share a name.
        if method.cfg_attrs().next().is_some() {
            continue;
        }
        let ident = &method.ident;
        // rustc would report this too; the fallback drops the second method
        // so that only this error shows.
        if !idents.insert(ident.unraw_string()) {
            cx.error_spanned_by(
                ident,
                format_args!("`{ident}` is declared twice in this trait; remove or rename one"),
            );
            continue;
        }
        let Some(first) = seen.get(method.wire_name.as_str()) else {
            seen.insert(&method.wire_name, method);
            continue;
        };
        let (name, first_ident) = (&method.wire_name, &first.ident);
        let message = if method.renamed {
            format!(
                "the wire name \"{name}\" is already used by `{first_ident}`; choose another name"
            )
        } else {
            format!(
                "`{ident}` has the wire name \"{name}\", which `{first_ident}` already took with `#[rpc(name = \"{name}\")]`; rename one of them, or give `{ident}` another wire name with `#[rpc(name = \"...\")]`"
            )
        };
        cx.syn_error(syn::Error::new(method.wire_name_span, message));
    }
}

/// A type as a user would write it: `Vec<u8>`, not `Vec < u8 >`.
fn type_text(ty: &Type) -> String {
    quote::ToTokens::to_token_stream(ty)
        .to_string()
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" , ", ", ")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
}

/// `#[rpc(default)]` arguments: old clients send the arguments before them
/// and nothing after, so they must come last among the encoded arguments
/// (a `Streaming` argument is not encoded, and cannot be one).
fn check_defaults(cx: &Ctxt, method: &Method) {
    let mut first_default: Option<&crate::parse::Arg> = None;
    for arg in &method.args {
        let streamed = crate::parse::streaming_item(&arg.ty).is_some();
        match (&arg.default, streamed) {
            (Some(default), true) => cx.error_spanned_by(
                default,
                "a `Streaming` argument cannot be `#[rpc(default)]`: it is not sent with the arguments; remove `#[rpc(default)]`",
            ),
            (Some(_), false) => {
                first_default.get_or_insert(arg);
            }
            (None, false) => {
                if let Some(default) = first_default {
                    cx.error_spanned_by(
                        &arg.ident,
                        format_args!(
                            "`{}` comes after the `#[rpc(default)]` argument `{}`: a server can fill in only the arguments an older client did not send, at the end; move `{}` before `{}`, or mark it `#[rpc(default)]` too",
                            arg.ident, default.ident, arg.ident, default.ident
                        ),
                    );
                }
            }
            (None, true) => {}
        }
    }
}
