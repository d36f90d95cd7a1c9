//! Building a request the way reqwest's `RequestBuilder` does: method and URL, query,
//! headers, auth, a body (raw, JSON or form), a deadline and a version; then
//! [`build`](RequestBuilder::build) the [`Request`] (to sign it, and
//! [`execute`](HttpClient::execute) it) or [`send`](RequestBuilder::send) it. Every
//! mistake (a URL that is not one, an invalid header, a body that cannot be serialized)
//! is kept and returned by `build` or `send`, never a panic.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};

use super::client::HttpClient;
use super::request::{Body, IntoMethod, IntoUrl, Request};
use super::response::Response;
use crate::error::{ProxyError, ProxyErrorKind as K};
use crate::transport::target::Target;

/// A request being built; [`send`](Self::send) sends it, [`build`](Self::build) makes
/// the [`Request`]. Made by [`HttpClient::get`] and its siblings.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: HttpClient,
    request: Result<Request, ProxyError>,
}

/// Shows the method and what the URL points at, never headers, query or body.
impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RequestBuilder");
        match &self.request {
            Ok(request) => {
                let target = Target::of_request_url(request.url())
                    .ok()
                    .map(|(t, _)| t.to_string());
                d.field("method", request.method()).field("target", &target)
            }
            Err(e) => d.field("error", e),
        }
        .finish_non_exhaustive()
    }
}

/// The requests of a client, one constructor per method, as reqwest names them.
impl HttpClient {
    /// A `GET` request.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A `POST` request.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A `PATCH` request.
    pub fn patch(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// A request with any method: an `http::Method`, or its name (`"GET"`; a method of
    /// another `http` version as `method.as_str()`). A name that is not a method makes a
    /// request that fails with [`InvalidRequest`](crate::ProxyErrorKind::InvalidRequest)
    /// when sent or built.
    pub fn request(&self, method: impl IntoMethod, url: impl IntoUrl) -> RequestBuilder {
        let request = method
            .into_method()
            .and_then(|method| Ok(Request::new(method, url.into_url()?)));
        RequestBuilder {
            client: self.clone(),
            request,
        }
    }
}

fn invalid(what: &str, e: impl Into<http::Error>) -> ProxyError {
    ProxyError::new(K::InvalidRequest)
        .detail(what.to_owned())
        .source(e.into())
}

impl RequestBuilder {
    fn with(mut self, f: impl FnOnce(&mut Request) -> Result<(), ProxyError>) -> Self {
        if let Ok(request) = &mut self.request
            && let Err(e) = f(request)
        {
            self.request = Err(e);
        }
        self
    }

    /// Appends `query` (a struct, a map, or a list of pairs) to the URL's query string,
    /// URL-encoded.
    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.with(|p| {
            let url = p.url_mut();
            let appended = {
                let mut pairs = url.query_pairs_mut();
                query
                    .serialize(serde_urlencoded::Serializer::new(&mut pairs))
                    .map(drop)
            };
            // An empty query (`?`) is no query.
            if url.query() == Some("") {
                url.set_query(None);
            }
            appended.map_err(|e| {
                ProxyError::new(K::InvalidRequest)
                    .detail("the query cannot be URL-encoded")
                    .source(e)
            })
        })
    }

    /// Adds a header (a second value for a name already given is added beside the first).
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.with(|p| {
            let name = HeaderName::try_from(name).map_err(|e| invalid("invalid header name", e))?;
            let value =
                HeaderValue::try_from(value).map_err(|e| invalid("invalid header value", e))?;
            p.headers_mut().append(name, value);
            Ok(())
        })
    }

    /// Adds these headers, replacing the values of names already given.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.with(|p| {
            let mut last = None;
            for (name, value) in headers {
                let name = match name {
                    Some(name) => {
                        p.headers_mut().remove(&name);
                        last = Some(name.clone());
                        name
                    }
                    None => match &last {
                        Some(name) => name.clone(),
                        None => continue,
                    },
                };
                p.headers_mut().append(name, value);
            }
            Ok(())
        })
    }

    /// `Authorization: Bearer TOKEN` (marked sensitive).
    pub fn bearer_auth<T: fmt::Display>(self, token: T) -> Self {
        let value = format!("Bearer {token}");
        self.authorization(value)
    }

    /// `Authorization: Basic base64(USER:PASSWORD)` (marked sensitive).
    pub fn basic_auth<U: fmt::Display, P: fmt::Display>(
        self,
        user: U,
        password: Option<P>,
    ) -> Self {
        let pair = match password {
            Some(password) => format!("{user}:{password}"),
            None => format!("{user}:"),
        };
        let token = base64::engine::general_purpose::STANDARD.encode(pair);
        self.authorization(format!("Basic {token}"))
    }

    fn authorization(self, value: String) -> Self {
        self.with(|p| {
            let mut value =
                HeaderValue::try_from(value).map_err(|e| invalid("invalid authorization", e))?;
            value.set_sensitive(true);
            p.headers_mut().insert(AUTHORIZATION, value);
            Ok(())
        })
    }

    /// The body, sent as given.
    pub fn body(self, body: impl Into<Body>) -> Self {
        let body = body.into();
        self.with(|p| {
            *p.body_mut() = Some(body);
            Ok(())
        })
    }

    /// A JSON body, with `Content-Type: application/json` unless one is set.
    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
        self.with(|p| {
            let body = serde_json::to_vec(json).map_err(|e| {
                ProxyError::new(K::InvalidRequest)
                    .detail("the body cannot be serialized as JSON")
                    .source(e)
            })?;
            *p.body_mut() = Some(Body::from(body));
            p.headers_mut()
                .entry(CONTENT_TYPE)
                .or_insert(HeaderValue::from_static("application/json"));
            Ok(())
        })
    }

    /// A URL-encoded form body, with `Content-Type: application/x-www-form-urlencoded`
    /// unless one is set.
    pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.with(|p| {
            let body = serde_urlencoded::to_string(form).map_err(|e| {
                ProxyError::new(K::InvalidRequest)
                    .detail("the form cannot be URL-encoded")
                    .source(e)
            })?;
            *p.body_mut() = Some(Body::from(body));
            p.headers_mut()
                .entry(CONTENT_TYPE)
                .or_insert(HeaderValue::from_static(
                    "application/x-www-form-urlencoded",
                ));
            Ok(())
        })
    }

    /// A deadline for the whole request: connecting (when no pooled connection is free),
    /// sending, the response head and reading the body. It replaces the client's default
    /// for this request. The route's `timeout_seconds` still bounds the connection alone.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(|p| {
            *p.timeout_mut() = Some(timeout);
            Ok(())
        })
    }

    /// The weight of the request in its exit's budget ([`HttpBudget`](crate::HttpBudget)):
    /// what the exchange documents for the endpoint, 1 unless set. A request heavier than
    /// the whole budget of an exit is refused ([`InvalidRequest`](crate::ProxyErrorKind::InvalidRequest)).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), proxy_runtime::ProxyError> {
    /// let client = proxy_runtime::proxy_injector().http_client("binance");
    /// let depth = client
    ///     .get("https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000")
    ///     .weight(250)
    ///     .send()
    ///     .await?;
    /// # let _ = depth; Ok(()) }
    /// ```
    pub fn weight(self, weight: u32) -> Self {
        self.with(|p| {
            *p.weight_mut() = weight;
            Ok(())
        })
    }

    /// The HTTP version of the request. `HTTP_2` asks for HTTP/2 (by ALPN over `https://`,
    /// by prior knowledge over `http://`); to keep a client on HTTP/1.1, build it with
    /// HTTP/2 off ([`ProxyInjectorBuilder::http1_only`](crate::ProxyInjectorBuilder::http1_only)).
    pub fn version(self, version: Version) -> Self {
        self.with(|p| {
            *p.version_mut() = version;
            Ok(())
        })
    }

    /// The request, or the first mistake made building it: to sign it, or to send it
    /// later with [`HttpClient::execute`].
    pub fn build(self) -> Result<Request, ProxyError> {
        let Self { client, request } = self;
        request.map_err(|e| client.dialer().attach(e, None))
    }

    /// A copy of the builder (`None` in reqwest for a streamed body; always `Some` here).
    pub fn try_clone(&self) -> Option<RequestBuilder> {
        let request = match &self.request {
            Ok(request) => Ok(request.try_clone()?),
            Err(e) => Err(e.clone()),
        };
        Some(Self {
            client: self.client.clone(),
            request,
        })
    }

    /// Sends the request and returns the response head; read the body from the
    /// [`Response`].
    pub async fn send(self) -> Result<Response, ProxyError> {
        let Self { client, request } = self;
        match request {
            Ok(request) => client.execute(request).await,
            Err(e) => Err(client.dialer().attach(e, None)),
        }
    }
}
