#[allow(dead_code)]
pub trait Calculator {
    /// Adds two numbers.
    fn add(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<Output = i64> + ::core::marker::Send;
    /// Divides `a` by `b`; dividing by zero is an application error.
    fn divide(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<
        Output = Result<i64, MathError>,
    > + ::core::marker::Send;
    /// Does nothing, remotely.
    fn ping(&self) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
    /// Returns the name and how many tags came with it.
    fn echo(
        &self,
        name: String,
        tags: Vec<String>,
    ) -> impl ::core::future::Future<Output = (String, usize)> + ::core::marker::Send;
    /// Renamed on the wire.
    fn total(
        &self,
        values: Vec<i64>,
    ) -> impl ::core::future::Future<Output = i64> + ::core::marker::Send;
    /// Safe to run twice.
    fn get(
        &self,
        key: String,
    ) -> impl ::core::future::Future<Output = Option<i64>> + ::core::marker::Send;
    /// Fire and forget.
    fn log(
        &self,
        line: String,
    ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
    /// The running total of `values`, one item per value.
    fn totals(
        &self,
        values: rpc_runtime::Streaming<i64>,
    ) -> impl ::core::future::Future<
        Output = rpc_runtime::Streaming<i64>,
    > + ::core::marker::Send;
    /// The square root of `x`; a negative `x` fails with a status.
    fn sqrt(
        &self,
        x: f64,
    ) -> impl ::core::future::Future<
        Output = Result<f64, Status>,
    > + ::core::marker::Send;
    /// `x` rounded to `digits` places; `digits` was added later.
    fn round(
        &self,
        x: f64,
        digits: u32,
    ) -> impl ::core::future::Future<Output = f64> + ::core::marker::Send;
}
/**Client for the [`Calculator`] service.

Each method sends one call through `C`, by default a [`Channel`](::rpc_runtime::Channel) (any [`Invoke`](::rpc_runtime::Invoke) will do: a wrapper around a channel, a test double), and returns `Result<T, RpcError>`, where `T` is the trait method's return type. Cloning is cheap; clones share the connection, and calls from many tasks run concurrently.

A method encodes its arguments when it is called and returns a future that owns what it needs (`Send + 'static`, holding a clone of `C`): await it, spawn it, or keep it for `select!`. The call's deadline counts from the method call.*/
#[allow(dead_code)]
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
pub struct CalculatorClient<C = ::rpc_runtime::Channel> {
    channel: C,
    options: ::rpc_runtime::CallOptions,
}
#[allow(dead_code)]
impl CalculatorClient<::rpc_runtime::Channel> {
    /// The service's name on the wire.
    pub const SERVICE_NAME: &'static str = "Calculator";
    /// Opens a new TCP connection to `addr` and returns a client on it.
    ///
    /// # Errors
    ///
    /// Fails when the server cannot be reached or is not a server of
    /// this protocol; see [`Channel::connect`](::rpc_runtime::Channel::connect).
    pub async fn connect(
        addr: impl ::rpc_runtime::ToSocketAddrs,
    ) -> ::core::result::Result<Self, ::rpc_runtime::RpcError> {
        ::core::result::Result::Ok(
            Self::new(::rpc_runtime::Channel::connect(addr).await?),
        )
    }
    /// A client for the peer whose call the current task is serving,
    /// over the connection that call came on: for calling a client
    /// back from a server's handler (see
    /// [`CallContext::channel`](::rpc_runtime::CallContext::channel)).
    /// `None` outside a handler, or when the caller serves nothing on
    /// its connection.
    #[must_use]
    pub fn caller() -> ::core::option::Option<Self> {
        ::core::option::Option::map(
            ::rpc_runtime::__private::caller_channel(),
            Self::new,
        )
    }
    ///The description of the `Calculator` service: its methods, their documentation and flags, and the format of every type they carry (traced now; see [`reflection`](::rpc_runtime::reflection)).
    #[must_use]
    pub fn descriptor() -> ::rpc_runtime::reflection::ServiceDescriptor {
        use ::rpc_runtime::__private::{Traced as _, Untraced as _};
        let mut service = ::rpc_runtime::__private::Describer::new("Calculator", "");
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "add",
                rust_name: "add",
                docs: "Adds two numbers.",
                signature: "add(a: i64, b: i64) -> i64",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("a", false, (& ::rpc_runtime::__private::Tracing:: < i64 > ::new())
                    .trace_fn()), ("b", false, (& ::rpc_runtime::__private::Tracing:: <
                    i64 > ::new()).trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<i64>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "divide",
                rust_name: "divide",
                docs: "Divides `a` by `b`; dividing by zero is an application error.",
                signature: "divide(a: i64, b: i64) -> Result<i64, MathError>",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("a", false, (& ::rpc_runtime::__private::Tracing:: < i64 > ::new())
                    .trace_fn()), ("b", false, (& ::rpc_runtime::__private::Tracing:: <
                    i64 > ::new()).trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<i64>::new()).trace_fn(),
                error: ::core::option::Option::Some(
                    (&::rpc_runtime::__private::Tracing::<MathError>::new()).trace_fn(),
                ),
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "ping",
                rust_name: "ping",
                docs: "Does nothing, remotely.",
                signature: "ping()",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<()>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "echo",
                rust_name: "echo",
                docs: "Returns the name and how many tags came with it.",
                signature: "echo(name: String, tags: Vec<String>) -> (String, usize)",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("name", false, (& ::rpc_runtime::__private::Tracing:: < String >
                    ::new()).trace_fn()), ("tags", false, (&
                    ::rpc_runtime::__private::Tracing:: < Vec < String > > ::new())
                    .trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<(String, usize)>::new())
                    .trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "sum",
                rust_name: "total",
                docs: "Renamed on the wire.",
                signature: "total(values: Vec<i64>) -> i64",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("values", false, (& ::rpc_runtime::__private::Tracing:: < Vec < i64
                    > > ::new()).trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<i64>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "get",
                rust_name: "get",
                docs: "Safe to run twice.",
                signature: "get(key: String) -> Option<i64>",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: true,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("key", false, (& ::rpc_runtime::__private::Tracing:: < String >
                    ::new()).trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<Option<i64>>::new())
                    .trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "log",
                rust_name: "log",
                docs: "Fire and forget.",
                signature: "log(line: String)",
                kind: ::rpc_runtime::__private::CallKind::OneWay,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("line", false, (& ::rpc_runtime::__private::Tracing:: < String >
                    ::new()).trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<()>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "totals",
                rust_name: "totals",
                docs: "The running total of `values`, one item per value.",
                signature: "totals(values: rpc_runtime::Streaming<i64>) -> rpc_runtime::Streaming<i64>",
                kind: ::rpc_runtime::__private::CallKind::BothWays,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![],
                stream: ::core::option::Option::Some(
                    (&::rpc_runtime::__private::Tracing::<i64>::new()).trace_fn(),
                ),
                returns: (&::rpc_runtime::__private::Tracing::<i64>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "sqrt",
                rust_name: "sqrt",
                docs: "The square root of `x`; a negative `x` fails with a status.",
                signature: "sqrt(x: f64) -> Result<f64, Status>",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: true,
                args: ::std::vec![
                    ("x", false, (& ::rpc_runtime::__private::Tracing:: < f64 > ::new())
                    .trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<f64>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service
            .method(::rpc_runtime::__private::MethodShape {
                name: "round",
                rust_name: "round",
                docs: "`x` rounded to `digits` places; `digits` was added later.",
                signature: "round(x: f64, digits: u32) -> f64",
                kind: ::rpc_runtime::__private::CallKind::Unary,
                idempotent: false,
                refusable: false,
                status: false,
                args: ::std::vec![
                    ("x", false, (& ::rpc_runtime::__private::Tracing:: < f64 > ::new())
                    .trace_fn()), ("digits", true, (& ::rpc_runtime::__private::Tracing::
                    < u32 > ::new()).trace_fn())
                ],
                stream: ::core::option::Option::None,
                returns: (&::rpc_runtime::__private::Tracing::<f64>::new()).trace_fn(),
                error: ::core::option::Option::None,
            });
        service.finish()
    }
}
#[allow(dead_code)]
impl<C: ::rpc_runtime::Invoke> CalculatorClient<C> {
    /// A client that sends its calls through `channel`; several
    /// clients (of different services) can share one channel.
    #[must_use]
    pub fn new(channel: C) -> Self {
        Self {
            channel,
            options: ::rpc_runtime::CallOptions::new(),
        }
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
        self.with_options(
            ::core::clone::Clone::clone(&self.options).reply_metadata(slot),
        )
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
        self.with_options(
            ::core::clone::Clone::clone(&self.options).metadata(key, value),
        )
    }
    /// A client on the same connection whose calls use `options`.
    #[must_use]
    pub fn with_options(&self, options: ::rpc_runtime::CallOptions) -> Self {
        Self {
            channel: ::core::clone::Clone::clone(&self.channel),
            options,
        }
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
    #[doc = concat!(" [`", stringify!(CalculatorFanout), "`].")]
    #[must_use]
    pub fn fanout(&self) -> CalculatorFanout<C>
    where
        C: ::rpc_runtime::call::Fanout,
    {
        CalculatorFanout {
            channel: ::core::clone::Clone::clone(&self.channel),
            options: ::core::clone::Clone::clone(&self.options),
        }
    }
    /// Adds two numbers.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn add(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<i64, ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a i64, &'__a i64);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "add",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&a, &b),
                )
            },
        )
    }
    /// Divides `a` by `b`; dividing by zero is an application error.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn divide(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<Result<i64, MathError>, ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a i64, &'__a i64);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "divide",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&a, &b),
                )
            },
        )
    }
    /// Does nothing, remotely.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn ping(
        &self,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(), ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "ping",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &(),
                )
            },
        )
    }
    /// Returns the name and how many tags came with it.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn echo(
        &self,
        name: String,
        tags: Vec<String>,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(String, usize), ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a String, &'__a Vec<String>);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    String,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    Vec<String>,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "echo",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&name, &tags),
                )
            },
        )
    }
    /// Renamed on the wire.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn total(
        &self,
        values: Vec<i64>,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<i64, ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a Vec<i64>);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    Vec<i64>,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "sum",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&values),
                )
            },
        )
    }
    /// Safe to run twice.
    ///
    /// Idempotent: sent again automatically if the connection breaks before the answer arrives.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn get(
        &self,
        key: String,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<Option<i64>, ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a String);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    String,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &::core::clone::Clone::clone(&self.options).idempotent(true),
                    "Calculator",
                    "get",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&key),
                )
            },
        )
    }
    /// Fire and forget.
    ///
    /// One-way: returns once the request is written; the server runs it and sends no answer.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn log(
        &self,
        line: String,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<(), ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a String);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    String,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::oneway(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "log",
                    ::rpc_runtime::__private::CallKind::OneWay,
                    &__Args(&line),
                )
            },
        )
    }
    /// The running total of `values`, one item per value.
    ///
    /// Streaming both ways: returns once the request is sent; the argument stream is sent as the server takes it, and the returned stream yields the answers as they arrive (a failure of the call as its last item). Dropping the returned stream cancels the call.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn totals(
        &self,
        values: rpc_runtime::Streaming<i64>,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<
            rpc_runtime::Streaming<i64>,
            ::rpc_runtime::RpcError,
        >,
    > + ::core::marker::Send + 'static {
        ::rpc_runtime::__private::streaming(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode_with_stream(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "totals",
                    ::rpc_runtime::__private::CallKind::BothWays,
                    &(),
                    values,
                )
            },
        )
    }
    /// The square root of `x`; a negative `x` fails with a status.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn sqrt(
        &self,
        x: f64,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<f64, ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a f64);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    f64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "sqrt",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&x),
                )
            },
        )
    }
    /// `x` rounded to `digits` places; `digits` was added later.
    ///
    /// # Errors
    ///
    /// Fails with [`RpcError`](::rpc_runtime::RpcError) when the call cannot be made or completed remotely.
    #[inline]
    pub fn round(
        &self,
        x: f64,
        digits: u32,
    ) -> impl ::core::future::Future<
        Output = ::core::result::Result<f64, ::rpc_runtime::RpcError>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a f64, &'__a u32);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    f64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    u32,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "round",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&x, &digits),
                )
            },
        )
    }
}
/**The calls of [`CalculatorClient`], each sent to every server behind `C` at once (a [`BalancedChannel`](::rpc_runtime::balance::BalancedChannel), or any [`Fanout`](::rpc_runtime::call::Fanout)): from `CalculatorClient::fanout`.

Each method returns every endpoint's name with its result; an endpoint that is not ready is there with the reason. Methods that stream are not fanned out.*/
#[allow(dead_code)]
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
pub struct CalculatorFanout<C> {
    channel: C,
    options: ::rpc_runtime::CallOptions,
}
#[allow(dead_code)]
impl<C: ::rpc_runtime::call::Fanout> CalculatorFanout<C> {
    /// Adds two numbers.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn add(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<i64>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a i64, &'__a i64);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "add",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&a, &b),
                )
            },
        )
    }
    /// Divides `a` by `b`; dividing by zero is an application error.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn divide(
        &self,
        a: i64,
        b: i64,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<Result<i64, MathError>>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a i64, &'__a i64);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    i64,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "divide",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&a, &b),
                )
            },
        )
    }
    /// Does nothing, remotely.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn ping(
        &self,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<()>,
    > + ::core::marker::Send + 'static {
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "ping",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &(),
                )
            },
        )
    }
    /// Returns the name and how many tags came with it.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn echo(
        &self,
        name: String,
        tags: Vec<String>,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<(String, usize)>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a String, &'__a Vec<String>);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    String,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    Vec<String>,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "echo",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&name, &tags),
                )
            },
        )
    }
    /// Renamed on the wire.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn total(
        &self,
        values: Vec<i64>,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<i64>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a Vec<i64>);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    Vec<i64>,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "sum",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&values),
                )
            },
        )
    }
    /// Safe to run twice.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn get(
        &self,
        key: String,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<Option<i64>>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a String);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    String,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &::core::clone::Clone::clone(&self.options).idempotent(true),
                    "Calculator",
                    "get",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&key),
                )
            },
        )
    }
    /// Fire and forget.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn log(
        &self,
        line: String,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<()>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a String);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    String,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_oneway(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "log",
                    ::rpc_runtime::__private::CallKind::OneWay,
                    &__Args(&line),
                )
            },
        )
    }
    /// The square root of `x`; a negative `x` fails with a status.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn sqrt(
        &self,
        x: f64,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<f64>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a f64);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    1,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    f64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "sqrt",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&x),
                )
            },
        )
    }
    /// `x` rounded to `digits` places; `digits` was added later.
    ///
    /// Sent to every endpoint at once: each endpoint's name, with its result.
    pub fn round(
        &self,
        x: f64,
        digits: u32,
    ) -> impl ::core::future::Future<
        Output = ::rpc_runtime::call::Replies<f64>,
    > + ::core::marker::Send + 'static {
        struct __Args<'__a>(&'__a f64, &'__a u32);
        impl ::rpc_runtime::__private::serde::Serialize for __Args<'_> {
            fn serialize<__S>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: ::rpc_runtime::__private::serde::Serializer,
            {
                let mut tuple = ::rpc_runtime::__private::serde::Serializer::serialize_tuple(
                    serializer,
                    2,
                )?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    f64,
                >(&mut tuple, self.0)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::serialize_element::<
                    u32,
                >(&mut tuple, self.1)?;
                ::rpc_runtime::__private::serde::ser::SerializeTuple::end(tuple)
            }
        }
        ::rpc_runtime::__private::fanout_unary(
            &self.channel,
            {
                static SLOT: ::rpc_runtime::__private::MethodSlot = ::rpc_runtime::__private::MethodSlot::new();
                ::rpc_runtime::__private::encode(
                    &SLOT,
                    &self.options,
                    "Calculator",
                    "round",
                    ::rpc_runtime::__private::CallKind::Unary,
                    &__Args(&x, &digits),
                )
            },
        )
    }
}
/**Serves the [`Calculator`] service with an implementation `T`.

Hand it to [`ServerBuilder::add_service`](::rpc_runtime::ServerBuilder::add_service). Every call runs as its own task, calling `T`'s method through `&T`; `T` is shared, not cloned.*/
#[allow(dead_code)]
pub struct CalculatorServer<T> {
    inner: ::rpc_runtime::__private::Arc<T>,
}
#[allow(dead_code)]
impl<T> CalculatorServer<T> {
    /// The service's name on the wire.
    pub const SERVICE_NAME: &'static str = "Calculator";
    /// Serves calls with `implementation`.
    #[must_use]
    pub fn new(implementation: T) -> Self {
        Self {
            inner: ::rpc_runtime::__private::Arc::new(implementation),
        }
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
impl<T> ::core::clone::Clone for CalculatorServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: ::core::clone::Clone::clone(&self.inner),
        }
    }
}
impl<T> ::core::fmt::Debug for CalculatorServer<T> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct(::core::stringify!(CalculatorServer)).finish_non_exhaustive()
    }
}
impl<T> ::rpc_runtime::Service for CalculatorServer<T>
where
    T: Calculator + ::core::marker::Send + ::core::marker::Sync + 'static,
{
    fn name(&self) -> &str {
        Self::SERVICE_NAME
    }
    fn methods(&self) -> &[&str] {
        &[
            "add",
            "divide",
            "ping",
            "echo",
            "sum",
            "get",
            "log",
            "totals",
            "sqrt",
            "round",
        ]
    }
    fn descriptor(
        &self,
    ) -> ::core::option::Option<::rpc_runtime::reflection::ServiceDescriptor> {
        ::core::option::Option::Some(
            CalculatorClient::<::rpc_runtime::Channel>::descriptor(),
        )
    }
    fn call(
        &self,
        request: ::rpc_runtime::service::Request,
    ) -> ::rpc_runtime::ServiceFuture {
        match ::rpc_runtime::__private::method_bytes(&request) {
            b"add" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0, arg1) = {
                        fn decode_arguments<A0, A1>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                            _: ::core::marker::PhantomData<A1>,
                        ) -> ::core::result::Result<(A0, A1), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                            A1: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?, reader.read()?);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(
                            &args,
                            ::core::marker::PhantomData,
                            ::core::marker::PhantomData,
                        )?
                    };
                    let reply = <T as Calculator>::add(&*implementation, arg0, arg1)
                        .await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"divide" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0, arg1) = {
                        fn decode_arguments<A0, A1>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                            _: ::core::marker::PhantomData<A1>,
                        ) -> ::core::result::Result<(A0, A1), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                            A1: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?, reader.read()?);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(
                            &args,
                            ::core::marker::PhantomData,
                            ::core::marker::PhantomData,
                        )?
                    };
                    let reply = <T as Calculator>::divide(&*implementation, arg0, arg1)
                        .await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"ping" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let () = ::rpc_runtime::__private::decode_args(&args)?;
                    let reply = <T as Calculator>::ping(&*implementation).await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"echo" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0, arg1) = {
                        fn decode_arguments<A0, A1>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                            _: ::core::marker::PhantomData<A1>,
                        ) -> ::core::result::Result<(A0, A1), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                            A1: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?, reader.read()?);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(
                            &args,
                            ::core::marker::PhantomData,
                            ::core::marker::PhantomData,
                        )?
                    };
                    let reply = <T as Calculator>::echo(&*implementation, arg0, arg1)
                        .await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"sum" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0,) = {
                        fn decode_arguments<A0>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                        ) -> ::core::result::Result<(A0,), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?,);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(&args, ::core::marker::PhantomData)?
                    };
                    let reply = <T as Calculator>::total(&*implementation, arg0).await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"get" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0,) = {
                        fn decode_arguments<A0>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                        ) -> ::core::result::Result<(A0,), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?,);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(&args, ::core::marker::PhantomData)?
                    };
                    let reply = <T as Calculator>::get(&*implementation, arg0).await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"log" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0,) = {
                        fn decode_arguments<A0>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                        ) -> ::core::result::Result<(A0,), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?,);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(&args, ::core::marker::PhantomData)?
                    };
                    let reply = <T as Calculator>::log(&*implementation, arg0).await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            b"totals" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    let arg0 = ::rpc_runtime::__private::take_stream()?;
                    let () = ::rpc_runtime::__private::decode_args(&args)?;
                    let reply = <T as Calculator>::totals(&*implementation, arg0).await;
                    ::rpc_runtime::__private::encode_stream(reply)
                })
            }
            b"sqrt" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0,) = {
                        fn decode_arguments<A0>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                        ) -> ::core::result::Result<(A0,), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?,);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(&args, ::core::marker::PhantomData)?
                    };
                    let reply = <T as Calculator>::sqrt(&*implementation, arg0).await;
                    ::rpc_runtime::__private::encode_status_reply(reply)
                })
            }
            b"round" => {
                let args = ::rpc_runtime::service::Request::into_args(request);
                let implementation = ::core::clone::Clone::clone(&self.inner);
                ::rpc_runtime::__private::Box::pin(async move {
                    ::rpc_runtime::__private::no_stream()?;
                    let (arg0, arg1) = {
                        fn decode_arguments<A0, A1>(
                            args: &::rpc_runtime::__private::Bytes,
                            _: ::core::marker::PhantomData<A0>,
                            _: ::core::marker::PhantomData<A1>,
                        ) -> ::core::result::Result<(A0, A1), ::rpc_runtime::RpcError>
                        where
                            A0: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + 'static,
                            A1: ::rpc_runtime::__private::serde::de::DeserializeOwned
                                + ::core::default::Default + 'static,
                        {
                            let mut reader = ::rpc_runtime::__private::ArgReader::new(
                                args,
                            );
                            let decoded = (reader.read()?, reader.read_or_default()?);
                            reader.finish()?;
                            ::core::result::Result::Ok(decoded)
                        }
                        decode_arguments(
                            &args,
                            ::core::marker::PhantomData,
                            ::core::marker::PhantomData,
                        )?
                    };
                    let reply = <T as Calculator>::round(&*implementation, arg0, arg1)
                        .await;
                    ::rpc_runtime::__private::encode_reply(&reply)
                })
            }
            _ => {
                ::rpc_runtime::__private::unknown_method(
                    Self::SERVICE_NAME,
                    request.method(),
                )
            }
        }
    }
}
