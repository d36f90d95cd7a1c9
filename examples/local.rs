//! A small exchange on loopback, so that the quickstart runs anywhere: an HTTPS REST
//! endpoint and a WSS trade stream, with a certificate from the test CA of `proxy-tests`
//! (the fixtures the integration tests use). The quickstart's SOCKS5 proxy is
//! `proxy_tests::socks5::Socks5Server`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proxy_tests::tls::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The local exchange: where its endpoints listen, and the CA to trust.
#[derive(Debug)]
pub struct LocalExchange {
    /// `https://127.0.0.1:PORT`.
    pub rest: String,
    /// `wss://127.0.0.1:PORT/ws/trades`.
    pub stream: String,
    /// The CA certificate (DER) that signed the exchange's certificate.
    pub ca_der: Vec<u8>,
}

impl LocalExchange {
    /// Starts the REST endpoint and the trade stream on free loopback ports.
    pub async fn start() -> Result<Self, Error> {
        let ca = TestCa::new();
        let acceptor = ca.acceptor();
        let rest = TcpListener::bind("127.0.0.1:0").await?;
        let stream = TcpListener::bind("127.0.0.1:0").await?;
        let (rest_port, stream_port) = (rest.local_addr()?.port(), stream.local_addr()?.port());
        tokio::spawn(serve_rest(rest, acceptor.clone()));
        tokio::spawn(serve_trades(stream, acceptor));
        Ok(Self {
            rest: format!("https://127.0.0.1:{rest_port}"),
            stream: format!("wss://127.0.0.1:{stream_port}/ws/trades"),
            ca_der: ca.ca_der().to_vec(),
        })
    }
}

/// Answers every GET with a small JSON ticker.
async fn serve_rest(listener: TcpListener, acceptor: TlsAcceptor) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 2048];
            loop {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return;
                };
                buf.drain(..end + 4);
                let body = r#"{"symbol":"BTCUSDT","bid":"97012.50","ask":"97013.10"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Sends a few trades to every WebSocket client, then closes.
async fn serve_trades(listener: TcpListener, acceptor: TlsAcceptor) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                return;
            };
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
