//! Trait shapes the macro accepts, each called over a real connection.

use std::collections::HashMap;

use rpc_runtime::{rpc_service, Server};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Circle { center: Point, radius: f64 },
    Polygon(Vec<Point>),
    Empty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreError {
    NotFound(String),
    Full { capacity: usize },
}

/// A service with one method of every shape.
#[rpc_service]
pub trait Shapes {
    /// No arguments, a value back.
    async fn zero(&self) -> u8;
    /// Unit return, spelled out.
    async fn unit(&self, x: u32) -> ();
    #[allow(clippy::too_many_arguments)]
    async fn many(
        &self,
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        e: i8,
        f: i16,
        g: i32,
        h: i64,
        i: bool,
        j: char,
        k: String,
        l: f32,
    ) -> String;
    async fn structs(&self, p: Point, shape: Shape) -> Shape;
    async fn option(&self, v: Option<Vec<(u8, String)>>) -> Option<usize>;
    async fn map(&self, m: HashMap<String, Vec<u32>>) -> HashMap<u32, String>;
    async fn tuple(&self, t: (u8, (String, bool))) -> ((String, bool), u8);
    async fn result(&self, key: String) -> Result<Point, StoreError>;
    async fn boxed(&self, b: Box<Point>) -> Box<i32>;
    async fn bytes(&self, data: Vec<u8>) -> Vec<u8>;
    async fn patterns(&self, mut x: u32, _: u32) -> u32;
    async fn r#type(&self, r#in: String) -> String;
    #[cfg(not(test))]
    async fn compiled_out(&self, never: u8) -> u8;
    #[cfg(test)]
    async fn compiled_in(&self) -> String;
}

struct Impl;

impl Shapes for Impl {
    async fn zero(&self) -> u8 {
        7
    }
    async fn unit(&self, _x: u32) {}
    async fn many(
        &self,
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        e: i8,
        f: i16,
        g: i32,
        h: i64,
        i: bool,
        j: char,
        k: String,
        l: f32,
    ) -> String {
        format!("{a} {b} {c} {d} {e} {f} {g} {h} {i} {j} {k} {l}")
    }
    async fn structs(&self, p: Point, shape: Shape) -> Shape {
        match shape {
            Shape::Polygon(mut points) => {
                points.push(p);
                Shape::Polygon(points)
            }
            Shape::Circle { radius, .. } => Shape::Circle { center: p, radius },
            Shape::Empty => Shape::Empty,
        }
    }
    async fn option(&self, v: Option<Vec<(u8, String)>>) -> Option<usize> {
        v.map(|v| v.iter().map(|(n, s)| usize::from(*n) + s.len()).sum())
    }
    async fn map(&self, m: HashMap<String, Vec<u32>>) -> HashMap<u32, String> {
        m.into_iter().map(|(k, v)| (v.iter().sum(), k)).collect()
    }
    async fn tuple(&self, t: (u8, (String, bool))) -> ((String, bool), u8) {
        (t.1, t.0)
    }
    async fn result(&self, key: String) -> Result<Point, StoreError> {
        match key.as_str() {
            "origin" => Ok(Point { x: 0, y: 0 }),
            "full" => Err(StoreError::Full { capacity: 3 }),
            _ => Err(StoreError::NotFound(key)),
        }
    }
    async fn boxed(&self, b: Box<Point>) -> Box<i32> {
        Box::new(b.x * b.y)
    }
    async fn bytes(&self, mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data
    }
    async fn patterns(&self, mut x: u32, _: u32) -> u32 {
        x += 1;
        x
    }
    async fn r#type(&self, r#in: String) -> String {
        r#in.to_uppercase()
    }
    #[cfg(test)]
    async fn compiled_in(&self) -> String {
        "in".to_owned()
    }
}

#[tokio::test]
async fn every_shape_round_trips() {
    let server = Server::builder()
        .add_service(ShapesServer::new(Impl))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let c = ShapesClient::connect(server.local_addr()).await.unwrap();

    assert_eq!(c.zero().await.unwrap(), 7);
    c.unit(3).await.unwrap();
    assert_eq!(
        c.many(1, 2, 3, 4, -5, -6, -7, -8, true, 'é', "k".into(), 1.5)
            .await
            .unwrap(),
        "1 2 3 4 -5 -6 -7 -8 true é k 1.5"
    );
    let p = Point { x: 3, y: 4 };
    assert_eq!(
        c.structs(p.clone(), Shape::Polygon(vec![Point { x: 1, y: 1 }]))
            .await
            .unwrap(),
        Shape::Polygon(vec![Point { x: 1, y: 1 }, p.clone()])
    );
    assert_eq!(
        c.structs(
            p.clone(),
            Shape::Circle {
                center: Point { x: 0, y: 0 },
                radius: 2.5
            }
        )
        .await
        .unwrap(),
        Shape::Circle {
            center: p.clone(),
            radius: 2.5
        }
    );
    assert_eq!(
        c.structs(p.clone(), Shape::Empty).await.unwrap(),
        Shape::Empty
    );
    assert_eq!(
        c.option(Some(vec![(1, "ab".into()), (2, "cde".into())]))
            .await
            .unwrap(),
        Some(8)
    );
    assert_eq!(c.option(None).await.unwrap(), None);
    let m = HashMap::from([("a".to_owned(), vec![1, 2]), ("b".to_owned(), vec![10])]);
    assert_eq!(
        c.map(m).await.unwrap(),
        HashMap::from([(3, "a".to_owned()), (10, "b".to_owned())])
    );
    assert_eq!(
        c.tuple((9, ("s".into(), true))).await.unwrap(),
        (("s".to_owned(), true), 9)
    );
    assert_eq!(
        c.result("origin".into()).await.unwrap(),
        Ok(Point { x: 0, y: 0 })
    );
    assert_eq!(
        c.result("full".into()).await.unwrap(),
        Err(StoreError::Full { capacity: 3 })
    );
    assert_eq!(
        c.result("k".into()).await.unwrap(),
        Err(StoreError::NotFound("k".into()))
    );
    assert_eq!(*c.boxed(Box::new(p.clone())).await.unwrap(), 12);
    assert_eq!(c.bytes(vec![1, 2, 3]).await.unwrap(), vec![3, 2, 1]);
    assert_eq!(c.patterns(41, 0).await.unwrap(), 42);
    assert_eq!(c.r#type("raw".into()).await.unwrap(), "RAW");
    assert_eq!(c.compiled_in().await.unwrap(), "in");
    assert_eq!(ShapesClient::SERVICE_NAME, "Shapes");
    server.shutdown().await;
}

/// Two services whose methods share names, and a renamed service, on one
/// server and one channel.
mod two_services {
    use rpc_runtime::{rpc_service, Channel, Server};

    #[rpc_service]
    pub trait Counter {
        async fn get(&self) -> u64;
        async fn name(&self) -> String;
    }

    #[rpc_service(name = "billing.Ledger")]
    pub(crate) trait Ledger {
        async fn get(&self) -> u64;
        #[rpc(name = "title")]
        async fn name(&self) -> String;
    }

    struct C;
    impl Counter for C {
        async fn get(&self) -> u64 {
            1
        }
        async fn name(&self) -> String {
            "counter".into()
        }
    }

    struct L;
    impl Ledger for L {
        async fn get(&self) -> u64 {
            2
        }
        async fn name(&self) -> String {
            "ledger".into()
        }
    }

    #[tokio::test]
    async fn two_services_one_channel() {
        let server = Server::builder()
            .add_service(CounterServer::new(C))
            .add_service(LedgerServer::new(L))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let channel = Channel::connect(server.local_addr()).await.unwrap();
        let counter = CounterClient::new(channel.clone());
        let ledger = LedgerClient::new(channel);
        assert_eq!(LedgerClient::SERVICE_NAME, "billing.Ledger");
        assert_eq!(counter.get().await.unwrap(), 1);
        assert_eq!(ledger.get().await.unwrap(), 2);
        assert_eq!(counter.name().await.unwrap(), "counter");
        assert_eq!(ledger.name().await.unwrap(), "ledger");
        // The renamed method is reachable under its wire name only.
        let raw: String = counter
            .channel()
            .call("billing.Ledger", "title", &())
            .await
            .unwrap();
        assert_eq!(raw, "ledger");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn duplicate_service_names_are_refused() {
        let err = Server::builder()
            .add_service(CounterServer::new(C))
            .add_service(CounterServer::new(C))
            .bind("127.0.0.1:0")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`Counter`"), "{err}");
    }
}

/// A service declared inside a function body.
#[tokio::test]
async fn service_inside_a_function() {
    #[rpc_service]
    trait Local {
        async fn twice(&self, x: i32) -> i32;
    }
    struct Twice;
    impl Local for Twice {
        async fn twice(&self, x: i32) -> i32 {
            x * 2
        }
    }
    let server = Server::builder()
        .add_service(LocalServer::new(Twice))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = LocalClient::connect(server.local_addr()).await.unwrap();
    assert_eq!(client.twice(21).await.unwrap(), 42);
    server.shutdown().await;
}

/// Attributes on methods, sixteen arguments, shared and byte types, serde
/// attributes, and a supertrait.
mod extras {
    use std::sync::Arc;

    use rpc_runtime::{rpc_service, Server};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Renamed {
        #[serde(rename = "identifier")]
        pub id: u64,
        #[serde(default)]
        pub label: Option<String>,
    }

    /// Something every implementation can describe; not an RPC trait.
    pub trait Describe {
        fn describe(&self) -> String;
    }

    /// A service with a supertrait.
    #[rpc_service]
    pub trait Extras: Describe + Send + Sync + 'static {
        #[deprecated(note = "use `current` instead")]
        async fn old(&self) -> u8;
        #[allow(clippy::too_many_arguments, unused_variables)]
        async fn sixteen(
            &self,
            a1: u8,
            a2: u8,
            a3: u8,
            a4: u8,
            a5: u8,
            a6: u8,
            a7: u8,
            a8: u8,
            a9: u8,
            a10: u8,
            a11: u8,
            a12: u8,
            a13: u8,
            a14: u8,
            a15: u8,
            a16: u8,
        ) -> Vec<u8>;
        async fn shared(&self, text: Arc<str>) -> Arc<str>;
        async fn raw_bytes(&self, data: bytes::Bytes) -> bytes::Bytes;
        async fn renamed(&self, value: Renamed) -> Renamed;
        async fn describe_remote(&self) -> String;
    }

    struct Impl;

    impl Describe for Impl {
        fn describe(&self) -> String {
            "an Impl".to_owned()
        }
    }

    impl Extras for Impl {
        async fn old(&self) -> u8 {
            1
        }
        async fn sixteen(
            &self,
            a1: u8,
            a2: u8,
            a3: u8,
            a4: u8,
            a5: u8,
            a6: u8,
            a7: u8,
            a8: u8,
            a9: u8,
            a10: u8,
            a11: u8,
            a12: u8,
            a13: u8,
            a14: u8,
            a15: u8,
            a16: u8,
        ) -> Vec<u8> {
            vec![
                a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16,
            ]
        }
        async fn shared(&self, text: Arc<str>) -> Arc<str> {
            Arc::from(text.to_uppercase())
        }
        async fn raw_bytes(&self, data: bytes::Bytes) -> bytes::Bytes {
            data.slice(1..)
        }
        async fn renamed(&self, mut value: Renamed) -> Renamed {
            value.id += 1;
            value
        }
        async fn describe_remote(&self) -> String {
            self.describe()
        }
    }

    #[tokio::test]
    async fn attributes_sixteen_arguments_and_std_types() {
        let server = Server::builder()
            .add_service(ExtrasServer::new(Impl))
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let c = ExtrasClient::connect(server.local_addr()).await.unwrap();
        #[allow(deprecated)]
        let old = c.old().await.unwrap();
        assert_eq!(old, 1);
        assert_eq!(
            c.sixteen(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
                .await
                .unwrap(),
            (1..=16).collect::<Vec<u8>>()
        );
        assert_eq!(&*c.shared(Arc::from("abc")).await.unwrap(), "ABC");
        assert_eq!(
            c.raw_bytes(bytes::Bytes::from_static(b"xyz"))
                .await
                .unwrap(),
            bytes::Bytes::from_static(b"yz")
        );
        let value = Renamed {
            id: 41,
            label: Some("l".into()),
        };
        assert_eq!(
            c.renamed(value).await.unwrap(),
            Renamed {
                id: 42,
                label: Some("l".into())
            }
        );
        assert_eq!(c.describe_remote().await.unwrap(), "an Impl");
        server.shutdown().await;
    }
}

/// A hand-written service receives each call as a request value: the
/// method, the encoded arguments, and the call's context (service, method,
/// metadata, deadline, peer), so a wrapper around dispatch sees all of it.
mod request_value {
    use rpc_runtime::service::{Body, Request, Service, ServiceFuture};
    use rpc_runtime::{CallOptions, Channel, Server};

    /// Answers each call to its one method with what its request said of it.
    struct Echo;

    impl Service for Echo {
        fn name(&self) -> &str {
            "Echo"
        }

        fn methods(&self) -> &[&str] {
            &["look"]
        }

        fn call(&self, request: Request) -> ServiceFuture {
            let context = request.context();
            let who = context
                .metadata()
                .get("who")
                .and_then(|v| v.as_str())
                .unwrap_or("nobody")
                .to_owned();
            let seen = (
                request.service().to_owned(),
                request.method().to_owned(),
                context.request_id().to_string(),
                who,
                context.remaining().is_some(),
                request.args().len(),
            );
            Box::pin(async move { Body::encode(&seen) })
        }
    }

    #[tokio::test]
    async fn a_service_sees_the_call_and_its_context() {
        let server = Server::builder()
            .add_service(Echo)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let channel = Channel::connect(server.local_addr()).await.unwrap();
        let options = CallOptions::new().metadata("who", "ada");
        let seen: (String, String, String, String, bool, usize) = channel
            .call_with(&options, "Echo", "look", &(7u8, 9u8))
            .await
            .unwrap();
        assert_eq!(
            seen,
            (
                "Echo".into(),
                "look".into(),
                "1".into(),
                "ada".into(),
                true,
                2
            )
        );
        server.shutdown().await;
    }
}
