//! A request ready to send, with reqwest's names: [`Request`] (method, `url::Url`,
//! headers, [`Body`], deadline, version), and what a URL may be given as ([`IntoUrl`]).
//! The URL is the one parser of a request's target: host, port, the name TLS checks, and
//! the path and query hyper sends are all taken from it.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Version};
use url::Url;

use crate::error::{ProxyError, ProxyErrorKind as K};
use crate::transport::target::Target;

/// A request ready to send: what [`RequestBuilder::build`](crate::RequestBuilder::build) makes, and
/// [`HttpClient::execute`](crate::HttpClient::execute) sends. Read and change it in between (to sign it), with
/// reqwest's names.
///
/// `Debug` shows the method and what the URL points at, never the headers, query or body
/// (they hold API keys and signatures).
pub struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Body>,
    timeout: Option<Duration>,
    version: Version,
    weight: u32,
}

impl Request {
    /// A request with no header, no body, no deadline of its own, HTTP/1.1 (HTTP/2 where
    /// ALPN chooses it), of weight 1.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            version: Version::default(),
            weight: 1,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The method, to change.
    pub fn method_mut(&mut self) -> &mut Method {
        &mut self.method
    }

    /// The URL (with its query). A fragment is never sent.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL, to change.
    pub fn url_mut(&mut self) -> &mut Url {
        &mut self.url
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body, if there is one.
    pub fn body(&self) -> Option<&Body> {
        self.body.as_ref()
    }

    /// The body, to change.
    pub fn body_mut(&mut self) -> &mut Option<Body> {
        &mut self.body
    }

    /// The deadline of the whole request, if it has one of its own (else the client's).
    pub fn timeout(&self) -> Option<&Duration> {
        self.timeout.as_ref()
    }

    /// The deadline, to change.
    pub fn timeout_mut(&mut self) -> &mut Option<Duration> {
        &mut self.timeout
    }

    /// The HTTP version asked for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The version, to change.
    pub fn version_mut(&mut self) -> &mut Version {
        &mut self.version
    }

    /// The weight the request takes from its exit's budget ([`HttpBudget`](crate::HttpBudget)),
    /// 1 unless set: what the exchange documents for the endpoint (Binance's depth with
    /// `limit=5000` weighs 250). Nothing is taken on a route without a budget.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The weight, to change.
    pub fn weight_mut(&mut self) -> &mut u32 {
        &mut self.weight
    }

    /// Method, URL, headers, body and version, for sending.
    pub(crate) fn into_sendable(self) -> (Method, Url, HeaderMap, Option<Body>, Version) {
        (self.method, self.url, self.headers, self.body, self.version)
    }

    /// A copy of the request. Always `Some`: bodies are whole bytes here, never streams
    /// (the `Option` is reqwest's shape).
    pub fn try_clone(&self) -> Option<Request> {
        Some(Self {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            timeout: self.timeout,
            version: self.version,
            weight: self.weight,
        })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = Target::of_request_url(&self.url)
            .ok()
            .map(|(t, _)| t.to_string());
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &target)
            .finish_non_exhaustive()
    }
}

/// A request body: whole bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Body(Bytes);

impl Body {
    /// The bytes of the body (always `Some` here: reqwest returns `None` for streams).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        Some(&self.0)
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// Its length only: a body may hold secrets.
impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes.into())
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self(text.into())
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self(Bytes::from_static(bytes))
    }
}

/// What a request's URL may be given as: text (parsed by `url::Url`) or a `Url`.
pub trait IntoUrl: into_url::Sealed {
    /// The URL, or why it is not one.
    #[doc(hidden)]
    fn into_url(self) -> Result<Url, ProxyError>;
}

mod into_url {
    pub trait Sealed {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
    impl Sealed for url::Url {}
    impl Sealed for &url::Url {}
}

fn parse_url(text: &str) -> Result<Url, ProxyError> {
    Url::parse(text).map_err(|e| {
        ProxyError::new(K::InvalidTarget)
            .detail("not a URL")
            .source(e)
    })
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url, ProxyError> {
        parse_url(self)
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url, ProxyError> {
        parse_url(&self)
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url, ProxyError> {
        parse_url(self)
    }
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url, ProxyError> {
        Ok(self)
    }
}

impl IntoUrl for &Url {
    fn into_url(self) -> Result<Url, ProxyError> {
        Ok(self.clone())
    }
}

/// What a request's method may be given as: an `http::Method` (of the `http` version this
/// crate uses), or its name (`"GET"`, or `method.as_str()` of a method of another `http`
/// version, such as reqwest 0.11's).
pub trait IntoMethod: into_method::Sealed {
    /// The method, or why it is not one.
    #[doc(hidden)]
    fn into_method(self) -> Result<Method, ProxyError>;
}

mod into_method {
    pub trait Sealed {}
    impl Sealed for http::Method {}
    impl Sealed for &http::Method {}
    impl Sealed for &str {}
    impl Sealed for String {}
}

impl IntoMethod for Method {
    fn into_method(self) -> Result<Method, ProxyError> {
        Ok(self)
    }
}

impl IntoMethod for &Method {
    fn into_method(self) -> Result<Method, ProxyError> {
        Ok(self.clone())
    }
}

impl IntoMethod for &str {
    fn into_method(self) -> Result<Method, ProxyError> {
        Method::from_bytes(self.as_bytes()).map_err(|e| {
            ProxyError::new(K::InvalidRequest)
                .detail("not an HTTP method")
                .source(e)
        })
    }
}

impl IntoMethod for String {
    fn into_method(self) -> Result<Method, ProxyError> {
        self.as_str().into_method()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request::new(
            Method::POST,
            Url::parse("https://api.example.com:8443/v3/order?signature=QuerySecret").unwrap(),
        )
    }

    #[test]
    fn every_part_reads_back_what_was_set() {
        let mut r = request();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.version(), Version::HTTP_11);
        assert!(r.headers().is_empty());
        assert!(r.body().is_none());
        assert!(r.timeout().is_none());
        assert_eq!(r.weight(), 1);
        *r.weight_mut() = 250;
        *r.method_mut() = Method::PUT;
        *r.version_mut() = Version::HTTP_2;
        r.headers_mut()
            .insert("x-key", http::HeaderValue::from_static("k"));
        *r.body_mut() = Some(Body::from("side=BUY"));
        *r.timeout_mut() = Some(Duration::from_secs(3));
        r.url_mut().set_path("/v3/test");
        assert_eq!(r.method(), Method::PUT);
        assert_eq!(r.version(), Version::HTTP_2);
        assert_eq!(r.headers()["x-key"], "k");
        assert_eq!(r.body().and_then(Body::as_bytes), Some(&b"side=BUY"[..]));
        assert_eq!(r.timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(r.url().path(), "/v3/test");
        assert_eq!(r.weight(), 250);
        let copy = r.try_clone().unwrap();
        assert_eq!(copy.weight(), 250);
        assert_eq!(
            (copy.method(), copy.version(), copy.url(), copy.body()),
            (r.method(), r.version(), r.url(), r.body())
        );
        let (method, url, headers, body, version) = copy.into_sendable();
        assert_eq!(
            (method, url.path(), version),
            (Method::PUT, "/v3/test", Version::HTTP_2)
        );
        assert_eq!(headers["x-key"], "k");
        assert_eq!(body.map(Body::into_bytes), Some(Bytes::from("side=BUY")));
    }

    #[test]
    fn debug_shows_method_and_target_and_never_query_headers_or_body() {
        let mut r = request();
        r.headers_mut()
            .insert("x-key", http::HeaderValue::from_static("HeaderSecret"));
        *r.body_mut() = Some(Body::from("BodySecret"));
        assert_eq!(
            format!("{r:?}"),
            "Request { method: POST, target: Some(\"api.example.com:8443\"), .. }"
        );
        assert_eq!(format!("{:?}", Body::from(vec![1, 2, 3])), "Body(3 bytes)");
    }

    #[test]
    fn bodies_are_made_from_every_kind_of_bytes() {
        let expected = Some(&b"abc"[..]);
        assert_eq!(Body::from(Bytes::from_static(b"abc")).as_bytes(), expected);
        assert_eq!(Body::from(&b"abc"[..]).as_bytes(), expected);
        assert_eq!(Body::from(b"abc".to_vec()).as_bytes(), expected);
        assert_eq!(Body::from("abc").as_bytes(), expected);
        assert_eq!(Body::from(String::from("abc")).as_bytes(), expected);
        assert_eq!(Body::default().as_bytes(), Some(&b""[..]));
    }

    #[test]
    fn methods_are_taken_as_values_or_names() {
        assert_eq!(Method::PATCH.into_method().unwrap(), Method::PATCH);
        assert_eq!((&Method::HEAD).into_method().unwrap(), Method::HEAD);
        assert_eq!("DELETE".into_method().unwrap(), Method::DELETE);
        assert_eq!(String::from("PROPFIND").into_method().unwrap(), "PROPFIND");
        let e = "NOT A METHOD".into_method().unwrap_err();
        assert_eq!(e.kind(), &K::InvalidRequest);
        assert!(e.to_string().contains("not an HTTP method"), "{e}");
    }

    #[test]
    fn urls_are_taken_as_values_or_text() {
        let url = Url::parse("https://x.example/a?b=1").unwrap();
        assert_eq!((&url).into_url().unwrap(), url);
        assert_eq!(url.clone().into_url().unwrap(), url);
        assert_eq!("https://x.example/a?b=1".into_url().unwrap(), url);
        assert_eq!(
            String::from("https://x.example/a?b=1").into_url().unwrap(),
            url
        );
        assert_eq!(
            (&String::from("https://x.example/a?b=1"))
                .into_url()
                .unwrap(),
            url
        );
        assert_eq!("no url".into_url().unwrap_err().kind(), &K::InvalidTarget);
    }
}
