//! The generated code names everything by absolute path, so it compiles next
//! to user items that shadow the prelude, beside a local `mod rpc_runtime`,
//! inside a `#![no_implicit_prelude]` module, and without a single warning
//! under `deny(warnings, missing_docs, clippy::pedantic)`.

#![deny(warnings, missing_docs, clippy::pedantic)]

/// Shadows every name the generated code could have relied on.
pub mod shadowed {
    #![allow(dead_code)]

    /// Not `core::result::Result`.
    pub struct Result;
    /// Not `core::option::Option`.
    pub struct Option;
    /// Not `alloc::boxed::Box`.
    pub struct Box;
    /// Not `core::marker::Send`.
    pub trait Send {}
    /// Not `core::marker::Sync`.
    pub trait Sync {}
    /// Not `core::future::Future`.
    pub trait Future {}
    /// Not `core::clone::Clone`.
    pub trait Clone {}
    /// Not `alloc::string::String`.
    pub struct String;
    /// Not `alloc::sync::Arc`.
    pub struct Arc;
    /// Not the runtime crate.
    pub mod rpc_runtime {}
    /// Not `serde`.
    pub mod serde {}

    /// A service declared among the shadows.
    #[::rpc_runtime::rpc_service]
    pub trait Shadowed {
        /// Uses only std types by full path.
        async fn greet(&self, name: ::std::string::String) -> ::std::string::String;
        /// Returns nothing.
        async fn nothing(&self);
        /// A typed application error.
        async fn check(&self, n: u32) -> ::core::result::Result<u32, ::std::string::String>;
        /// Fails with a status.
        async fn strict(&self, n: u32) -> ::core::result::Result<u32, ::rpc_runtime::Status>;
    }

    /// The implementation.
    pub struct Impl;

    impl Shadowed for Impl {
        async fn greet(&self, name: ::std::string::String) -> ::std::string::String {
            ::std::format!("hi {name}")
        }
        async fn nothing(&self) {}
        async fn check(&self, n: u32) -> ::core::result::Result<u32, ::std::string::String> {
            if n > 10 {
                ::core::result::Result::Err(::std::string::ToString::to_string("too big"))
            } else {
                ::core::result::Result::Ok(n)
            }
        }
        async fn strict(&self, n: u32) -> ::core::result::Result<u32, ::rpc_runtime::Status> {
            if n > 10 {
                ::core::result::Result::Err(::rpc_runtime::Status::out_of_range("too big"))
            } else {
                ::core::result::Result::Ok(n)
            }
        }
    }
}

/// A module without the prelude at all.
pub mod bare {
    #![no_implicit_prelude]

    /// A service declared without the prelude.
    #[::rpc_runtime::rpc_service(name = "hygiene.Bare")]
    pub trait Bare {
        /// Doubles a list.
        async fn double(&self, values: ::std::vec::Vec<i32>) -> ::std::vec::Vec<i32>;
        /// Renamed on the wire.
        #[rpc(name = "count")]
        async fn length(&self, text: ::std::string::String) -> usize;
        /// A stream of the numbers below `n`.
        async fn below(&self, n: u32) -> ::rpc_runtime::Streaming<u32>;
        /// The sum of a stream.
        async fn total(&self, values: ::rpc_runtime::Streaming<u32>) -> u32;
    }

    /// The implementation.
    pub struct Impl;

    impl Bare for Impl {
        async fn double(&self, values: ::std::vec::Vec<i32>) -> ::std::vec::Vec<i32> {
            ::std::iter::Iterator::collect(::std::iter::Iterator::map(
                ::std::iter::IntoIterator::into_iter(values),
                |v| v * 2,
            ))
        }
        async fn length(&self, text: ::std::string::String) -> usize {
            text.len()
        }
        async fn below(&self, n: u32) -> ::rpc_runtime::Streaming<u32> {
            ::rpc_runtime::Streaming::from_iter(0..n)
        }
        async fn total(&self, values: ::rpc_runtime::Streaming<u32>) -> u32 {
            let mut values = values;
            let mut total = 0;
            while let ::core::option::Option::Some(::core::result::Result::Ok(v)) =
                ::futures::StreamExt::next(&mut values).await
            {
                total += v;
            }
            total
        }
    }
}

/// A crate-private service with the same method names as another service
/// in the same crate.
pub(crate) mod private {
    /// Also has `greet`.
    #[rpc_runtime::rpc_service]
    pub(crate) trait Twin {
        /// Same name as `Shadowed::greet`.
        async fn greet(&self, name: String) -> String;
    }

    /// The implementation.
    pub(crate) struct Impl;

    impl Twin for Impl {
        async fn greet(&self, name: String) -> String {
            format!("hello {name}")
        }
    }
}

#[tokio::test]
async fn shadowed_and_bare_services_work() {
    use rpc_runtime::{transport::memory, Channel, Server};

    let (listener, addr) = memory::listener();
    let server = Server::builder()
        .add_service(shadowed::ShadowedServer::new(shadowed::Impl))
        .add_service(bare::BareServer::new(bare::Impl))
        .add_service(private::TwinServer::new(private::Impl))
        .serve(listener)
        .unwrap();
    let channel = Channel::builder()
        .connect_io(addr.connect().unwrap(), "memory")
        .await
        .unwrap();

    let s = shadowed::ShadowedClient::new(channel.clone());
    assert_eq!(s.greet("ann".into()).await.unwrap(), "hi ann");
    s.nothing().await.unwrap();
    assert_eq!(s.check(3).await.unwrap(), Ok(3));
    assert_eq!(s.check(30).await.unwrap(), Err("too big".to_owned()));

    let b = bare::BareClient::new(channel.clone());
    assert_eq!(b.double(vec![1, 2]).await.unwrap(), vec![2, 4]);
    assert_eq!(b.length("four".into()).await.unwrap(), 4);
    let below: Vec<u32> = futures::StreamExt::collect::<Vec<_>>(b.below(3).await.unwrap())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(below, [0, 1, 2]);
    let total = b
        .total(rpc_runtime::Streaming::from_iter([1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(total, 6);

    let t = private::TwinClient::new(channel);
    assert_eq!(t.greet("bo".into()).await.unwrap(), "hello bo");
    server.shutdown().await;
}
