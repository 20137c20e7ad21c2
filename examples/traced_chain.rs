//! The spans of a call chain, printed by `tracing-subscriber`: a client
//! calls `shop.Orders/place`, whose handler calls `shop.Stock/reserve` on
//! a second server. Each call is a span on both sides; the handler's own
//! call and log line are inside its server span.
//!
//! ```text
//! cargo run --example traced_chain
//! ```
//!
//! With the `opentelemetry` feature and a `tracing-opentelemetry` layer in
//! place of (or beside) the printing one, the same spans are exported as
//! one trace: each call carries its span's context as W3C `traceparent`
//! metadata (see `tests/opentelemetry.rs`).

use rpc_runtime::{rpc_service, Channel, Server, Status};
use tracing_subscriber::fmt::format::FmtSpan;

/// Stock levels.
#[rpc_service(name = "shop.Stock")]
pub trait Stock {
    /// Takes `count` of `item` out of stock, or fails with `RESOURCE_EXHAUSTED`.
    async fn reserve(&self, item: String, count: u32) -> Result<u32, Status>;
}

/// Orders, which reserve stock.
#[rpc_service(name = "shop.Orders")]
pub trait Orders {
    /// Places an order; its number.
    async fn place(&self, item: String, count: u32) -> Result<u64, Status>;
}

struct Shelves;

impl Stock for Shelves {
    async fn reserve(&self, item: String, count: u32) -> Result<u32, Status> {
        if count > 10 {
            return Err(Status::resource_exhausted(format!("only 10 {item} left")));
        }
        Ok(10 - count)
    }
}

struct Desk {
    stock: StockClient,
}

impl Orders for Desk {
    async fn place(&self, item: String, count: u32) -> Result<u64, Status> {
        let left = self.stock.reserve(item.clone(), count).await?;
        tracing::info!(%item, left, "reserved");
        Ok(1000 + u64::from(count))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .without_time()
        .init();

    let stock = Server::builder()
        .add_service(StockServer::new(Shelves))
        .bind("127.0.0.1:0")
        .await?;
    let desk = Desk {
        stock: StockClient::new(Channel::connect(stock.local_addr()).await?),
    };
    let orders = Server::builder()
        .add_service(OrdersServer::new(desk))
        .bind("127.0.0.1:0")
        .await?;
    let client = OrdersClient::new(Channel::connect(orders.local_addr()).await?);

    let span = tracing::info_span!("checkout", customer = "ada");
    let _entered = span.enter();
    println!("order {:?}", client.place("tea".into(), 3).await?);
    // Fails on the stock server: recorded on all four spans.
    println!("order {:?}", client.place("tea".into(), 30).await);
    drop(_entered);

    orders.shutdown().await;
    stock.shutdown().await;
    Ok(())
}
