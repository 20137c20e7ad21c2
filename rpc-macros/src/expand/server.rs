//! `<Trait>Server<T>`: routes calls to an implementation of the trait.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, Type};

use super::{spans, CLIPPY_MAX_PARAMS};
use crate::parse::{streaming_item, Method, Refusal, Service};

/// The server struct and its `Service` impl.
pub fn generate(service: &Service) -> TokenStream {
    let trait_ident = &service.item.ident;
    let vis = &service.item.vis;
    let server = format_ident!("{}Server", trait_ident);
    let client = format_ident!("{}Client", trait_ident);
    let wire_name = &service.wire_name;
    let struct_doc = format!(
        "Serves the [`{trait_ident}`] service with an implementation `T`.\n\n\
         Hand it to [`ServerBuilder::add_service`](::rpc_runtime::ServerBuilder::add_service). \
         Every call runs as its own task, calling `T`'s method through `&T`; `T` is shared, not cloned."
    );
    let arms = service.methods.iter().map(|m| arm(trait_ident, m));
    let method_names = service.methods.iter().map(|m| {
        let cfgs = m.cfg_attrs();
        let name = &m.wire_name;
        quote!(#(#cfgs)* #name)
    });
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

            fn methods(&self) -> &[&str] {
                &[#(#method_names),*]
            }

            fn descriptor(&self) -> ::core::option::Option<::rpc_runtime::reflection::ServiceDescriptor> {
                ::core::option::Option::Some(#client::<::rpc_runtime::Channel>::descriptor())
            }

            fn call(
                &self,
                request: ::rpc_runtime::service::Request,
            ) -> ::rpc_runtime::ServiceFuture {
                // Matched as bytes: the server found the method by its id.
                match ::rpc_runtime::__private::method_bytes(&request) {
                    #(#arms)*
                    _ => ::rpc_runtime::__private::unknown_method(Self::SERVICE_NAME, request.method()),
                }
            }
        }
    }
}

fn arm(trait_ident: &syn::Ident, method: &Method) -> TokenStream {
    let ident = &method.ident;
    let wire_bytes = syn::LitByteStr::new(method.wire_name.as_bytes(), Span::call_site());
    let cfgs = method.cfg_attrs();
    let bindings: Vec<_> = (0..method.args.len())
        .map(|i| format_ident!("arg{}", i))
        .collect();
    // The stream the caller sends is not in the encoded arguments: it is
    // taken from the call's context.
    let stream_arg = method.stream_arg();
    let mut take_stream = quote!(::rpc_runtime::__private::no_stream()?;);
    let mut decoded: Vec<(&Ident, &Type, bool)> = Vec::new();
    for (i, (binding, arg)) in bindings.iter().zip(&method.args).enumerate() {
        if Some(i) == stream_arg {
            // Its items must be `DeserializeOwned`, a bound of the call's
            // own: the call is spanned as the item type.
            let item = streaming_item(&arg.ty).unwrap_or(&arg.ty);
            let (first, last) = spans::ends(item);
            let head = quote_spanned!(first=> ::);
            let tail = quote_spanned!(last=> rpc_runtime::__private::take_stream());
            take_stream = quote!(let #binding = #head #tail?;);
        } else {
            decoded.push((binding, &arg.ty, arg.default.is_some()));
        }
    }
    let decode = decode(ident, &decoded);
    let allow_deprecated = if method.is_deprecated() {
        quote!(#[allow(deprecated)])
    } else {
        quote!()
    };
    // The reply is the argument rustc blames when it is not `Serialize`: it
    // is declared, and passed, with the return type's spans (the item type's,
    // for a stream); the encoder, "required by a bound introduced by this
    // call", with the method's name.
    let (reply, encode) = match &method.stream_item {
        Some(item) => {
            let reply = Ident::new("reply", spans::point(item));
            let encode = match method.refusal {
                Some(Refusal::Value) => {
                    quote_spanned!(ident.span()=> ::rpc_runtime::__private::encode_refusable)
                }
                Some(Refusal::Status) => {
                    quote_spanned!(ident.span()=> ::rpc_runtime::__private::encode_refusable_status)
                }
                None => quote_spanned!(ident.span()=> ::rpc_runtime::__private::encode_stream),
            };
            let encode = quote!(#encode(#reply));
            (reply, encode)
        }
        None if method.status_value.is_some() => {
            // `Result<T, Status>`: `T` must be `Serialize`, and the error
            // must be the runtime's `Status` (the helper's parameter says so).
            let value = method.reply_type();
            let reply = Ident::new("reply", spans::ends(value).1);
            let encode =
                quote_spanned!(ident.span()=> ::rpc_runtime::__private::encode_status_reply);
            (reply.clone(), quote!(#encode(#reply)))
        }
        None => {
            let (first, last) = spans::ends(&method.output);
            let reply = Ident::new("reply", last);
            let borrow = quote_spanned!(first=> &);
            let encode = quote_spanned!(ident.span()=> ::rpc_runtime::__private::encode_reply);
            let encode = quote!(#encode(#borrow #reply));
            (reply, encode)
        }
    };
    quote! {
        #(#cfgs)*
        #wire_bytes => {
            let args = ::rpc_runtime::service::Request::into_args(request);
            let implementation = ::core::clone::Clone::clone(&self.inner);
            ::rpc_runtime::__private::Box::pin(async move {
                #take_stream
                #decode
                #allow_deprecated
                let #reply = <T as #trait_ident>::#ident(&*implementation, #(#bindings),*).await;
                #encode
            })
        }
    }
}

/// `let (arg0, arg1, ...) = ...?;`: decodes the arguments a request carries,
/// the tuple of them.
///
/// Through a local function that requires `DeserializeOwned` of each
/// argument on its own (the tuple's follows), each introduced by a marker
/// argument spanned as the argument's type: a type that is not
/// `DeserializeOwned` is reported there, once. Required of the tuple, it
/// would be reported at the attribute. (The types are not named here: inside
/// `impl<T>`, a user's type called `T` would be taken for the parameter.)
fn decode(method: &Ident, decoded: &[(&Ident, &Type, bool)]) -> TokenStream {
    if decoded.is_empty() {
        return quote!(let () = ::rpc_runtime::__private::decode_args(&args)?;);
    }
    let bindings = decoded.iter().map(|(binding, ..)| binding);
    let params: Vec<Ident> = (0..decoded.len())
        .map(|i| format_ident!("A{}", i))
        .collect();
    let markers = decoded.iter().map(|(_, ty, _)| {
        let (first, last) = spans::ends(ty);
        let head = quote_spanned!(first=> ::);
        let tail = quote_spanned!(last=> core::marker::PhantomData);
        quote!(#head #tail)
    });
    // "required by a bound introduced by this call", at the method's name.
    let function = Ident::new(
        "decode_arguments",
        Span::call_site().located_at(method.span()),
    );
    // One at a time: an argument that is `Bytes` is a slice of the request,
    // and a request from an older client ends before the `#[rpc(default)]`
    // arguments it does not know.
    let bounds = decoded.iter().map(|(.., default)| {
        if *default {
            quote!(
                ::rpc_runtime::__private::serde::de::DeserializeOwned
                    + ::core::default::Default
                    + 'static
            )
        } else {
            quote!(::rpc_runtime::__private::serde::de::DeserializeOwned + 'static)
        }
    });
    let reads = decoded.iter().map(|(.., default)| {
        if *default {
            quote!(reader.read_or_default()?)
        } else {
            quote!(reader.read()?)
        }
    });
    let body = quote! {
        let mut reader = ::rpc_runtime::__private::ArgReader::new(args);
        let decoded = (#(#reads,)*);
        reader.finish()?;
        ::core::result::Result::Ok(decoded)
    };
    // The bytes and a marker per argument.
    let allow_many_args = if 1 + decoded.len() > CLIPPY_MAX_PARAMS {
        quote!(#[allow(clippy::too_many_arguments)])
    } else {
        quote!()
    };
    quote! {
        let (#(#bindings,)*) = {
            #allow_many_args
            fn decode_arguments<#(#params),*>(
                args: &::rpc_runtime::__private::Bytes,
                #(_: ::core::marker::PhantomData<#params>,)*
            ) -> ::core::result::Result<(#(#params,)*), ::rpc_runtime::RpcError>
            where
                #(#params: #bounds,)*
            {
                #body
            }
            #function(&args, #(#markers),*)?
        };
    }
}
