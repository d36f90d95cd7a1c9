//! The quickstart: a local exchange (HTTPS REST and a WSS trade stream) and a local SOCKS5
//! proxy on loopback, settings from `examples/config.yaml` with any `CRYPTOFEED_PROXY_*`
//! variables on top, and a client written with `#[proxied]` and nothing else proxy-related.
//!
//! ```sh
//! cargo run --example quickstart
//! CRYPTOFEED_PROXY_EXCHANGES__LOCALEX__WEBSOCKET__URL=direct:// cargo run --example quickstart
//! ```

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;

use futures_util::StreamExt;
use proxy_examples::local::{API_KEY_HEADER, LocalExchange};
use proxy_runtime::check::{Report, render};
use proxy_runtime::http::Version;
use proxy_runtime::{
    ConnectionKind, ExchangeId, Host, ProxyError, ProxyInjector, ProxyScheme, ProxySettings,
    Settings, TlsRoots, init_proxy_system_with, proxied,
};
use proxy_tests::socks5::Socks5Server;

/// The client: its proxy handling is the two attributes, nothing more.
#[proxied(exchange = "localex")]
#[derive(Debug)]
pub struct LocalEx {
    rest: String,
    stream: String,
}

#[proxied]
impl LocalEx {
    /// A client of the exchange at these URLs.
    pub fn new(rest: &str, stream: &str) -> Self {
        Self {
            rest: rest.to_owned(),
            stream: stream.to_owned(),
        }
    }

    /// The best bid and ask of `symbol`, the HTTP version it came in, and the request
    /// weight the exchange says was used.
    pub async fn ticker(&self, symbol: &str) -> Result<(String, Version, String), ProxyError> {
        let response = self
            .http()
            .get(format!("{}/api/v3/ticker/bookTicker", self.rest))
            .query(&[("symbol", symbol)])
            .header(API_KEY_HEADER, "quickstart-demo-key")
            .send()
            .await?
            .error_for_status()?;
        let version = response.version();
        let weight = response
            .headers()
            .get("x-mbx-used-weight-1m")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        Ok((response.text().await?, version, weight))
    }

    /// The next `count` trades of the stream.
    pub async fn trades(&self, count: usize) -> Result<Vec<String>, ProxyError> {
        let (mut ws, _response) = self.websocket(&self.stream).await?;
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

/// The loopback SOCKS5 proxies the settings route `localex` through (so the quickstart can
/// start them); routes elsewhere are left to whatever listens there.
fn local_proxies(settings: &ProxySettings) -> Vec<SocketAddr> {
    let mut addrs = Vec::new();
    for kind in ConnectionKind::ALL {
        let Some(endpoint) = settings
            .get_proxy("localex", kind)
            .and_then(|c| c.url().endpoint())
        else {
            continue;
        };
        let socks5 = matches!(
            endpoint.scheme(),
            ProxyScheme::Socks5 | ProxyScheme::Socks5h
        );
        let Host::Ip(ip) = *endpoint.host() else {
            continue;
        };
        let addr = SocketAddr::new(ip, endpoint.port());
        if socks5 && ip.is_loopback() && endpoint.username().is_none() && !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    addrs
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn Error + Send + Sync>> {
    let config = proxy_examples::config_path();
    let prefix = ProxySettings::OPTIONS.env_prefix.unwrap_or_default();
    println!(
        "settings: {} (section `proxy:`), then variables {prefix}*",
        config.display()
    );
    let overrides: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.to_ascii_uppercase().starts_with(prefix))
        .collect();
    if overrides.is_empty() {
        println!("no {prefix}* variables set: the file alone decides (set one to override it)");
    } else {
        println!("overriding the file: {}", overrides.join(", "));
    }

    let (settings, origins) = match ProxySettings::loader()
        .yaml_file(&config)
        .process_env()
        .load_with_origins()
    {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    println!();
    print!(
        "{}",
        render::report_table(&Report::new(
            &settings,
            Some(&origins),
            &[ExchangeId::new("localex")?],
            prefix
        ))
    );

    let exchange = LocalExchange::start().await?;
    let mut proxies = Vec::new();
    for addr in local_proxies(&settings) {
        match Socks5Server::start(addr).await {
            Ok(proxy) => proxies.push(proxy),
            Err(e) => {
                eprintln!("cannot start the local SOCKS5 proxy on {addr}: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    println!(
        "\nlocal exchange: REST {}, stream {}; local SOCKS5 proxy: {}",
        exchange.rest,
        exchange.stream,
        if proxies.is_empty() {
            "none (no route uses one)".to_owned()
        } else {
            proxies
                .iter()
                .map(|p| p.addr.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );

    // The application installs the settings once; clients pick them up when built.
    let roots = TlsRoots::default().add_der(exchange.ca_der.clone());
    init_proxy_system_with(ProxyInjector::builder(settings).tls_roots(roots).build());

    let client = LocalEx::new(&exchange.rest, &exchange.stream);
    println!("client: {client:?}\n");
    match client.ticker("BTCUSDT").await {
        Ok((body, version, weight)) => {
            println!("REST ticker ({version:?}, gzip decoded, request weight {weight}): {body}")
        }
        Err(e) => {
            eprintln!("REST failed: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    match client.trades(3).await {
        Ok(trades) => {
            for t in trades {
                println!("stream trade: {t}");
            }
        }
        Err(e) => {
            eprintln!("stream failed: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    let carried: usize = proxies.iter().map(Socks5Server::carried).sum();
    println!("\nconnections carried by the local SOCKS5 proxy: {carried}");
    Ok(ExitCode::SUCCESS)
}
