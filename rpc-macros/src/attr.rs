//! The macro's own arguments: `#[rpc_service(...)]` on the trait and
//! `#[rpc(...)]` on its methods.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, Lit, LitStr, Meta, Token};

use crate::ctxt::Ctxt;

const SERVICE_FORMS: &str =
    "expected `#[rpc_service]` or `#[rpc_service(name = \"package.Service\")]`";
const METHOD_FORMS: &str =
    "expected `#[rpc(name = \"wire_name\")]`, `#[rpc(oneway)]` or `#[rpc(idempotent)]`";

/// Arguments of `#[rpc_service(...)]`.
#[derive(Default)]
pub struct ServiceArgs {
    /// `name = "..."`: the service's wire name.
    pub name: Option<LitStr>,
}

/// Arguments of one method's `#[rpc(...)]`.
#[derive(Default)]
pub struct MethodArgs {
    /// `name = "..."`: the method's wire name.
    pub name: Option<LitStr>,
    /// `oneway`: the caller wants no answer.
    pub oneway: Option<syn::Path>,
    /// `idempotent`: safe to run more than once.
    pub idempotent: Option<syn::Path>,
}

/// Parses `#[rpc_service(...)]`'s arguments.
pub fn service_args(cx: &Ctxt, args: TokenStream) -> ServiceArgs {
    let mut out = ServiceArgs::default();
    if args.is_empty() {
        return out;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let lit = name_value(&meta, "package.Service")?;
            check_name(cx, &lit, "the trait's name");
            if out.name.replace(lit).is_some() {
                return Err(meta.error("`name` is given twice; keep one"));
            }
            Ok(())
        } else {
            Err(unknown_argument(&meta, SERVICE_FORMS))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(e);
    }
    out
}

/// Parses every `#[rpc(...)]` among `attrs`.
pub fn method_args(cx: &Ctxt, attrs: &[Attribute]) -> MethodArgs {
    let mut out = MethodArgs::default();
    for attr in attrs.iter().filter(|a| is_rpc_attr(a)) {
        if !matches!(attr.meta, Meta::List(_)) {
            cx.error_spanned_by(attr, METHOD_FORMS);
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit = name_value(&meta, "wire_name")?;
                check_name(cx, &lit, "the method's name");
                if out.name.replace(lit).is_some() {
                    return Err(meta.error("`name` is given twice; keep one"));
                }
                Ok(())
            } else if meta.path.is_ident("oneway") || meta.path.is_ident("idempotent") {
                let word = if meta.path.is_ident("oneway") {
                    "oneway"
                } else {
                    "idempotent"
                };
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    return Err(meta.error(format_args!(
                        "`{word}` takes no value: write `#[rpc({word})]`"
                    )));
                }
                let slot = if word == "oneway" {
                    &mut out.oneway
                } else {
                    &mut out.idempotent
                };
                if slot.replace(meta.path.clone()).is_some() {
                    return Err(meta.error(format_args!("`{word}` is given twice; keep one")));
                }
                Ok(())
            } else {
                Err(unknown_argument(&meta, METHOD_FORMS))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    out
}

const ARG_FORMS: &str = "expected `#[rpc(default)]` on an argument";

/// Parses the `#[rpc(...)]` on an argument: `default`, kept for its span.
pub fn arg_default(cx: &Ctxt, attrs: &[Attribute]) -> Option<syn::Path> {
    let mut out = None;
    for attr in attrs.iter().filter(|a| is_rpc_attr(a)) {
        if !matches!(attr.meta, Meta::List(_)) {
            cx.error_spanned_by(attr, ARG_FORMS);
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    return Err(meta.error(
                        "`default` takes no value: the argument's `Default::default()` is used; write `#[rpc(default)]`",
                    ));
                }
                if out.replace(meta.path.clone()).is_some() {
                    return Err(meta.error("`default` is given twice; keep one"));
                }
                Ok(())
            } else {
                Err(unknown_argument(&meta, ARG_FORMS))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    out
}

/// Whether `attr` is the macro's own `#[rpc(...)]`, which it removes.
pub fn is_rpc_attr(attr: &Attribute) -> bool {
    attr.path().is_ident("rpc")
}

/// `unknown argument `foo`; expected ...`, spanned on the argument's path.
fn unknown_argument(meta: &ParseNestedMeta, forms: &str) -> syn::Error {
    let path = meta.path.get_ident().map_or_else(
        || "argument".to_owned(),
        |ident| format!("argument `{ident}`"),
    );
    meta.error(format_args!("unknown {path}; {forms}"))
}

/// The string after `name =`, with errors that show the form to write.
fn name_value(meta: &ParseNestedMeta, example: &str) -> syn::Result<LitStr> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format_args!(
            "`name` needs a value: write `name = \"{example}\"`"
        )));
    }
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => {
            // Suggest quoting what was written when it is a single word.
            let quoted = match &other {
                Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(ToString::to_string),
                Expr::Lit(l) if !matches!(l.lit, Lit::Verbatim(_)) => {
                    Some(quote::ToTokens::to_token_stream(&l.lit).to_string())
                }
                _ => None,
            };
            let suggestion = quoted
                .filter(|q| !q.contains('"'))
                .unwrap_or_else(|| example.to_owned());
            Err(syn::Error::new_spanned(
                other,
                format_args!(
                    "a wire name must be a string literal: write `name = \"{suggestion}\"`"
                ),
            ))
        }
    }
}

/// `default` says what an absent `name` falls back to.
fn check_name(cx: &Ctxt, lit: &LitStr, default: &str) {
    let value = lit.value();
    if value.is_empty() {
        cx.error_spanned_by(
            lit,
            format_args!(
                "a wire name cannot be empty; write a name, or remove `name = \"\"` to use {default}"
            ),
        );
    } else if value.chars().any(char::is_whitespace) {
        cx.error_spanned_by(
            lit,
            "a wire name cannot contain whitespace; separate words with `_` or `.` instead",
        );
    }
}
