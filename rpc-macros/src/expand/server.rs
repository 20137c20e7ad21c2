//! `<Trait>Server<T>`: routes calls to an implementation of the trait.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::parse::{Method, Service};

/// The server struct and its `Service` impl.
pub fn generate(service: &Service) -> TokenStream {
    let trait_ident = &service.item.ident;
    let vis = &service.item.vis;
    let server = format_ident!("{}Server", trait_ident);
    let wire_name = &service.wire_name;
    let struct_doc = format!(
        "Serves the [`{trait_ident}`] service with an implementation `T`.\n\n\
         Hand it to [`ServerBuilder::add_service`](::rpc_runtime::ServerBuilder::add_service). \
         Every call runs as its own task, calling `T`'s method through `&T`; `T` is shared, not cloned."
    );
    let arms = service.methods.iter().map(|m| arm(trait_ident, m));
    quote! {
        #[doc = #struct_doc]
        #[allow(dead_code)]
        #vis struct #server<T> {
            inner: ::rpc_runtime::__private::Arc<T>,
        }

        #[allow(dead_code)]
        impl<T> #server<T> {
            /// The service's name on the wire.
            pub const SERVICE_NAME: &'static str = #wire_name;

            /// Serves calls with `implementation`.
            #[must_use]
            pub fn new(implementation: T) -> Self {
                Self { inner: ::rpc_runtime::__private::Arc::new(implementation) }
            }

            /// Serves calls with an implementation that is shared elsewhere too.
            #[must_use]
            pub fn from_arc(implementation: ::rpc_runtime::__private::Arc<T>) -> Self {
                Self { inner: implementation }
            }

            /// The implementation.
            #[must_use]
            pub fn get_ref(&self) -> &T {
                &self.inner
            }
        }

        impl<T> ::core::clone::Clone for #server<T> {
            fn clone(&self) -> Self {
                Self { inner: ::core::clone::Clone::clone(&self.inner) }
            }
        }

        impl<T> ::core::fmt::Debug for #server<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#server)).finish_non_exhaustive()
            }
        }

        impl<T> ::rpc_runtime::Service for #server<T>
        where
            T: #trait_ident + ::core::marker::Send + ::core::marker::Sync + 'static,
        {
            fn name(&self) -> &str {
                Self::SERVICE_NAME
            }

            fn call(
                &self,
                method: &str,
                args: ::rpc_runtime::__private::Bytes,
            ) -> ::rpc_runtime::ServiceFuture {
                match method {
                    #(#arms)*
                    _ => ::rpc_runtime::__private::unknown_method(Self::SERVICE_NAME, method),
                }
            }
        }
    }
}

fn arm(trait_ident: &syn::Ident, method: &Method) -> TokenStream {
    let ident = &method.ident;
    let wire_name = &method.wire_name;
    let cfgs = method.cfg_attrs();
    let bindings: Vec<_> = (0..method.args.len())
        .map(|i| format_ident!("arg{}", i))
        .collect();
    // The stream the caller sends is not in the encoded arguments: it is
    // taken from the call's context.
    let stream_arg = method.stream_arg();
    let decoded = bindings
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != stream_arg)
        .map(|(_, binding)| binding);
    let take_stream = match stream_arg.and_then(|i| bindings.get(i)) {
        Some(binding) => quote!(let #binding = ::rpc_runtime::__private::take_stream()?;),
        None => quote!(::rpc_runtime::__private::no_stream()?;),
    };
    let allow_deprecated = if method.is_deprecated() {
        quote!(#[allow(deprecated)])
    } else {
        quote!()
    };
    let encode = if method.stream_item.is_some() {
        quote!(::rpc_runtime::__private::encode_stream(reply))
    } else {
        quote!(::rpc_runtime::__private::encode_reply(&reply))
    };
    quote! {
        #(#cfgs)*
        #wire_name => {
            let implementation = ::core::clone::Clone::clone(&self.inner);
            ::rpc_runtime::__private::Box::pin(async move {
                #take_stream
                let (#(#decoded,)*) = ::rpc_runtime::__private::decode_args(&args)?;
                #allow_deprecated
                let reply = <T as #trait_ident>::#ident(&*implementation, #(#bindings),*).await;
                #encode
            })
        }
    }
}
