//! A small exchange on loopback, so that the quickstart runs anywhere: an HTTPS REST
//! endpoint (HTTP/2 by ALPN, gzip-compressed answers, and an API key it insists on) and a
//! WSS trade stream, with certificates from the test CA of `proxy-tests`, the loopback
//! fixtures the integration tests use. The quickstart's SOCKS5 proxy is
//! `proxy_tests::socks5::Socks5Server`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{Response, StatusCode};
use proxy_tests::origin::{self, Received};
use proxy_tests::tls::TestCa;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The header the REST endpoint insists on, as Binance's keyed endpoints do.
pub const API_KEY_HEADER: &str = "x-mbx-apikey";

/// The local exchange: where its endpoints listen, and the CA to trust.
#[derive(Debug)]
pub struct LocalExchange {
    /// `https://127.0.0.1:PORT`.
    pub rest: String,
    /// `wss://127.0.0.1:PORT/ws/trades`.
    pub stream: String,
    /// `wss://127.0.0.1:PORT/ws/live`: a trade every 100 ms after a subscription.
    pub live: String,
    /// The CA certificate (DER) that signed the exchange's certificate.
    pub ca_der: Vec<u8>,
}

impl LocalExchange {
    /// Starts the REST endpoint and the trade stream on free loopback ports.
    pub async fn start() -> Result<Self, Error> {
        let ca = TestCa::new();
        let rest = origin::serve_https_with(&ca, Arc::new(ticker)).await;
        let stream = TcpListener::bind("127.0.0.1:0").await?;
        let stream_port = stream.local_addr()?.port();
        tokio::spawn(serve_trades(stream, ca.acceptor()));
        Ok(Self {
            rest: format!("https://127.0.0.1:{}", rest.port()),
            stream: format!("wss://127.0.0.1:{stream_port}/ws/trades"),
            live: format!("wss://127.0.0.1:{stream_port}/ws/live"),
            ca_der: ca.ca_der().to_vec(),
        })
    }
}

/// A small JSON ticker, gzip-compressed, for requests with an API key; 401 without.
fn ticker(request: &Received) -> Response<origin::Body> {
    if !request.headers.contains_key(API_KEY_HEADER) {
        let mut response = Response::new(origin::full(
            "{\"code\":-2014,\"msg\":\"API-key required\"}",
        ));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let body = r#"{"symbol":"BTCUSDT","bid":"97012.50","ask":"97013.10"}"#;
    let mut response = Response::new(origin::full(origin::encode("gzip", body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers.insert("content-encoding", "gzip".parse().expect("value"));
    headers.insert("x-mbx-used-weight-1m", "2".parse().expect("value"));
    response
}

/// Sends a few trades to every WebSocket client, then closes; on `/ws/live`, once the
/// client sends its subscription, a trade every 100 ms until the client goes.
async fn serve_trades(listener: TcpListener, acceptor: TlsAcceptor) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut path = String::new();
            #[allow(clippy::result_large_err)] // tungstenite's callback type
            let record = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                          response| {
                path = request.uri().path().to_owned();
                Ok(response)
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, record).await else {
                return;
            };
            if path == "/ws/live" {
                // The subscription first.
                if !matches!(ws.next().await, Some(Ok(Message::Text(_)))) {
                    return;
                }
                for t in 2000.. {
                    let trade = format!(
                        r#"{{"e":"trade","s":"BTCUSDT","t":{t},"p":"97012.70","q":"0.010"}}"#
                    );
                    if ws.send(Message::text(trade)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            for (i, price) in ["97012.70", "97013.00", "97011.90"].iter().enumerate() {
                let trade = format!(
                    r#"{{"e":"trade","s":"BTCUSDT","t":{},"p":"{price}","q":"0.010"}}"#,
                    1000 + i
                );
                if ws.send(Message::text(trade)).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        });
    }
}
