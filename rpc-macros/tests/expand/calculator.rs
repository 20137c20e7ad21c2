// Input of the expansion snapshot test (`src/snapshot.rs`): the README's
// calculator. The expansion is checked in beside it as
// `calculator.expanded.rs`.

#[rpc_service]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Divides `a` by `b`; dividing by zero is an application error.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// Does nothing, remotely.
    async fn ping(&self);
    /// Returns the name and how many tags came with it.
    async fn echo(&self, name: String, tags: Vec<String>) -> (String, usize);
    /// Renamed on the wire.
    #[rpc(name = "sum")]
    async fn total(&self, values: Vec<i64>) -> i64;
    /// Safe to run twice.
    #[rpc(idempotent)]
    async fn get(&self, key: String) -> Option<i64>;
    /// Fire and forget.
    #[rpc(oneway)]
    async fn log(&self, line: String);
    /// The running total of `values`, one item per value.
    async fn totals(&self, values: rpc_runtime::Streaming<i64>) -> rpc_runtime::Streaming<i64>;
    /// The square root of `x`; a negative `x` fails with a status.
    async fn sqrt(&self, x: f64) -> Result<f64, Status>;
    /// `x` rounded to `digits` places; `digits` was added later.
    async fn round(&self, x: f64, #[rpc(default)] digits: u32) -> f64;
}
