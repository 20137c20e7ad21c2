use rpc_runtime::{rpc_service, Streaming};
use serde::Serialize;

/// Encodes but does not decode: a server cannot receive it.
#[derive(Serialize)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[rpc_service]
pub trait Geometry {
    async fn distance(&self, scale: u32, point: Point, label: String) -> f64;
    async fn perimeter(&self, points: Streaming<Point>) -> f64;
}

fn main() {}
