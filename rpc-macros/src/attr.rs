//! The macro's own arguments: `#[rpc_service(...)]` on the trait and
//! `#[rpc(...)]` on its methods.

use proc_macro2::TokenStream;
use syn::{Attribute, LitStr};

use crate::ctxt::Ctxt;

const SERVICE_FORMS: &str =
    "expected `#[rpc_service]` or `#[rpc_service(name = \"package.Service\")]`";
const METHOD_FORMS: &str = "expected `#[rpc(name = \"wire_name\")]`";

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
}

/// Parses `#[rpc_service(...)]`'s arguments.
pub fn service_args(cx: &Ctxt, args: TokenStream) -> ServiceArgs {
    let mut out = ServiceArgs::default();
    if args.is_empty() {
        return out;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let lit: LitStr = meta.value()?.parse()?;
            check_name(cx, &lit);
            if out.name.replace(lit).is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            Ok(())
        } else {
            Err(meta.error(format_args!("unknown argument; {SERVICE_FORMS}")))
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
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                check_name(cx, &lit);
                if out.name.replace(lit).is_some() {
                    return Err(meta.error("`name` is given twice"));
                }
                Ok(())
            } else {
                Err(meta.error(format_args!("unknown argument; {METHOD_FORMS}")))
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

fn check_name(cx: &Ctxt, lit: &LitStr) {
    let value = lit.value();
    if value.is_empty() {
        cx.error_spanned_by(lit, "a wire name cannot be empty");
    } else if value.chars().any(char::is_whitespace) {
        cx.error_spanned_by(lit, "a wire name cannot contain whitespace");
    }
}
