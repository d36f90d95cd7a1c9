//! Benchmarks of proxy-runtime, each beside its peer in the same run:
//!
//! - `suite/` (`cargo bench -p proxy-benches --bench suite`): HTTP and WSS through each
//!   real proxy against reqwest, plain hyper-util and tokio-tungstenite, memory of idle
//!   streams, settings loading and client construction; see its `main.rs`.
//! - `pool.rs` (`cargo bench -p proxy-benches --bench pool`): what a pooled route adds to
//!   a new connection (member selection, and the metric calls with and without a
//!   recorder).
//! - `cost.rs` (`cargo bench -p proxy-benches --bench cost`): what one keep-alive request
//!   costs, this project against bare hyper-util: CPU time, allocations and (under
//!   callgrind) instructions per request.
//! - `idle_streams.rs`, a program the suite runs once per side, so that each side's
//!   memory is measured in a process of its own.
//!
//! This library holds what the peers' side needs in more than one of them: their TLS
//! configuration and a WSS stream made by hand.

pub mod keepalive;

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

/// The peers' TLS configuration: ring, trusting `ca` (DER) alone, with ALPN for HTTP/2 and
/// HTTP/1.1 (hyper-rustls sets ALPN itself; reqwest takes the configuration as it is).
pub fn peer_tls(ca: rustls::pki_types::CertificateDer<'static>) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("the test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// [`peer_tls`] with ALPN for HTTP/1.1 alone, as a WebSocket client offers.
pub fn peer_tls_h1(ca: rustls::pki_types::CertificateDer<'static>) -> ClientConfig {
    let mut config = peer_tls(ca);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A WSS stream to the origin at `127.0.0.1:port`, made by hand: TCP (through the SOCKS5
/// proxy at `socks`, if any), TLS, the upgrade.
pub async fn ws_by_hand(
    tls: &Arc<ClientConfig>,
    port: u16,
    socks: Option<u16>,
) -> WebSocketStream<Box<dyn Stream>> {
    let tcp = match socks {
        Some(proxy) => {
            let s =
                tokio_socks::tcp::Socks5Stream::connect(("127.0.0.1", proxy), ("127.0.0.1", port))
                    .await
                    .expect("SOCKS5");
            let tcp = s.into_inner();
            tcp.set_nodelay(true).expect("nodelay");
            tcp
        }
        None => {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("TCP");
            tcp.set_nodelay(true).expect("nodelay");
            tcp
        }
    };
    let name = ServerName::try_from("127.0.0.1").expect("a name");
    let tls = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .expect("TLS");
    let url = format!("wss://127.0.0.1:{port}/ws");
    let io: Box<dyn Stream> = Box::new(tls);
    let (ws, _) = tokio_tungstenite::client_async(url, io)
        .await
        .expect("upgrade");
    ws
}

/// What a stream must be.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
