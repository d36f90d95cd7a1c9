//! The response of [`RequestBuilder::send`](super::request::RequestBuilder::send): status,
//! headers and version at once, the body read whole or in chunks, within the client's
//! body limit and the request's deadline.

use std::fmt;

use bytes::Bytes;
use futures_util::Stream;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use sync_wrapper::SyncWrapper;
use tokio::time::Instant;
use url::Url;

use super::body::BoundedBody;
use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::route::dialer::Route;
use crate::transport::target::Target;

/// Where a request was sent, to name it in errors: the route, and the target. Kept as
/// parsed, and written out only for an error: a request that succeeds formats nothing.
#[derive(Clone)]
pub(crate) struct Sent {
    route: Route,
    target: Option<Target>,
}

impl Sent {
    /// A request to `target` through `route`.
    pub(crate) fn new(route: Route, target: Option<Target>) -> Self {
        Self { route, target }
    }

    /// The target as `host:port`, for messages.
    fn shown_target(&self) -> Option<String> {
        self.target.as_ref().map(Target::to_string)
    }

    /// `result`'s error naming the route and target.
    pub(crate) fn attach<T>(&self, result: Result<T, ProxyError>) -> Result<T, ProxyError> {
        result.map_err(|e| self.attach_error(e))
    }

    fn attach_error(&self, error: ProxyError) -> ProxyError {
        self.route.attach(error, self.shown_target().as_deref())
    }
}

/// How much of an error response's body [`Response::error_for_status_with_body`] keeps.
const SHOWN_BODY: usize = 256;

/// An HTTP response: the head as it arrived, and a body to read.
///
/// The body is decompressed (per the crate's features) and bounded by the client's
/// `max_body_bytes`; reading it is bounded by the request's deadline, if it has one.
/// `Send` and `Sync`, as reqwest's is.
pub struct Response {
    head: http::response::Parts,
    url: Url,
    body: SyncWrapper<BoundedBody>,
    /// The body's length, when known before reading.
    length: Option<u64>,
    deadline: Option<Instant>,
    sent: Sent,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.head.status)
            .field("version", &self.head.version)
            .field("target", &self.sent.shown_target())
            .finish_non_exhaustive()
    }
}

impl Response {
    pub(crate) fn new(
        head: http::response::Parts,
        url: Url,
        body: BoundedBody,
        deadline: Option<Instant>,
        sent: Sent,
    ) -> Self {
        let length = body.size_hint().exact();
        Self {
            head,
            url,
            body: SyncWrapper::new(body),
            length,
            deadline,
            sent,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The HTTP version the response came in: `HTTP/2.0` when ALPN chose `h2`.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The headers. With decompression, `Content-Encoding` and `Content-Length` are
    /// removed, as the body is no longer what they describe.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The URL that was requested (its fragment, never sent, left out).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body's length, when it is known before reading (from `Content-Length`, when
    /// the body is not decompressed).
    pub fn content_length(&self) -> Option<u64> {
        self.length
    }

    /// The next piece of the body, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ProxyError> {
        let sent = self.sent.clone();
        let deadline = self.deadline;
        let next = async {
            loop {
                match self.body.get_mut().frame().await {
                    None => return Ok(None),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                    Some(Err(e)) => return Err(e),
                }
            }
        };
        sent.attach(within(deadline, next).await)
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, ProxyError> {
        let Self {
            body,
            deadline,
            sent,
            ..
        } = self;
        let all = async { body.into_inner().collect().await.map(|b| b.to_bytes()) };
        sent.attach(within(deadline, all).await)
    }

    /// The whole body as text, decoded by the charset of `Content-Type` (UTF-8 when it
    /// names none, or one that is unknown); invalid sequences become `U+FFFD`.
    pub async fn text(self) -> Result<String, ProxyError> {
        let encoding = self
            .head
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(charset)
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8);
        let bytes = self.bytes().await?;
        let (text, _, _) = encoding.decode(&bytes);
        Ok(text.into_owned())
    }

    /// The whole body as JSON.
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, ProxyError> {
        let sent = self.sent.clone();
        let bytes = self.bytes().await?;
        sent.attach(serde_json::from_slice(&bytes).map_err(|e| {
            ProxyError::new(K::Decode)
                .detail("the body is not the JSON expected")
                .source(e)
        }))
    }

    /// The body as a stream of pieces, each within the client's body limit and the
    /// request's deadline, as reqwest's `Response::bytes_stream`; it ends after an error.
    pub fn bytes_stream(self) -> impl Stream<Item = Result<Bytes, ProxyError>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(piece)) => Some((Ok(piece), Some(response))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The response itself when its status is not an error (below 400), else a
    /// [`ProxyErrorKind::Status`](crate::ProxyErrorKind::Status) error naming the status,
    /// the exchange and the target; as reqwest's. (To see the start of the body in the
    /// error, use [`error_for_status_with_body`](Self::error_for_status_with_body).)
    pub fn error_for_status(self) -> Result<Self, ProxyError> {
        match self.status_error() {
            None => Ok(self),
            Some(error) => Err(error),
        }
    }

    /// [`error_for_status`](Self::error_for_status) on a borrowed response, as reqwest's.
    pub fn error_for_status_ref(&self) -> Result<&Self, ProxyError> {
        match self.status_error() {
            None => Ok(self),
            Some(error) => Err(error),
        }
    }

    /// The error of an error status (4xx, 5xx), naming the exchange and the target.
    fn status_error(&self) -> Option<ProxyError> {
        let status = self.head.status;
        (status.is_client_error() || status.is_server_error())
            .then(|| self.sent.attach_error(ProxyError::new(K::Status(status))))
    }

    /// Like [`error_for_status`](Self::error_for_status), with the start of the body in
    /// the error (up to 256 bytes, never a header) for diagnosis: it reads that much of
    /// the body, hence `async`.
    pub async fn error_for_status_with_body(mut self) -> Result<Self, ProxyError> {
        let status = self.head.status;
        if !(status.is_client_error() || status.is_server_error()) {
            return Ok(self);
        }
        let mut start = Vec::new();
        while start.len() < SHOWN_BODY {
            match self.chunk().await {
                Ok(Some(chunk)) => start.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        start.truncate(SHOWN_BODY);
        let shown: String = String::from_utf8_lossy(&start)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut error = ProxyError::new(K::Status(status));
        if !shown.trim().is_empty() {
            error = error.detail(format!("body starts: {:?}", shown.trim()));
        }
        Err(self.sent.attach_error(error))
    }
}

/// The `charset` parameter of a `Content-Type` value.
fn charset(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Runs a body read within the request's deadline.
async fn within<T>(
    deadline: Option<Instant>,
    read: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    match deadline {
        None => read.await,
        Some(deadline) => tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| ProxyError::new(K::Timeout(Phase::ResponseBody)))?,
    }
}

#[cfg(test)]
mod tests {
    use super::charset;

    #[test]
    fn charsets_from_content_type() {
        assert_eq!(
            charset("text/plain; charset=ISO-8859-1").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(
            charset("text/plain;Charset=\"utf-8\"").as_deref(),
            Some("utf-8")
        );
        assert_eq!(charset("application/json"), None);
    }
}
