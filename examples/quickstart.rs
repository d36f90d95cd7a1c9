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
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{
    ConnectionKind, ExchangeId, Host, ProxyError, ProxyInjector, ProxyScheme, ProxySettings,
    SessionEvent, Settings, TlsRoots, WebSocketSession, init_proxy_system_with, proxied,
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

    /// A trade stream that keeps itself alive: it subscribes again after every
    /// reconnection, and says what happens to it.
    pub async fn live_trades(&self, url: &str) -> Result<WebSocketSession, ProxyError> {
        self.websocket_session(url)
            .on_connect(|subscriber| async move {
                let subscribe = r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#;
                subscriber.send(Message::text(subscribe)).await
            })
            .on_event(|event| match event {
                SessionEvent::Connected { connection, route } => {
                    println!("  session: connection {connection} up ({route})")
                }
                SessionEvent::Disconnected { connection, error } => {
                    println!("  session: connection {connection} lost: {error}")
                }
                SessionEvent::Reconnecting { attempt, delay } => {
                    println!("  session: reconnecting, attempt {attempt} in {delay:?}")
                }
                other => println!("  session: {other:?}"),
            })
            .open()
            .await
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

/// Which of the local proxies the session's connection goes through, by its route.
fn settings_stream_proxy(proxies: &[Socks5Server], route: Option<&str>) -> Option<usize> {
    let route = route?;
    proxies.iter().position(|p| {
        route.contains(&format!("socks5h://{}", p.addr))
            || route.contains(&format!("socks5://{}", p.addr))
    })
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

    // A resilient stream: the local proxy is restarted under it.
    println!("\nresilient trade stream ({}):", exchange.live);
    let mut live = match client.live_trades(&exchange.live).await {
        Ok(session) => session,
        Err(e) => {
            eprintln!("stream failed: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let stream_proxy = settings_stream_proxy(&proxies, live.route());
    let mut carried_before_restart = 0;
    for round in 0..2 {
        for _ in 0..3 {
            match live.next().await {
                Some(Ok(trade)) => println!(
                    "  trade (connection {}): {}",
                    trade.connection,
                    trade.message.to_text().unwrap_or("")
                ),
                Some(Err(e)) => {
                    eprintln!("stream ended: {e}");
                    return Ok(ExitCode::from(1));
                }
                None => return Ok(ExitCode::from(1)),
            }
        }
        if round == 0 {
            match stream_proxy {
                Some(i) => {
                    let addr = proxies[i].addr;
                    println!("  restarting the local SOCKS5 proxy on {addr}");
                    carried_before_restart = proxies[i].carried();
                    proxies[i].stop();
                    // The stopped proxy's task releases the port when it next runs.
                    let mut restarted = Socks5Server::start(addr).await;
                    for _ in 0..100 {
                        if restarted.is_ok() {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        restarted = Socks5Server::start(addr).await;
                    }
                    proxies[i] = restarted?;
                }
                None => println!("  (the stream goes direct: no local proxy to restart)"),
            }
        }
    }

    let carried: usize =
        carried_before_restart + proxies.iter().map(Socks5Server::carried).sum::<usize>();
    println!("\nconnections carried by the local SOCKS5 proxy: {carried}");
    Ok(ExitCode::SUCCESS)
}
