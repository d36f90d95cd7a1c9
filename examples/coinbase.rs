//! Coinbase's public market data through a generic client, as a reqwest +
//! tokio-tungstenite client is written: it holds an HTTP client and knows URLs, not its
//! exchange. Its requests and streams are routed by host: the settings
//! (`examples/coinbase.yaml`, then `CRYPTOFEED_PROXY_*` variables) list Coinbase's hosts
//! under the `coinbase` exchange, so a route set for `coinbase` carries them:
//!
//! ```sh
//! CRYPTOFEED_PROXY_EXCHANGES__COINBASE__HTTP__URL=socks5h://127.0.0.1:1080 \
//! CRYPTOFEED_PROXY_EXCHANGES__COINBASE__WEBSOCKET__URL=socks5h://127.0.0.1:1080 \
//! cargo run --example coinbase
//! ```
//!
//! It reads a product's ticker over REST (`GET /products/BTC-USD/ticker`), then subscribes
//! to the `ticker` channel of the WebSocket feed and prints a few messages. Without
//! internet access it ends with the typed error (at once, or within the route's timeout).

use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use http::header::{HeaderValue, USER_AGENT};
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{HttpClient, ProxyError, ProxySettings, init_proxy_system, proxy_injector};
use serde::Deserialize;

const REST: &str = "https://api.exchange.coinbase.com";
const FEED: &str = "wss://ws-feed.exchange.coinbase.com";
const SETTINGS: &str = include_str!("coinbase.yaml");

/// The client's errors: its own enum, as exchange clients keep one.
#[derive(Debug)]
pub enum Error {
    /// A connection, request or stream failed (through the route, or direct).
    Transport(ProxyError),
    /// A WebSocket failed once open.
    WebSocket(proxy_runtime::tungstenite::Error),
    /// Coinbase answered something this client does not understand.
    Decode(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "{e}"),
            Error::WebSocket(e) => write!(f, "WebSocket: {e}"),
            Error::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ProxyError> for Error {
    fn from(e: ProxyError) -> Self {
        Error::Transport(e)
    }
}

impl From<proxy_runtime::tungstenite::Error> for Error {
    fn from(e: proxy_runtime::tungstenite::Error) -> Self {
        Error::WebSocket(e)
    }
}

/// A product's last trade and best prices.
#[derive(Debug, Deserialize)]
pub struct Ticker {
    /// Last trade price.
    pub price: String,
    /// Best bid.
    pub bid: String,
    /// Best ask.
    pub ask: String,
    /// 24-hour volume.
    pub volume: String,
}

/// A generic Coinbase client: the HTTP client is chosen by host, so this code names no
/// exchange.
#[derive(Debug, Clone)]
pub struct Coinbase {
    http: HttpClient,
}

impl Coinbase {
    /// A client whose every request carries the `User-Agent` Coinbase requires.
    pub fn new() -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static("proxy-runtime-example/1"),
        );
        Self {
            http: proxy_injector()
                .http_client_by_host()
                .with_default_headers(headers),
        }
    }

    /// `GET /products/{product}/ticker`.
    pub async fn ticker(&self, product: &str) -> Result<Ticker, Error> {
        let response = self
            .http
            .get(format!("{REST}/products/{product}/ticker"))
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// Subscribes to the `ticker` channel of `product` and returns the first `count`
    /// ticker messages.
    pub async fn ticker_messages(&self, product: &str, count: usize) -> Result<Vec<String>, Error> {
        let (mut ws, _) = proxy_injector().connect_websocket_by_host(FEED).await?;
        let subscribe =
            format!(r#"{{"type":"subscribe","product_ids":["{product}"],"channels":["ticker"]}}"#);
        ws.send(Message::text(subscribe)).await?;
        let mut tickers = Vec::new();
        while tickers.len() < count {
            let Some(message) = ws.next().await else {
                return Err(Error::Decode("the feed closed".to_owned()));
            };
            let Message::Text(text) = message? else {
                continue;
            };
            if text.contains(r#""type":"error""#) {
                return Err(Error::Decode(text.to_string()));
            }
            if text.contains(r#""type":"ticker""#) {
                tickers.push(text.to_string());
            }
        }
        ws.close(None).await?;
        Ok(tickers)
    }
}

impl Default for Coinbase {
    fn default() -> Self {
        Self::new()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // The example's settings file, then the process's variables over it.
    let settings = match ProxySettings::loader()
        .yaml_str("examples/coinbase.yaml", SETTINGS)
        .process_env()
        .load()
    {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let host = "api.exchange.coinbase.com";
    match settings.exchange_for_host(host) {
        Some(id) => println!("{host} takes the routes of `{id}`"),
        None => println!("{host} takes the default route"),
    }
    init_proxy_system(settings);
    let client = Coinbase::new();
    match client.ticker("BTC-USD").await {
        Ok(t) => println!(
            "BTC-USD: last {}, bid {}, ask {}, 24h volume {}",
            t.price, t.bid, t.ask, t.volume
        ),
        Err(e) => {
            eprintln!("ticker failed: {e}");
            return ExitCode::from(1);
        }
    }
    match client.ticker_messages("BTC-USD", 3).await {
        Ok(messages) => messages.iter().for_each(|m| println!("ticker: {m}")),
        Err(e) => {
            eprintln!("ticker channel failed: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
