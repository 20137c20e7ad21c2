//! `<Trait>Client<C = Channel>`: a typed view of anything that carries
//! calls (`C: Invoke`), a `Channel` by default.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, Type};

use super::{spans, CLIPPY_MAX_PARAMS};
use crate::parse::{streaming_item, Arg, Kind, Method, Refusal, Service};

/// The client struct, its constructors and one method per trait method.
pub fn generate(service: &Service) -> TokenStream {
    let trait_ident = &service.item.ident;
    let vis = &service.item.vis;
    let client = format_ident!("{}Client", trait_ident);
    let wire_name = &service.wire_name;
    let struct_doc = format!(
        "Client for the [`{trait_ident}`] service.\n\n\
         Each method sends one call through `C`, by default a [`Channel`](::rpc_runtime::Channel) \
         (any [`Invoke`](::rpc_runtime::Invoke) will do: a wrapper around a channel, a test double), \
         and returns `Result<T, RpcError>`, where `T` is the trait method's return type. \
         Cloning is cheap; clones share the connection, and calls from many tasks run concurrently.\n\n\
         A method encodes its arguments when it is called and returns a future that owns what it \
         needs (`Send + 'static`, holding a clone of `C`): await it, spawn it, or keep it for \
         `select!`. The call's deadline counts from the method call."
    );
    let methods = service.methods.iter().map(|m| method(wire_name, m));
    let descriptor = super::describe::generate(service);
    let fanout = format_ident!("{}Fanout", trait_ident);
    let fanout_doc = format!(
        "The calls of [`{client}`], each sent to every server behind `C` at once \
         (a [`BalancedChannel`](::rpc_runtime::balance::BalancedChannel), or any \
         [`Fanout`](::rpc_runtime::call::Fanout)): from `{client}::fanout`.\n\n\
         Each method returns every endpoint's name with its result; an endpoint that is not \
         ready is there with the reason. Methods that stream are not fanned out."
    );
    let fanout_methods = service
        .methods
        .iter()
        .filter_map(|m| fanout_method(wire_name, m));
    quote! {
        #[doc = #struct_doc]
        #[allow(dead_code)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #client<C = ::rpc_runtime::Channel> {
            channel: C,
            options: ::rpc_runtime::CallOptions,
        }

        #[allow(dead_code)]
        impl #client<::rpc_runtime::Channel> {
            /// The service's name on the wire.
            pub const SERVICE_NAME: &'static str = #wire_name;

            /// Opens a new TCP connection to `addr` and returns a client on it.
            ///
            /// # Errors
            ///
            /// Fails when the server cannot be reached or is not a server of
            /// this protocol; see [`Channel::connect`](::rpc_runtime::Channel::connect).
            pub async fn connect(
                addr: impl ::rpc_runtime::ToSocketAddrs,
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

            #descriptor
        }

        #[allow(dead_code)]
        impl<C: ::rpc_runtime::Invoke> #client<C> {
            /// A client that sends its calls through `channel`; several
            /// clients (of different services) can share one channel.
            #[must_use]
            pub fn new(channel: C) -> Self {
                Self { channel, options: ::rpc_runtime::CallOptions::new() }
            }

            /// A client on the same connection whose calls have `timeout` as
            /// their deadline, instead of the channel's default.
            #[must_use]
            pub fn with_timeout(&self, timeout: ::core::time::Duration) -> Self {
                self.with_options(::core::clone::Clone::clone(&self.options).timeout(timeout))
            }

            /// A client on the same connection whose calls ask for the
            /// metadata handlers attach to their answers, and put it in
            /// `slot` as each answer arrives: see
            /// [`CallOptions::reply_metadata`](::rpc_runtime::CallOptions::reply_metadata).
            #[must_use]
            pub fn with_reply_metadata(&self, slot: &::rpc_runtime::ReplyMetadata) -> Self {
                self.with_options(::core::clone::Clone::clone(&self.options).reply_metadata(slot))
            }

            /// A client on the same connection whose calls have no
            /// deadline (for endless streams): see
            /// [`CallOptions::no_deadline`](::rpc_runtime::CallOptions::no_deadline).
            #[must_use]
            pub fn without_timeout(&self) -> Self {
                self.with_options(::core::clone::Clone::clone(&self.options).no_deadline())
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

            /// What this client sends its calls through.
            #[must_use]
            pub fn channel(&self) -> &C {
                &self.channel
            }

            /// The same calls, with the same options, each sent to every
            /// server behind the channel at once: see
            #[doc = concat!(" [`", stringify!(#fanout), "`].")]
            #[must_use]
            pub fn fanout(&self) -> #fanout<C>
            where
                C: ::rpc_runtime::call::Fanout,
            {
                #fanout {
                    channel: ::core::clone::Clone::clone(&self.channel),
                    options: ::core::clone::Clone::clone(&self.options),
                }
            }

            #(#methods)*
        }

        #[doc = #fanout_doc]
        #[allow(dead_code)]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #fanout<C> {
            channel: C,
            options: ::rpc_runtime::CallOptions,
        }

        #[allow(dead_code)]
        impl<C: ::rpc_runtime::call::Fanout> #fanout<C> {
            #(#fanout_methods)*
        }
    }
}

/// The method's parameters after `&self`, as the trait declares them.
fn params(method: &Method) -> impl Iterator<Item = TokenStream> + '_ {
    method.args.iter().map(|arg| {
        let (ident, ty) = (&arg.ident, &arg.ty);
        quote!(#ident: #ty)
    })
}

/// The options a call of the method goes with: the client's, marked
/// idempotent for an idempotent method.
fn options(method: &Method) -> TokenStream {
    if method.idempotent.is_some() {
        quote!(&::core::clone::Clone::clone(&self.options).idempotent(true))
    } else {
        quote!(&self.options)
    }
}

/// `#[allow(clippy::too_many_arguments)]` for a method that has too many
/// (counting `&self`), and nothing otherwise.
fn allow_many_args(method: &Method) -> TokenStream {
    if 1 + method.args.len() > CLIPPY_MAX_PARAMS {
        quote!(#[allow(clippy::too_many_arguments)])
    } else {
        quote!()
    }
}

/// A method of the fanout client, for a method that sends and answers no
/// stream.
fn fanout_method(service_name: &str, method: &Method) -> Option<TokenStream> {
    if method.stream_arg().is_some() || method.stream_item.is_some() || method.refusal.is_some() {
        return None;
    }
    let ident = &method.ident;
    let wire_name = &method.wire_name;
    let attrs = method.forwarded_attrs();
    let params = params(method);
    let args: Vec<&Arg> = method.args.iter().collect();
    let (args_item, args) = encoded_args(&args);
    let options = options(method);
    let (finish, output, (first, last)) = if method.oneway.is_some() {
        let spans = (Span::call_site(), Span::call_site());
        ("fanout_oneway", quote!(()), spans)
    } else {
        let output = method.reply_type();
        ("fanout_unary", quote!(#output), spans::ends(output))
    };
    let kind = Ident::new(method.kind().variant(), Span::call_site());
    let finish = Ident::new(finish, last);
    let allow_many_args = allow_many_args(method);
    let slot = slot();
    let encoded = quote! {
        {
            #slot
            ::rpc_runtime::__private::encode(
                &SLOT, #options, #service_name, #wire_name, ::rpc_runtime::__private::CallKind::#kind, #args
            )
        }
    };
    // Where rustc reports a bound the answer's type misses: at that type,
    // as for the client's own method.
    let head = quote_spanned!(first=> ::);
    let call = quote_spanned!(last=> rpc_runtime::__private::#finish(&self.channel, #encoded));
    Some(quote! {
        #(#attrs)*
        #[doc = ""]
        #[doc = " Sent to every endpoint at once: each endpoint's name, with its result."]
        #allow_many_args
        pub fn #ident(&self, #(#params),*) -> impl ::core::future::Future<Output = ::rpc_runtime::call::Replies<#output>> + ::core::marker::Send + 'static {
            #args_item
            #head #call
        }
    })
}

fn method(service_name: &str, method: &Method) -> TokenStream {
    let ident = &method.ident;
    let wire_name = &method.wire_name;
    let attrs = method.forwarded_attrs();
    let output = method.reply_type();
    let params = params(method);
    let stream_arg = method.stream_arg();
    let encoded: Vec<&Arg> = method
        .args
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != stream_arg)
        .map(|(_, arg)| arg)
        .collect();
    let (args_item, args) = encoded_args(&encoded);
    let sent = stream_arg.and_then(|i| method.args.get(i));
    let sent_item = sent.map(|arg| streaming_item(&arg.ty).unwrap_or(&arg.ty));
    let semantics_doc = if method.refusal.is_some() {
        quote! {
            #[doc = ""]
            #[doc = " Streaming, refusable: returns once the server has accepted the stream (the stream then yields the items as they arrive, and a failure of the call as its last item) or refused it (the refusal is the call's result). Dropping the stream cancels the call."]
        }
    } else if method.stream_item.is_some() && sent.is_some() {
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
    // The call's kind, how it is encoded, and the function that sends it.
    let streaming = match method.refusal {
        Some(Refusal::Value) => "refusable",
        Some(Refusal::Status) => "refusable_status",
        None => "streaming",
    };
    let kind = method.kind();
    let finish = match kind {
        Kind::BothWays | Kind::ServerStream => streaming,
        Kind::ClientStream => "value",
        Kind::OneWay => "oneway",
        Kind::Unary => "unary",
    };
    let options = options(method);
    // Where rustc reports the call itself: a bound of the call's own that no
    // argument carries is reported there, and so is, again from the call and
    // from its `.await`, any bound on a type the future they return captures.
    // Both get one span, so that such an error is reported once.
    let (first, last) = if let Some(item) = sent_item {
        // The sent stream's items must be `Serialize`, and rustc blames the
        // stream for it: one token, and the call on the same token.
        let point = spans::point(item);
        (point, point)
    } else if method.oneway.is_some() {
        // Nothing to decode.
        (Span::call_site(), Span::call_site())
    } else {
        // What the call decodes must be `DeserializeOwned`.
        spans::ends(method.stream_item.as_ref().unwrap_or(output))
    };
    let sent = sent.map(|arg| {
        let sent = spans::located_at(&arg.ident, first);
        quote!(, #sent)
    });
    let finish = Ident::new(finish, last);
    let kind = Ident::new(kind.variant(), Span::call_site());
    // With a sent stream, the call that encodes it is where rustc reports
    // its items not being `Serialize`: at the items' type.
    let slot = slot();
    let encoded = if sent.is_some() {
        quote_spanned! {first=>
            {
                #slot
                ::rpc_runtime::__private::encode_with_stream(
                    &SLOT, #options, #service_name, #wire_name, ::rpc_runtime::__private::CallKind::#kind, #args #sent
                )
            }
        }
    } else {
        quote! {
            {
                #slot
                ::rpc_runtime::__private::encode(
                    &SLOT, #options, #service_name, #wire_name, ::rpc_runtime::__private::CallKind::#kind, #args
                )
            }
        }
    };
    let head = quote_spanned!(first=> ::);
    let call = quote_spanned!(last=> rpc_runtime::__private::#finish(&self.channel, #encoded));
    let mut call = quote!(#head #call);
    // With the call on the sent items, the answer is decoded as a local type
    // whose `Deserialize` requires the return type's, where the return type is
    // written. A returned stream cannot be wrapped so: a method streaming both
    // ways reports its answer items not being `DeserializeOwned` at the sent
    // items.
    let mut reply_item = quote!();
    if sent_item.is_some() && method.stream_item.is_none() {
        reply_item = decoded_reply(output);
        call = quote!(::rpc_runtime::__private::map_reply(#call, |__Reply(reply)| reply));
    }
    let errors_doc = if method.attrs.iter().any(|a| a.path().is_ident("doc")) {
        quote! {
            #[doc = ""]
        }
    } else {
        quote!()
    };
    // `&self` and the arguments.
    let allow_many_args = allow_many_args(method);
    quote! {
        #(#attrs)*
        #semantics_doc
        #errors_doc
        #[doc = " # Errors"]
        #[doc = ""]
        #[doc = " Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely."]
        #allow_many_args
        #[inline]
        pub fn #ident(&self, #(#params),*) -> impl ::core::future::Future<Output = ::core::result::Result<#output, ::rpc_runtime::RpcError>> + ::core::marker::Send + 'static {
            #args_item
            #reply_item
            #call
        }
    }
}

/// The arguments a request carries, as the tuple `(a, b, ...)` of them (`()`
/// for none), which the server decodes: an item to declare first, and the
/// expression to pass.
///
/// The tuple is written by a local struct whose `Serialize` does exactly what
/// the tuple's would, one element after the other. Each element then requires
/// `Serialize` on its own, through the argument's type as written, so that a
/// type that is not `Serialize` is reported there, once; required through
/// the tuple, it would be reported at the attribute.
fn encoded_args(args: &[&Arg]) -> (TokenStream, TokenStream) {
    if args.is_empty() {
        return (quote!(), quote!(&()));
    }
    let types: Vec<&Type> = args.iter().map(|arg| &arg.ty).collect();
    let idents = args.iter().map(|arg| &arg.ident);
    let indices = (0..args.len()).map(syn::Index::from);
    let len = Literal::usize_unsuffixed(args.len());
    let item = quote! {
        struct __Args<'__a>(#(&'__a #types),*);

        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple =
                    ::rpc_runtime::__private::serde::Serializer::serialize_tuple(serializer, #len)?;
                #(
                    ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<#types>(
                        &mut tuple,
                        self.#indices,
                    )?;
                )*
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
    };
    (item, quote!(&__Args(#(&#idents),*)))
}

/// A local `__Reply` that decodes as `output` does: as the answer a call
/// decodes, it is `DeserializeOwned` whatever `output` is, and requires
/// `output: Deserialize` itself, where `output` is written.
fn decoded_reply(output: &Type) -> TokenStream {
    quote! {
        struct __Reply(#output);

        impl<'__de> ::rpc_runtime::__private::serde::Deserialize<'__de> for __Reply {
            fn deserialize<__D>(
                deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error>
            where
                __D: ::rpc_runtime::__private::serde::Deserializer<'__de>,
            {
                ::core::result::Result::map(
                    <#output as ::rpc_runtime::__private::serde::Deserialize<'__de>>::deserialize(
                        deserializer,
                    ),
                    __Reply,
                )
            }
        }
    }
}

/// The `static` a client method keeps its metrics in (found once, at its
/// first call).
fn slot() -> TokenStream {
    quote! {
        static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
    }
}
