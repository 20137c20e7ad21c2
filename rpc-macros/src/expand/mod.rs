//! Generation: the trait, the client and the server, each in its own module.

mod client;
mod server;
mod service_trait;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemTrait;

use crate::ctxt::Ctxt;
use crate::parse::Service;
use crate::valid;

/// Parses, validates and generates; on any error, emits the errors beside the
/// trait as written, so the rest of the user's crate still type-checks.
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: ItemTrait = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            let message = syn::Error::new(
                e.span(),
                format_args!("#[rpc_service] goes on a trait: {e}"),
            )
            .to_compile_error();
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

/// The trait as written (minus the macro's own attributes) plus the errors.
fn fallback(item: &ItemTrait, errors: &syn::Error) -> TokenStream {
    let mut item = item.clone();
    for trait_item in &mut item.items {
        if let syn::TraitItem::Fn(f) = trait_item {
            f.attrs.retain(|a| !crate::attr::is_rpc_attr(a));
        }
    }
    let errors = errors.to_compile_error();
    quote! {
        #errors
        #[allow(async_fn_in_trait)]
        #item
    }
}
