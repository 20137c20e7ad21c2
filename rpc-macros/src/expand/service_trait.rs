//! The trait itself, rewritten so the futures the server spawns are `Send`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, Pat, ReturnType, TraitItem};

use crate::parse::Service;

/// `async fn m(&self, a: A) -> R;` becomes
/// `fn m(&self, a: A) -> impl Future<Output = R> + Send;`. Implementations
/// may still write `async fn`; the compiler then checks their futures are
/// `Send`.
pub fn generate(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    let mut methods = service.methods.iter();
    for trait_item in &mut item.items {
        let TraitItem::Fn(f) = trait_item else {
            continue;
        };
        let Some(method) = methods.next() else { break };
        f.attrs = method.attrs.clone();
        f.sig.asyncness = None;
        let output = &method.output;
        f.sig.output = ReturnType::Type(
            Default::default(),
            Box::new(syn::parse_quote! {
                impl ::core::future::Future<Output = #output> + ::core::marker::Send
            }),
        );
        // Patterns are not allowed in a method without a body: declare the
        // argument under a plain name (`mut x` → `x`, `_` → `argN`).
        let mut args = method.args.iter();
        for input in &mut f.sig.inputs {
            if let FnArg::Typed(pat_type) = input {
                // The macro's own `#[rpc(default)]` goes; `#[cfg]` and
                // friends stay.
                pat_type.attrs.retain(|a| !crate::attr::is_rpc_attr(a));
                if let Some(arg) = args.next() {
                    let ident = &arg.ident;
                    if !matches!(&*pat_type.pat, Pat::Wild(_)) {
                        *pat_type.pat = syn::parse_quote!(#ident);
                    }
                }
            }
        }
    }
    // A client-only crate never implements the trait: that is not dead code.
    item.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
    quote!(#item)
}
