//! The reflection service, through real sockets: what it lists, the
//! descriptions it serves (the generated ones, parsed back from JSON), and
//! the switch that turns it off.

use std::collections::BTreeMap;

use rpc_runtime::call::CallKind;
use rpc_runtime::reflection::{
    ContainerFormat, Format, Named, ReflectionClient, ServiceDescriptor, VariantFormat,
};
use rpc_runtime::{rpc_service, Code, RpcError, Server, Status, Streaming};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Shape {
    Circle { center: Point, radius: f64 },
    Polygon(Vec<Point>),
    Empty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Refusal {
    Busy,
}

/// Draws shapes.
///
/// Second line.
#[rpc_service(name = "test.Drawing")]
pub trait Drawing {
    /// Draws `shape`, scaled.
    #[rpc(idempotent)]
    async fn draw(&self, shape: Shape, #[rpc(default)] scale: u32) -> Result<u64, String>;
    #[rpc(name = "points_of")]
    async fn points(&self, shape: Shape) -> Result<Streaming<Point>, Refusal>;
    async fn area(&self, sides: Streaming<f64>) -> Result<f64, Status>;
    #[rpc(oneway)]
    async fn forget(&self);
}

struct Canvas;

impl Drawing for Canvas {
    async fn draw(&self, _shape: Shape, scale: u32) -> Result<u64, String> {
        Ok(u64::from(scale))
    }
    async fn points(&self, _shape: Shape) -> Result<Streaming<Point>, Refusal> {
        Err(Refusal::Busy)
    }
    async fn area(&self, _sides: Streaming<f64>) -> Result<f64, Status> {
        Ok(0.0)
    }
    async fn forget(&self) {}
}

fn named<T>(name: &str, value: T) -> Named<T> {
    Named {
        name: name.to_owned(),
        value,
    }
}

fn type_name(name: &str) -> Format {
    Format::TypeName(name.to_owned())
}

#[tokio::test]
async fn lists_and_describes_the_hosted_services() {
    let server = Server::builder()
        .add_service(DrawingServer::new(Canvas))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let reflection = ReflectionClient::connect(server.local_addr())
        .await
        .unwrap();
    assert_eq!(
        reflection.list().await.unwrap(),
        [
            "rpc.health.v1.Health",
            "rpc.reflection.v1.Reflection",
            "test.Drawing"
        ]
    );

    let json = reflection.describe("test.Drawing".into()).await.unwrap();
    let drawing: ServiceDescriptor = serde_json::from_str(&json).unwrap();
    assert_eq!(drawing, DrawingClient::descriptor());
    assert_eq!(drawing.name, "test.Drawing");
    assert_eq!(drawing.docs, "Draws shapes.\n\nSecond line.");
    let names: Vec<&str> = drawing.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["draw", "points_of", "area", "forget"]);

    let draw = drawing.method("draw").unwrap();
    assert_eq!(
        draw.signature,
        "draw(shape: Shape, scale: u32) -> Result<u64, String>"
    );
    assert_eq!(draw.docs, "Draws `shape`, scaled.");
    assert_eq!(draw.kind, CallKind::Unary);
    assert!(draw.idempotent && !draw.refusable && !draw.status);
    assert_eq!(draw.args.len(), 2);
    assert_eq!(
        (
            draw.args[0].name.as_str(),
            &draw.args[0].format,
            draw.args[0].default
        ),
        ("shape", &Some(type_name("Shape")), false)
    );
    assert_eq!(
        (
            draw.args[1].name.as_str(),
            &draw.args[1].format,
            draw.args[1].default
        ),
        ("scale", &Some(Format::U32), true)
    );
    assert_eq!(draw.returns, Some(Format::U64));
    assert_eq!(draw.error, Some(Format::Str));
    assert_eq!(draw.problem, None);

    let points = drawing.method("points_of").unwrap();
    assert_eq!(points.rust_name, "points");
    assert_eq!(points.kind, CallKind::ServerStream);
    assert!(points.refusable && !points.status);
    assert_eq!(points.returns, Some(type_name("Point")));
    assert_eq!(points.error, Some(type_name("Refusal")));

    let area = drawing.method("area").unwrap();
    assert_eq!(area.kind, CallKind::ClientStream);
    assert!(area.args.is_empty());
    assert_eq!(area.stream, Some(Format::F64));
    assert_eq!(
        (area.returns.clone(), area.status),
        (Some(Format::F64), true)
    );

    let forget = drawing.method("forget").unwrap();
    assert_eq!(forget.kind, CallKind::OneWay);
    assert_eq!(forget.returns, Some(Format::Unit));

    // Every variant, in declaration order (bincode writes the index).
    let point = ContainerFormat::Struct(vec![named("x", Format::I32), named("y", Format::I32)]);
    let shape = ContainerFormat::Enum(BTreeMap::from([
        (
            0,
            named(
                "Circle",
                VariantFormat::Struct(vec![
                    named("center", type_name("Point")),
                    named("radius", Format::F64),
                ]),
            ),
        ),
        (
            1,
            named(
                "Polygon",
                VariantFormat::NewType(Box::new(Format::Seq(Box::new(type_name("Point"))))),
            ),
        ),
        (2, named("Empty", VariantFormat::Unit)),
    ]));
    assert_eq!(drawing.types.get("Point"), Some(&point));
    assert_eq!(drawing.types.get("Shape"), Some(&shape));
    assert_eq!(drawing.types.len(), 3);

    // The built-in services describe themselves too.
    let health: ServiceDescriptor = serde_json::from_str(
        &reflection
            .describe("rpc.health.v1.Health".into())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(health.method("watch").unwrap().kind, CallKind::ServerStream);
    let own: ServiceDescriptor = serde_json::from_str(
        &reflection
            .describe("rpc.reflection.v1.Reflection".into())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(own, ReflectionClient::descriptor());

    match reflection.describe("test.Nope".into()).await {
        Err(RpcError::Status(status)) => assert_eq!(status.code(), Code::NOT_FOUND, "{status}"),
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn can_be_turned_off() {
    let server = Server::builder()
        .add_service(DrawingServer::new(Canvas))
        .reflection(false)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let reflection = ReflectionClient::connect(server.local_addr())
        .await
        .unwrap();
    match reflection.list().await {
        // Calls name a method by an id: the server knows no such method.
        Err(RpcError::UnknownMethod { service, .. }) => {
            assert_eq!(service, "rpc.reflection.v1.Reflection");
        }
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    server.shutdown().await;
}

/// A type whose `Deserialize` accepts no value the tracer tries.
#[derive(Debug, Serialize)]
pub struct Even(u32);

impl<'de> Deserialize<'de> for Even {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(deserializer)?;
        if n % 2 == 0 {
            Err(serde::de::Error::custom("tracing probes zero; refuse it"))
        } else {
            Ok(Even(n))
        }
    }
}

#[rpc_service]
pub trait Odd {
    async fn half(&self, n: Even) -> u32;
    async fn ok(&self, n: u32) -> u32;
}

#[test]
fn a_type_that_does_not_trace_leaves_only_its_method_undescribed() {
    let odd = OddClient::descriptor();
    let half = odd.method("half").unwrap();
    assert_eq!(half.args[0].format, None);
    assert!(
        half.problem
            .as_deref()
            .is_some_and(|p| p.contains("tracing probes zero")),
        "{half:?}"
    );
    assert_eq!(odd.method("ok").unwrap().returns, Some(Format::U32));
}

#[test]
fn method_ids_are_the_documented_ones() {
    // docs/PROTOCOL.md, section 11.
    let id = |method| rpc_runtime::method_id("rpc.reflection.v1.Reflection", method);
    assert_eq!(id("list"), 0xce06_e3ae);
    assert_eq!(id("describe"), 0x77bf_1873);
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Inner {
    X,
    Y(u8),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Outer {
    A,
    B(Inner),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Holder {
    pub outer: Outer,
}

#[rpc_service]
pub trait Nested {
    async fn hold(&self, h: Holder) -> u8;
}

#[test]
fn an_enum_met_only_in_a_later_variant_of_a_nested_enum_is_not_described_wrongly() {
    // serde-reflection learns such an enum's variants by name but not their
    // indexes: the method is left undescribed, never given wrong indexes.
    let nested = NestedClient::descriptor();
    let hold = nested.method("hold").unwrap();
    assert!(
        hold.problem
            .as_deref()
            .is_some_and(|p| p.contains("variant indexes of enum `Inner`")),
        "{hold:?}"
    );
    assert_eq!(hold.args[0].format, None);
    assert!(nested.types.is_empty());
}
