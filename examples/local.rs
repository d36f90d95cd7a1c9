//! A small exchange and a SOCKS5 proxy on loopback, so that the quickstart runs anywhere:
//! an HTTPS REST endpoint and a WSS trade stream (certificate signed by a CA made at start),
//! and a SOCKS5 proxy (no authentication, CONNECT only) that counts what it carried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&key, &issuer)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let rest = TcpListener::bind("127.0.0.1:0").await?;
        let stream = TcpListener::bind("127.0.0.1:0").await?;
        let (rest_port, stream_port) = (rest.local_addr()?.port(), stream.local_addr()?.port());
        tokio::spawn(serve_rest(rest, acceptor.clone()));
        tokio::spawn(serve_trades(stream, acceptor));
        Ok(Self {
            rest: format!("https://127.0.0.1:{rest_port}"),
            stream: format!("wss://127.0.0.1:{stream_port}/ws/trades"),
            ca_der: ca_cert.der().to_vec(),
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

/// A SOCKS5 proxy (no authentication, CONNECT only) that counts the connections it carried.
#[derive(Debug, Clone)]
pub struct LocalSocks5 {
    /// Where it listens.
    pub addr: SocketAddr,
    carried: Arc<AtomicUsize>,
}

impl LocalSocks5 {
    /// Starts the proxy on `addr`.
    pub async fn start(addr: SocketAddr) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr).await?;
        let carried = Arc::new(AtomicUsize::new(0));
        let count = carried.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = handshake(client).await {
                        count.fetch_add(1, Ordering::SeqCst);
                        let _ =
                            tokio::io::copy_bidirectional(&mut upstream.0, &mut upstream.1).await;
                    }
                });
            }
        });
        Ok(Self { addr, carried })
    }

    /// Connections carried so far.
    pub fn carried(&self) -> usize {
        self.carried.load(Ordering::SeqCst)
    }
}

/// The server side of a SOCKS5 CONNECT: returns (client, upstream).
async fn handshake(mut client: TcpStream) -> Result<(TcpStream, TcpStream), Error> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff]).await?;
        return Err("no acceptable method".into());
    }
    client.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            std::net::Ipv6Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8(name)?
        }
        _ => return Err("address type".into()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    match TcpStream::connect((host.as_str(), u16::from_be_bytes(port))).await {
        Ok(upstream) => {
            client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Ok((client, upstream))
        }
        Err(e) => {
            client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            Err(e.into())
        }
    }
}
