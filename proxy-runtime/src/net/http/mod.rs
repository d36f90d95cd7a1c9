//! The HTTP client of one exchange: hyper 1 with hyper-util's pooled client (HTTP/1.1 and,
//! by ALPN, HTTP/2), connecting through the dialer, TLS by rustls, with reqwest's shapes:
//! [`RequestBuilder`] and [`Response`].
//!
//! Every target, `http://` included, is reached through a tunnel (CONNECT or SOCKS), never
//! by sending the request to an HTTP proxy in absolute form: that way the proxy sees only
//! `host:port`, and the exchange's own headers (API keys, signatures) never reach it.
//! One client holds one pool, and one client serves one route, so connections never cross
//! proxies or credentials. The client never retries a request: trading requests are not
//! idempotent.

mod body;
mod connector;
mod request;
mod response;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

pub use connector::ProxyConnector;
pub(crate) use connector::target_of;
pub use request::RequestBuilder;
pub use response::Response;

use super::dial::{Dialer, Trace};
use super::error::{Phase, ProxyError, ProxyErrorKind as K, find_in_chain};
use body::BoundedBody;
use connector::REQUEST_TRACE;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The default bound on a response body, after decompression: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Client-wide options, set on the injector's builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpOptions {
    /// The default deadline of a whole request.
    pub(crate) timeout: Option<Duration>,
    /// The bound on a response body, after decompression.
    pub(crate) max_body_bytes: u64,
    /// Whether `https://` targets are offered HTTP/2.
    pub(crate) http2: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http2: true,
        }
    }
}

/// The HTTP client of one exchange. Cheap to clone; clones share the connection pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), proxy_runtime::ProxyError> {
/// let client = proxy_runtime::proxy_injector().http_client("binance");
/// let response = client
///     .get("https://api.binance.com/api/v3/depth")
///     .query(&[("symbol", "BTCUSDT"), ("limit", "5")])
///     .send()
///     .await?
///     .error_for_status()
///     .await?;
/// let weight = response.headers().get("x-mbx-used-weight-1m").cloned();
/// let depth: serde_json::Value = response.json().await?;
/// # let _ = (weight, depth); Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<ProxyConnector, Full<Bytes>>,
    dialer: Dialer,
    options: HttpOptions,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("dialer", &self.inner.dialer)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// Where a request went, to name it in errors.
#[derive(Clone)]
pub(crate) struct Route {
    dialer: Dialer,
    target: Option<String>,
}

impl Route {
    fn attach<T>(&self, result: Result<T, ProxyError>) -> Result<T, ProxyError> {
        result.map_err(|e| self.attach_error(e))
    }

    fn attach_error(&self, error: ProxyError) -> ProxyError {
        self.dialer.attach(error, self.target.as_deref())
    }
}

impl HttpClient {
    /// A client whose connections all go through `dialer`, with the default options (no
    /// request deadline, 64 MiB bodies, HTTP/2 offered to `https://` targets).
    pub fn new(dialer: Dialer) -> Self {
        Self::with_options(dialer, HttpOptions::default())
    }

    pub(crate) fn with_options(dialer: Dialer, options: HttpOptions) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(ProxyConnector::new(dialer.clone(), options.http2));
        Self {
            inner: Arc::new(Inner {
                client,
                dialer,
                options,
            }),
        }
    }

    /// The dialer (route) this client uses.
    pub fn dialer(&self) -> &Dialer {
        &self.inner.dialer
    }

    /// The bound on a response body, after decompression.
    pub fn max_body_bytes(&self) -> u64 {
        self.inner.options.max_body_bytes
    }

    /// A `GET` request.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `PATCH` request.
    pub fn patch(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url.as_ref())
    }

    /// Sends a request built with hyper's types and returns hyper's response, as it came:
    /// no decompression, no body limit, no deadline. For callers who build requests
    /// themselves; [`request`](Self::request) gives all of those.
    pub async fn send_request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ProxyError> {
        let target = shown_target(request.uri());
        let route = Route {
            dialer: self.inner.dialer.clone(),
            target,
        };
        let sent = async {
            target_of(request.uri())?;
            self.inner
                .client
                .request(request)
                .await
                .map_err(hyper_error)
        };
        route.attach(sent.await)
    }

    /// Sends what a [`RequestBuilder`] gathered.
    pub(crate) async fn execute(&self, parts: request::Parts) -> Result<Response, ProxyError> {
        let deadline = parts
            .timeout
            .or(self.inner.options.timeout)
            .map(|t| Instant::now() + t);
        // Only a deadline needs to know the phase a new connection is in.
        let trace = deadline.map(|_| Arc::new(Trace::default()));
        self.execute_traced(parts, deadline, trace).await
    }

    /// [`execute`](Self::execute), tracing the phases of the connection it opens, if it
    /// opens one, in `trace` (for a deadline's error, and `proxy-check --probe`).
    pub(crate) async fn execute_traced(
        &self,
        parts: request::Parts,
        deadline: Option<Instant>,
        trace: Option<Arc<Trace>>,
    ) -> Result<Response, ProxyError> {
        let mut route = Route {
            dialer: self.inner.dialer.clone(),
            target: None,
        };
        let request = match build(parts) {
            Ok(request) => request,
            Err(e) => return Err(route.attach_error(e)),
        };
        route.target = shown_target(request.uri());
        let url = request.uri().clone();
        let mut request = request;
        // Which connection answers, for a pool to retire when its member cools (a route of
        // one member has nowhere else to go, and saves the cost).
        let capture = self
            .inner
            .dialer
            .is_pool()
            .then(|| hyper_util::client::legacy::connect::capture_connection(&mut request));
        // On the heap: the exchange's state is large, and every layer of futures around it
        // (the trace's scope, the deadline, the caller's) would otherwise copy it.
        let exchange = Box::pin(self.exchange(request));
        let exchange = async {
            match &trace {
                Some(trace) => REQUEST_TRACE.scope(trace.clone(), exchange).await,
                None => exchange.await,
            }
        };
        let response = match deadline {
            None => exchange.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, exchange).await {
                Ok(result) => result,
                Err(_) => {
                    let phase = trace.as_ref().and_then(|t| t.current());
                    Err(ProxyError::new(K::Timeout(
                        phase.unwrap_or(Phase::ResponseHead),
                    )))
                }
            },
        };
        let (head, body) = route.attach(response)?.into_parts();
        rate_limits(&head, capture);
        let body = BoundedBody::new(body, self.inner.options.max_body_bytes);
        Ok(Response::new(head, url, body, deadline, route))
    }

    /// The request and its response head, the body decompressed per the crate's features.
    #[cfg(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    ))]
    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<body::Boxed>, ProxyError> {
        use http_body_util::BodyExt;
        use tower_service::Service;
        // Sets `Accept-Encoding` unless the request has one, decodes what it knows, and
        // drops `Content-Encoding` and `Content-Length` from what it decoded. A response
        // that has no body by definition (to `HEAD`, or `204`, `304`) is not decoded: its
        // `Content-Encoding` describes a body that is not there.
        let mut service = tower_http::decompression::Decompression::new(body::NoBodyUndecoded(
            self.inner.client.clone(),
        ));
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(hyper_error)?;
        let mut response = service.call(request).await.map_err(hyper_error)?;
        body::restore_encoding(&mut response);
        Ok(response.map(|b| b.boxed_unsync()))
    }

    /// The request and its response head.
    #[cfg(not(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    )))]
    async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<body::Boxed>, ProxyError> {
        let response = self
            .inner
            .client
            .request(request)
            .await
            .map_err(hyper_error)?;
        Ok(response.map(body::plain))
    }
}

/// Keeps the pool's record of the connection a response came on, and cools its member
/// when the exchange answered 429 (rate limited) or 418 (banned): for `Retry-After` (in
/// seconds or as a date), or a minute without it. The response itself goes to the caller
/// unchanged; nothing is retried.
fn rate_limits(
    head: &http::response::Parts,
    capture: Option<hyper_util::client::legacy::connect::CaptureConnection>,
) {
    let Some(tag) = head.extensions.get::<super::pool::MemberTag>() else {
        return;
    };
    let Some(pool) = tag.pool.upgrade() else {
        return;
    };
    let status = head.status.as_u16();
    // Once per connection (its first response), so that responses do not contend for the
    // pool's lock.
    if let Some(capture) = capture
        && !tag.tracked.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        pool.track(tag.index, &tag.alive, capture);
    }
    if status == 429 || status == 418 {
        let wait = head
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after)
            .unwrap_or(super::pool::COOL_DEFAULT);
        let member = &pool.members()[tag.index].shown;
        tracing::warn!(status, ?wait, %member, "rate limited: the pool member cools");
        pool.cool(tag.index, Instant::now() + wait);
    }
}

/// The longest a member cools, whatever `Retry-After` says.
const COOL_MAX: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` as a wait: delay-seconds, or an HTTP date (a date past is no wait), at
/// most [`COOL_MAX`]; `None` when it is neither.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(COOL_MAX));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(COOL_MAX),
    )
}

/// hyper-util's error as ours: the connector's own error when it is one (hyper wraps it).
fn hyper_error(e: hyper_util::client::legacy::Error) -> ProxyError {
    find_in_chain(&e).unwrap_or_else(|| ProxyError::new(K::Http).source(e))
}

/// The request a builder describes, checked: an `http(s)://` URL without user
/// information, with the query appended.
fn build(parts: request::Parts) -> Result<http::Request<Full<Bytes>>, ProxyError> {
    let mut url = parts.url;
    for query in &parts.query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(query);
    }
    let uri: http::Uri = url.parse().map_err(|e| {
        ProxyError::new(K::InvalidTarget)
            .detail("not a URL")
            .source(e)
    })?;
    target_of(&uri)?;
    let mut request = http::Request::new(Full::new(parts.body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = parts.headers;
    if let Some(version) = parts.version {
        *request.version_mut() = version;
    }
    Ok(request)
}

/// `host:port` of a URL for messages (never its user information or query, which may
/// hold an API key), as the dialer names the target.
fn shown_target(uri: &http::Uri) -> Option<String> {
    target_of(uri).ok().map(|(target, _)| target.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::retry_after;

    #[test]
    fn retry_after_in_seconds_or_as_a_date_bounded() {
        assert_eq!(retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        // At most a day.
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(retry_after("86400"), Some(day));
        assert_eq!(retry_after("86401"), Some(day));
        assert_eq!(retry_after("99999999999"), Some(day));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        let wait = retry_after(&soon).unwrap();
        assert!(
            wait > Duration::from_secs(85) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(90));
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        let far = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90 * 24 * 3600));
        assert_eq!(retry_after(&far), Some(day));
        for bad in ["", "-1", "1.5", "soon", "Wed, 99 Foo 2026 00:00:00 GMT"] {
            assert_eq!(retry_after(bad), None, "{bad:?}");
        }
    }
}
