//! `<Trait>Client::descriptor()`: the service as data, for the reflection
//! service. The names, documentation and flags are written out here; the
//! types are traced when the description is made, by a function per type
//! (`__private::trace::<T>`).

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{Attribute, Expr, Lit, Meta, Type};

use crate::parse::{result_parts, streaming_item, Method, Refusal, Service, UnrawString};

/// The `descriptor()` function, for the client's `impl` on `Channel` (an
/// `impl` without type parameters, so the user's types are named as
/// written).
pub fn generate(service: &Service) -> TokenStream {
    let name = &service.wire_name;
    let docs = docs(&service.item.attrs);
    let methods = service.methods.iter().map(method);
    let doc = format!(
        "The description of the `{name}` service: its methods, their documentation and flags, \
         and the format of every type they carry (traced now; see \
         [`reflection`](::rpc_runtime::reflection))."
    );
    quote! {
        #[doc = #doc]
        #[must_use]
        pub fn descriptor() -> ::rpc_runtime::reflection::ServiceDescriptor {
            use ::rpc_runtime::__private::{Traced as _, Untraced as _};
            let mut service = ::rpc_runtime::__private::Describer::new(#name, #docs);
            #(#methods)*
            service.finish()
        }
    }
}

fn method(method: &Method) -> TokenStream {
    let cfgs = method.cfg_attrs();
    let name = &method.wire_name;
    let rust_name = method.ident.unraw_string();
    let docs = docs(&method.attrs);
    let signature = signature(method);
    let stream_arg = method.stream_arg();
    let sent = stream_arg
        .and_then(|i| method.args.get(i))
        .map(|arg| streaming_item(&arg.ty).unwrap_or(&arg.ty));
    let kind = syn::Ident::new(method.kind().variant(), Span::call_site());
    let args = method
        .args
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != stream_arg)
        .map(|(_, arg)| {
            let name = arg.ident.unraw_string();
            let default = arg.default.is_some();
            let trace = trace(&arg.ty);
            quote!((#name, #default, #trace))
        });
    let stream = option(sent.map(trace));
    // What a successful call answers, and the application's error type.
    let (returns, error) = match (&method.stream_item, method.status_value.as_ref()) {
        (Some(item), _) => {
            let refusal = match method.refusal {
                Some(Refusal::Value) => result_parts(&method.output).map(|(_, e)| e),
                _ => None,
            };
            (item, refusal)
        }
        (None, Some(value)) => (value, None),
        (None, None) => match result_parts(&method.output) {
            Some((value, error)) => (value, Some(error)),
            None => (&method.output, None),
        },
    };
    let returns = trace(returns);
    let error = option(error.map(trace));
    let idempotent = method.idempotent.is_some();
    let refusable = method.refusal.is_some();
    let status = method.status_value.is_some() || matches!(method.refusal, Some(Refusal::Status));
    quote! {
        #(#cfgs)*
        service.method(::rpc_runtime::__private::MethodShape {
            name: #name,
            rust_name: #rust_name,
            docs: #docs,
            signature: #signature,
            kind: ::rpc_runtime::__private::CallKind::#kind,
            idempotent: #idempotent,
            refusable: #refusable,
            status: #status,
            args: ::std::vec![#(#args),*],
            stream: #stream,
            returns: #returns,
            error: #error,
        });
    }
}

/// The function that traces `T`: `__private::trace::<T>` if `T` is
/// `DeserializeOwned`, else one that fails (the call that needs the bound
/// reports it; the description does not report it again).
fn trace(ty: &Type) -> TokenStream {
    quote!((&::rpc_runtime::__private::Tracing::<#ty>::new()).trace_fn())
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// The documentation comments, a line each, without the space after `///`.
fn docs(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(lit) => match &lit.lit {
                    Lit::Str(s) => Some(s.value()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').map_or(line.clone(), str::to_owned))
        .collect();
    lines.join("\n")
}

/// `name(arg: Type, ...) -> Type`, as the trait declares the method (the
/// return type left out when it is `()`).
fn signature(method: &Method) -> String {
    let args: Vec<String> = method
        .args
        .iter()
        .map(|arg| format!("{}: {}", arg.ident.unraw_string(), type_string(&arg.ty)))
        .collect();
    let mut signature = format!("{}({})", method.ident.unraw_string(), args.join(", "));
    let unit = matches!(&method.output, Type::Tuple(t) if t.elems.is_empty());
    if !unit {
        signature.push_str(" -> ");
        signature.push_str(&type_string(&method.output));
    }
    signature
}

/// A type as a person writes it: `Vec<(u8, String)>`, not
/// `Vec < (u8 , String) >`.
fn type_string(ty: &Type) -> String {
    let mut s = ty.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        ("& ", "&"),
    ] {
        while s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s
}
