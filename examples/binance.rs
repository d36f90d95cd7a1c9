//! A client for Binance's public market data: order-book depth over REST and trades over a
//! WebSocket stream, routed purely by environment variables:
//!
//! ```sh
//! CRYPTOFEED_PROXY_ENABLED=true \
//! CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL=socks5h://127.0.0.1:1080 \
//! CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL=socks5h://127.0.0.1:1080 \
//! cargo run --example binance
//! ```
//!
//! Without internet access it ends with the typed error (within the route's timeout).

use std::error::Error;
use std::process::ExitCode;

use futures_util::StreamExt;
use proxy_runtime::{ProxyError, proxied};

const REST: &str = "https://api.binance.com";
const STREAM: &str = "wss://stream.binance.com:9443/ws";

/// A Binance market-data client.
#[proxied(exchange = "binance")]
#[derive(Debug)]
pub struct Binance {
    symbol: String,
}

#[proxied]
impl Binance {
    /// A client for one symbol, like `BTCUSDT`.
    pub fn new(symbol: &str) -> Self {
        Self {
            symbol: symbol.to_owned(),
        }
    }

    /// The top of the order book (`GET /api/v3/depth`).
    pub async fn depth(&self, limit: u16) -> Result<String, ProxyError> {
        let url = format!("{REST}/api/v3/depth?symbol={}&limit={limit}", self.symbol);
        let body = self.http().get(&url).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The next `count` trades of the `<symbol>@trade` stream.
    pub async fn trades(&self, count: usize) -> Result<Vec<String>, ProxyError> {
        let url = format!("{STREAM}/{}@trade", self.symbol.to_lowercase());
        let mut ws = self.websocket(&url).await?;
        let mut trades = Vec::new();
        while let Some(Ok(message)) = ws.next().await {
            if let Ok(text) = message.to_text() {
                trades.push(text.to_owned());
            }
            if trades.len() == count {
                break;
            }
        }
        Ok(trades)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    let client = Binance::new("BTCUSDT");
    println!("{} client: {client:?}", client.exchange());
    match client.depth(5).await {
        Ok(depth) => println!("depth: {depth}"),
        Err(e) => {
            eprintln!("depth failed: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    match client.trades(3).await {
        Ok(trades) => trades.iter().for_each(|t| println!("trade: {t}")),
        Err(e) => {
            eprintln!("trades failed: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
