//! A client for Binance: order-book depth over REST (reading the request weight Binance
//! reports in `X-MBX-USED-WEIGHT-1M`), trades over a WebSocket stream, and the shape of a
//! signed request, all routed purely by environment variables:
//!
//! ```sh
//! CRYPTOFEED_PROXY_ENABLED=true \
//! CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL=socks5h://127.0.0.1:1080 \
//! CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL=socks5h://127.0.0.1:1080 \
//! cargo run --example binance
//! ```
//!
//! The signed request (a test order, which Binance validates and does not execute) is
//! printed with a signature made from a dummy secret, and sent only when
//! `BINANCE_API_KEY` and `BINANCE_API_SECRET` are set. Without internet access the example
//! ends with the typed error (within the route's timeout).

use std::error::Error;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use proxy_runtime::{ProxyError, proxied};
use serde::Deserialize;

const REST: &str = "https://api.binance.com";
const STREAM: &str = "wss://stream.binance.com:9443/ws";

/// A Binance client.
#[proxied(exchange = "binance")]
#[derive(Debug)]
pub struct Binance {
    symbol: String,
}

/// The top of an order book.
#[derive(Debug, Deserialize)]
pub struct Depth {
    /// Bids, best first: `[price, quantity]`.
    pub bids: Vec<[String; 2]>,
    /// Asks, best first.
    pub asks: Vec<[String; 2]>,
}

/// A request signed as Binance's signed endpoints want: the query string with a
/// `timestamp`, and its HMAC-SHA256 with the API secret appended as `signature`.
#[derive(Debug)]
pub struct Signed {
    /// The query string, signature included.
    pub query: String,
}

impl Signed {
    /// Signs `params` (plus a timestamp) with `secret`.
    pub fn new(params: &[(&str, &str)], secret: &[u8]) -> Self {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut query: String = params.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        query.push_str(&format!("timestamp={timestamp}"));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, query.as_bytes());
        let signature: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        query.push_str(&format!("&signature={signature}"));
        Self { query }
    }
}

#[proxied]
impl Binance {
    /// A client for one symbol, like `BTCUSDT`.
    pub fn new(symbol: &str) -> Self {
        Self {
            symbol: symbol.to_owned(),
        }
    }

    /// The top of the order book (`GET /api/v3/depth`) and the request weight used in the
    /// current minute.
    pub async fn depth(&self, limit: u16) -> Result<(Depth, Option<String>), ProxyError> {
        let response = self
            .http()
            .get(format!("{REST}/api/v3/depth"))
            .query(&[
                ("symbol", self.symbol.as_str()),
                ("limit", &limit.to_string()),
            ])
            .send()
            .await?
            .error_for_status()?;
        let weight = response
            .headers()
            .get("x-mbx-used-weight-1m")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((response.json().await?, weight))
    }

    /// Sends a signed test order (`POST /api/v3/order/test`): Binance checks the signature
    /// and the order, and executes nothing.
    pub async fn test_order(&self, api_key: &str, signed: &Signed) -> Result<String, ProxyError> {
        self.http()
            .post(format!("{REST}/api/v3/order/test?{}", signed.query))
            .header("X-MBX-APIKEY", api_key)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    }

    /// The next `count` trades of the `<symbol>@trade` stream.
    pub async fn trades(&self, count: usize) -> Result<Vec<String>, ProxyError> {
        let url = format!("{STREAM}/{}@trade", self.symbol.to_lowercase());
        let (mut ws, _response) = self.websocket(url).await?;
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

    let order = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.001"),
        ("price", "10000"),
    ];
    let key = std::env::var("BINANCE_API_KEY").ok();
    let secret = std::env::var("BINANCE_API_SECRET").ok();
    let dummy = Signed::new(&order, b"dummy-secret-never-sent");
    println!(
        "a signed test order looks like: POST {REST}/api/v3/order/test?{} with header X-MBX-APIKEY (the signature above is made with a dummy secret)",
        dummy.query
    );

    match client.depth(5).await {
        Ok((depth, weight)) => println!(
            "best bid {:?}, best ask {:?}; request weight used this minute: {}",
            depth.bids.first(),
            depth.asks.first(),
            weight.as_deref().unwrap_or("(not reported)")
        ),
        Err(e) => {
            eprintln!("depth failed: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    if let (Some(key), Some(secret)) = (key, secret) {
        let signed = Signed::new(&order, secret.as_bytes());
        match client.test_order(&key, &signed).await {
            Ok(body) => println!("test order accepted: {body}"),
            Err(e) => eprintln!("test order refused: {e}"),
        }
    } else {
        println!("set BINANCE_API_KEY and BINANCE_API_SECRET to send the test order");
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
