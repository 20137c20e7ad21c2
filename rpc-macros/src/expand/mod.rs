//! Generation: the trait, the client and the server, each in its own module.

mod client;
mod describe;
mod server;
mod service_trait;
mod spans;

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, Item, ItemTrait, Pat, TraitItem};

use crate::attr;
use crate::ctxt::Ctxt;
use crate::parse::{Service, UnrawString};
use crate::valid;

/// Clippy's `too_many_arguments` fires on a function with more parameters
/// than this (its default threshold), `self` included.
const CLIPPY_MAX_PARAMS: usize = 7;

/// Parses, validates and generates; on any error, emits the errors beside the
/// trait as written, so the rest of the user's crate still type-checks.
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemTrait = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            let message = not_a_trait(&input, e).to_compile_error();
            return quote!(#message #input);
        }
    };
    let cx = Ctxt::default();
    let service = Service::from_trait(&cx, item, args);
    valid::check(&cx, &service);
    match cx.check() {
        Ok(()) => generate(&service),
        Err(errors) => fallback(&service.item, &errors),
    }
}

/// The error for an item that is not a trait, saying where the attribute goes.
fn not_a_trait(input: &TokenStream, e: syn::Error) -> syn::Error {
    const FORM: &str = "`pub trait Name { async fn method(&self, ...) -> T; }`";
    let message = match syn::parse2::<Item>(input.clone()) {
        Ok(Item::Impl(item)) => match &item.trait_ {
            Some((_, path, _)) => format!(
                "#[rpc_service] goes on the trait itself, not on an `impl` of it; move it onto `trait {}`",
                path.segments
                    .last()
                    .map_or_else(String::new, |s| s.ident.to_string())
            ),
            None => format!("#[rpc_service] goes on a trait, not on an `impl` block: {FORM}"),
        },
        Ok(Item::TraitAlias(_)) => {
            format!("#[rpc_service] cannot be used on a trait alias; write a trait: {FORM}")
        }
        _ => format!("#[rpc_service] can only be used on a trait: {FORM}"),
    };
    syn::Error::new(e.span(), message)
}

fn generate(service: &Service) -> TokenStream {
    let service_trait = service_trait::generate(service);
    let client = client::generate(service);
    let server = server::generate(service);
    quote! {
        #service_trait
        #client
        #server
    }
}

/// The trait as written, so the rest of the crate still type-checks against
/// it, plus the errors. Only what rustc would reject a second time is changed:
/// the macro's own `#[rpc]` attributes (on methods and arguments), `auto`, `const fn`, `...`, patterns in
/// methods without a body, and a method declared twice.
fn fallback(item: &ItemTrait, errors: &syn::Error) -> TokenStream {
    let mut item = item.clone();
    item.auto_token = None;
    let mut idents = HashSet::new();
    item.items.retain(|trait_item| match trait_item {
        TraitItem::Fn(f) if !f.attrs.iter().any(|a| a.path().is_ident("cfg")) => {
            idents.insert(f.sig.ident.unraw_string())
        }
        _ => true,
    });
    for trait_item in &mut item.items {
        let attrs = match trait_item {
            TraitItem::Fn(f) => {
                f.sig.constness = None;
                f.sig.variadic = None;
                for input in &mut f.sig.inputs {
                    if let FnArg::Typed(pat_type) = input {
                        pat_type.attrs.retain(|a| !attr::is_rpc_attr(a));
                        if f.default.is_none() {
                            plain_pattern(&mut pat_type.pat);
                        }
                    }
                }
                &mut f.attrs
            }
            TraitItem::Const(c) => &mut c.attrs,
            TraitItem::Type(t) => &mut t.attrs,
            TraitItem::Macro(m) => &mut m.attrs,
            _ => continue,
        };
        attrs.retain(|a| !attr::is_rpc_attr(a));
    }
    let errors = errors.to_compile_error();
    quote! {
        #errors
        #[allow(async_fn_in_trait)]
        #item
    }
}

/// `mut x` → `x`, any other pattern but a plain name → `_`: rustc allows
/// nothing else in a method without a body.
fn plain_pattern(pat: &mut Pat) {
    match pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.mutability = None,
        Pat::Wild(_) => {}
        other => *other = syn::parse_quote!(_),
    }
}
