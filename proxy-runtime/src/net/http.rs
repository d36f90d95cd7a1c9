//! The HTTP client of one exchange: hyper 1 with hyper-util's pooled client, connecting
//! through the dialer, TLS by rustls.
//!
//! Every target, `http://` included, is reached through a tunnel (CONNECT or SOCKS), never
//! by sending the request to an HTTP proxy in absolute form: that way the proxy sees only
//! `host:port`, and the exchange's own headers (API keys, signatures) never reach it.
//! One client holds one pool, and one client serves one route, so connections never cross
//! proxies or credentials.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::dial::Dialer;
use super::error::{ProxyError, ProxyErrorKind as K, find_in_chain};
use super::stream::ProxyStream;
use super::target::Target;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Connects hyper's pool through the dialer.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    dialer: Dialer,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<ProxyStream>;
    type Error = ProxyError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ProxyError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let dialer = self.dialer.clone();
        Box::pin(async move {
            let (target, tls) = target_of(&uri).map_err(|e| dialer.attach(e, None))?;
            dialer.connect(&target, tls).await.map(TokioIo::new)
        })
    }
}

/// The target of an `http://` or `https://` URI, and whether it takes TLS.
fn target_of(uri: &http::Uri) -> Result<(Target, bool), ProxyError> {
    let invalid = |what: &str| ProxyError::new(K::InvalidTarget).detail(what.to_owned());
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid("only http:// and https:// URLs")),
    };
    let host = uri.host().ok_or_else(|| invalid("the URL has no host"))?;
    if uri.port_u16().is_none() && has_port(uri) {
        return Err(invalid("the URL's port is not a number from 0 to 65535"));
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((Target::new(host, port)?, tls))
}

/// Whether the URL's authority writes a port (valid or not).
fn has_port(uri: &http::Uri) -> bool {
    let Some(authority) = uri.authority() else {
        return false;
    };
    let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    host_port
        .rfind(':')
        .is_some_and(|i| !host_port[i..].contains(']'))
}

/// The HTTP client of one exchange. Cheap to clone; clones share the connection pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), proxy_runtime::ProxyError> {
/// let client = proxy_runtime::proxy_injector().http_client("binance");
/// let depth = client.get("https://api.binance.com/api/v3/depth?symbol=BTCUSDT").await?;
/// # let _ = depth; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    dialer: Dialer,
}

impl HttpClient {
    /// A client whose connections all go through `dialer`.
    pub fn new(dialer: Dialer) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(Connector {
                dialer: dialer.clone(),
            });
        Self { client, dialer }
    }

    /// The dialer (route) this client uses.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// Sends a request and returns the response head with a streaming body.
    pub async fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ProxyError> {
        let target = shown_target(request.uri());
        self.send(request)
            .await
            .map_err(|e| self.dialer.attach(e, target.as_deref()))
    }

    async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ProxyError> {
        target_of(request.uri())?;
        self.client
            .request(request)
            .await
            .map_err(|e| find_in_chain(&e).unwrap_or_else(|| ProxyError::new(K::Http).source(e)))
    }

    /// `GET url` and the whole body; a status other than 2xx is an [`ProxyErrorKind::Http`](crate::ProxyErrorKind::Http) error
    /// naming the status. Use [`request`](Self::request) to read error bodies.
    pub async fn get(&self, url: &str) -> Result<Bytes, ProxyError> {
        let uri: http::Uri = url.parse().map_err(|e| {
            self.dialer
                .attach(ProxyError::new(K::InvalidTarget).source(e), None)
        })?;
        let target = shown_target(&uri);
        let fetch = async {
            let request = http::Request::get(uri)
                .body(Full::new(Bytes::new()))
                .map_err(|e| ProxyError::new(K::InvalidTarget).source(e))?;
            let response = self.send(request).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ProxyError::new(K::Http).source(e))?;
            if !status.is_success() {
                return Err(
                    ProxyError::new(K::Http).detail(format!("the server answered {status}"))
                );
            }
            Ok(body.to_bytes())
        };
        fetch
            .await
            .map_err(|e| self.dialer.attach(e, target.as_deref()))
    }
}

/// `host:port` of a URL for messages (never its user information, which may hold an API
/// key), as the dialer names the target.
fn shown_target(uri: &http::Uri) -> Option<String> {
    target_of(uri).ok().map(|(target, _)| target.to_string())
}
