//! `<Trait>Client`: a typed view of a `Channel`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::parse::{Method, Service};

/// The client struct, its constructors and one method per trait method.
pub fn generate(service: &Service) -> TokenStream {
    let trait_ident = &service.item.ident;
    let vis = &service.item.vis;
    let client = format_ident!("{}Client", trait_ident);
    let wire_name = &service.wire_name;
    let struct_doc = format!(
        "Client for the [`{trait_ident}`] service.\n\n\
         Each method sends one call over the underlying [`Channel`](::rpc_runtime::Channel) \
         and returns `Result<T, RpcError>`, where `T` is the trait method's return type. \
         Cloning is cheap; clones share the connection, and calls from many tasks run concurrently."
    );
    let methods = service.methods.iter().map(method);
    quote! {
        #[doc = #struct_doc]
        #[allow(dead_code)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client {
            channel: ::rpc_runtime::Channel,
            options: ::rpc_runtime::CallOptions,
        }

        #[allow(dead_code)]
        impl #client {
            /// The service's name on the wire.
            pub const SERVICE_NAME: &'static str = #wire_name;

            /// A client that sends its calls over `channel`; several clients
            /// (of different services) can share one channel.
            #[must_use]
            pub fn new(channel: ::rpc_runtime::Channel) -> Self {
                Self { channel, options: ::rpc_runtime::CallOptions::new() }
            }

            /// A client on the same connection whose calls have `timeout` as
            /// their deadline, instead of the channel's default.
            #[must_use]
            pub fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
                self.with_options(::core::clone::Clone::clone(&self.options).timeout(timeout))
            }

            /// A client on the same connection whose calls also carry the
            /// metadata entry `key` = `value` (readable in the handler through
            /// [`CallContext::metadata`](::rpc_runtime::CallContext::metadata)).
            #[must_use]
            pub fn with_metadata(
                &self,
                key: impl ::core::convert::Into<::std::string::String>,
                value: impl ::core::convert::Into<::rpc_runtime::MetadataValue>,
            ) -> Self {
                self.with_options(::core::clone::Clone::clone(&self.options).metadata(key, value))
            }

            /// A client on the same connection whose calls use `options`.
            #[must_use]
            pub fn with_options(&self, options: ::rpc_runtime::CallOptions) -> Self {
                Self { channel: ::core::clone::Clone::clone(&self.channel), options }
            }

            /// The options every call of this client uses.
            #[must_use]
            pub fn options(&self) -> &::rpc_runtime::CallOptions {
                &self.options
            }

            /// Opens a new TCP connection to `addr` and returns a client on it.
            ///
            /// # Errors
            ///
            /// Fails when the server cannot be reached or is not a server of
            /// this protocol; see [`Channel::connect`](::rpc_runtime::Channel::connect).
            pub async fn connect(
                addr: impl ::rpc_runtime::__private::ToSocketAddrs,
            ) -> ::core::result::Result<Self, ::rpc_runtime::RpcError> {
                ::core::result::Result::Ok(Self::new(::rpc_runtime::Channel::connect(addr).await?))
            }

            /// A client for the peer whose call the current task is serving,
            /// over the connection that call came on: for calling a client
            /// back from a server's handler (see
            /// [`CallContext::channel`](::rpc_runtime::CallContext::channel)).
            /// `None` outside a handler, or when the caller serves nothing on
            /// its connection.
            #[must_use]
            pub fn caller() -> ::core::option::Option<Self> {
                ::core::option::Option::map(::rpc_runtime::__private::caller_channel(), Self::new)
            }

            /// The channel this client sends its calls over.
            #[must_use]
            pub fn channel(&self) -> &::rpc_runtime::Channel {
                &self.channel
            }

            #(#methods)*
        }
    }
}

fn method(method: &Method) -> TokenStream {
    let ident = &method.ident;
    let wire_name = &method.wire_name;
    let attrs = method.forwarded_attrs();
    let output = &method.output;
    let params = method.args.iter().map(|arg| {
        let (ident, ty) = (&arg.ident, &arg.ty);
        quote!(#ident: #ty)
    });
    let stream_arg = method.stream_arg();
    let refs = method
        .args
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != stream_arg)
        .map(|(_, arg)| {
            let ident = &arg.ident;
            quote!(&#ident,)
        })
        .collect::<Vec<_>>();
    let sent = stream_arg
        .and_then(|i| method.args.get(i))
        .map(|arg| &arg.ident);
    let semantics_doc = if method.stream_item.is_some() && sent.is_some() {
        quote! {
            #[doc = ""]
            #[doc = " Streaming both ways: returns once the request is sent; the argument stream is sent as the server takes it, and the returned stream yields the answers as they arrive (a failure of the call as its last item). Dropping the returned stream cancels the call."]
        }
    } else if method.stream_item.is_some() {
        quote! {
            #[doc = ""]
            #[doc = " Streaming: returns once the request is sent; the stream yields the items as they arrive, and a failure of the call as its last item. Dropping the stream cancels the call."]
        }
    } else if sent.is_some() {
        quote! {
            #[doc = ""]
            #[doc = " Sends its stream argument as the server takes it, then returns the one answer."]
        }
    } else if method.oneway.is_some() {
        quote! {
            #[doc = ""]
            #[doc = " One-way: returns once the request is written; the server runs it and sends no answer."]
        }
    } else if method.idempotent.is_some() {
        quote! {
            #[doc = ""]
            #[doc = " Idempotent: sent again automatically if the connection breaks before the answer arrives."]
        }
    } else {
        quote!()
    };
    let call = if let (Some(sent), true) = (sent, method.stream_item.is_some()) {
        quote!(self.channel.call_streaming_with_stream(&self.options, Self::SERVICE_NAME, #wire_name, &(#(#refs)*), #sent).await)
    } else if let Some(sent) = sent {
        quote!(self.channel.call_with_stream(&self.options, Self::SERVICE_NAME, #wire_name, &(#(#refs)*), #sent).await)
    } else if method.stream_item.is_some() {
        quote!(self.channel.call_streaming_with(&self.options, Self::SERVICE_NAME, #wire_name, &(#(#refs)*)).await)
    } else if method.oneway.is_some() {
        quote!(self.channel.call_oneway_with(&self.options, Self::SERVICE_NAME, #wire_name, &(#(#refs)*)).await)
    } else if method.idempotent.is_some() {
        quote! {
            self.channel
                .call_with(
                    &::core::clone::Clone::clone(&self.options).idempotent(true),
                    Self::SERVICE_NAME,
                    #wire_name,
                    &(#(#refs)*),
                )
                .await
        }
    } else {
        quote!(self.channel.call_with(&self.options, Self::SERVICE_NAME, #wire_name, &(#(#refs)*)).await)
    };
    let errors_doc = if method.attrs.iter().any(|a| a.path().is_ident("doc")) {
        quote! {
            #[doc = ""]
        }
    } else {
        quote!()
    };
    quote! {
        #(#attrs)*
        #semantics_doc
        #errors_doc
        #[doc = " # Errors"]
        #[doc = ""]
        #[doc = " Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely."]
        #[allow(clippy::too_many_arguments)]
        pub async fn #ident(&self, #(#params),*) -> ::core::result::Result<#output, ::rpc_runtime::RpcError> {
            #call
        }
    }
}
