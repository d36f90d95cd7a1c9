//! What one keep-alive request costs, this project against bare hyper-util: the two
//! clients, built the same way (one route, the same TLS configuration, the same HTTP
//! versions offered), and a request loop that does the same work on each side.
//!
//! The bare side is hyper-util's pooled client over hyper-rustls (Nagle off), through
//! hyper-util's own SOCKS5 and CONNECT connectors when a proxy is given. Per request it
//! does what this project's `get(url).send().await?.bytes().await?` does for a caller:
//! parses the URL with `url::Url`, sets the `Accept-Encoding` this project sends (the
//! codings its features decode), sends, and reads the whole body.
//!
//! Used by the `cost` benchmark (per-request CPU time, allocations and instructions) and
//! by the allocation test in `tests/`, which keep this project within a few allocations of
//! the bare client.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

/// The HTTP version a client is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1 alone (ALPN `http/1.1`).
    Http1,
    /// HTTP/2 where ALPN chooses it (ALPN `h2`, `http/1.1`); the loopback origin does.
    Http2,
}

impl Version {
    /// The version's short name, as the `cost` benchmark's arguments spell it.
    pub fn name(self) -> &'static str {
        match self {
            Version::Http1 => "h1",
            Version::Http2 => "h2",
        }
    }

    /// The version named `name` (`h1` or `h2`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "h1" => Some(Version::Http1),
            "h2" => Some(Version::Http2),
            _ => None,
        }
    }
}

type Https<C> = hyper_rustls::HttpsConnector<C>;
/// A bare hyper-util client over the connector `C`.
pub type Bare<C> = Client<Https<C>, Empty<Bytes>>;

/// A client of either side.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "the peer's client as its users hold it, unboxed; a few are made per run"
)]
pub enum KeepAlive {
    /// This project's `HttpClient`.
    Ours(proxy_runtime::HttpClient),
    /// hyper-util and hyper-rustls.
    Bare(BareClient),
}

/// hyper-util and hyper-rustls, by the way it connects.
#[derive(Clone, Debug)]
pub enum BareClient {
    /// Direct.
    Direct(Bare<HttpConnector>),
    /// Through a SOCKS5 proxy (names resolved by the proxy).
    Socks(Bare<SocksV5<HttpConnector>>),
    /// Through an HTTP proxy's CONNECT tunnel.
    Tunnel(Bare<Tunnel<HttpConnector>>),
}

impl BareClient {
    /// Sends `request`, as hyper-util's `Client::request`.
    async fn request(
        &self,
        request: http::Request<Empty<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        match self {
            BareClient::Direct(c) => c.request(request).await,
            BareClient::Socks(c) => c.request(request).await,
            BareClient::Tunnel(c) => c.request(request).await,
        }
    }
}

impl KeepAlive {
    /// This project's client of the `binance` route: direct, or through `proxy` for HTTP
    /// (a proxy URL, or a pool: a JSON list of them), trusting `ca` (PEM) alone.
    pub fn ours(ca_pem: &[u8], proxy: Option<&str>, version: Version) -> Self {
        let settings = match proxy {
            None => proxy_runtime::ProxySettings::new(false),
            Some(urls) if urls.starts_with('[') => proxy_runtime::ProxySettings::loader()
                .env_vars([
                    ("CRYPTOFEED_PROXY_ENABLED", "true"),
                    ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS", urls),
                ])
                .load()
                .expect("settings"),
            Some(url) => proxy_runtime::ProxySettings::loader()
                .env_vars([
                    ("CRYPTOFEED_PROXY_ENABLED", "true"),
                    ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url),
                ])
                .load()
                .expect("settings"),
        };
        let roots = proxy_runtime::TlsRoots::empty()
            .add_pem(ca_pem)
            .expect("the CA");
        let builder = proxy_runtime::ProxyInjector::builder(settings).tls_roots(roots);
        let builder = match version {
            Version::Http1 => builder.http1_only(),
            Version::Http2 => builder,
        };
        Self::Ours(builder.build().http_client("binance"))
    }

    /// The bare client: direct, or through `proxy` (`socks5h://` or `http://`; of a pool,
    /// a JSON list, its first member: hyper-util has no pools of proxies), trusting `ca`
    /// (PEM) alone.
    pub fn bare(ca_pem: &[u8], proxy: Option<&str>, version: Version) -> Self {
        use rustls::pki_types::pem::PemObject;
        let ca = CertificateDer::from_pem_slice(ca_pem).expect("a PEM certificate");
        Self::bare_with(&crate::peer_tls(ca), proxy, version)
    }

    /// [`KeepAlive::bare`] on the TLS configuration `tls` (its ALPN list aside:
    /// hyper-rustls sets ALPN itself, from the versions enabled).
    pub fn bare_with(tls: &rustls::ClientConfig, proxy: Option<&str>, version: Version) -> Self {
        let mut tls = tls.clone();
        tls.alpn_protocols.clear();
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let pool: Option<Vec<String>> = proxy
            .filter(|p| p.starts_with('['))
            .map(|p| serde_json::from_str(p).expect("a JSON list of proxy URLs"));
        let proxy = pool
            .as_ref()
            .map_or(proxy, |p| p.first().map(String::as_str));
        match proxy {
            None => Self::Bare(BareClient::Direct(bare_client(tcp, tls, version))),
            Some(url) => {
                let uri: http::Uri = url.parse().expect("a proxy URI");
                match uri.scheme_str() {
                    Some("socks5h") => {
                        let socks = SocksV5::new(uri, tcp).local_dns(false);
                        Self::Bare(BareClient::Socks(bare_client(socks, tls, version)))
                    }
                    Some("http") => {
                        let tunnel = Tunnel::new(uri, tcp);
                        Self::Bare(BareClient::Tunnel(bare_client(tunnel, tls, version)))
                    }
                    other => panic!("no bare client for proxy scheme {other:?}"),
                }
            }
        }
    }

    /// `GET url` and its whole body; the body's length. Panics on any failure: the
    /// fixtures on loopback do not fail.
    pub async fn get(&self, url: &str) -> usize {
        match self {
            KeepAlive::Ours(c) => c
                .get(url)
                .send()
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body")
                .len(),
            KeepAlive::Bare(c) => {
                let response = c.request(bare_request(url)).await.expect("GET");
                let body = response.into_body().collect().await.expect("body");
                body.to_bytes().len()
            }
        }
    }
}

fn bare_client<C>(connector: C, tls: rustls::ClientConfig, version: Version) -> Bare<C>
where
    C: tower_service::Service<http::Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read
        + hyper::rt::Write
        + hyper_util::client::legacy::connect::Connection
        + Send
        + Unpin
        + 'static,
    C::Future: Send + Unpin + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let https = match version {
        Version::Http1 => builder.enable_http1().wrap_connector(connector),
        Version::Http2 => builder.enable_all_versions().wrap_connector(connector),
    };
    Client::builder(TokioExecutor::new()).build(https)
}

/// The bare side's `GET url`: the URL parsed as this project parses it (`url::Url`), and
/// the same `Accept-Encoding`.
pub fn bare_request(url: &str) -> http::Request<Empty<Bytes>> {
    let url = url::Url::parse(url).expect("a URL");
    let uri: http::Uri = url.as_str().parse().expect("a URI");
    let mut request = http::Request::get(uri);
    if let Some(accept) = proxy_runtime::bench::accept_encoding() {
        request = request.header(http::header::ACCEPT_ENCODING, accept);
    }
    request.body(Empty::new()).expect("a request")
}
