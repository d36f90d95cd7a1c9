//! Response bodies as users read them: decompressed (per the crate's features), bounded
//! after decompression, with errors typed. The bound stops an endless body and a
//! decompression bomb alike: once it is passed nothing more is read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{LengthLimitError, Limited};

use crate::error::{Phase, ProxyError, ProxyErrorKind as K};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body, boxed: decompressed or as it came.
pub(crate) type Boxed = UnsyncBoxBody<Bytes, BoxError>;

/// A body with its limit applied.
pub(crate) struct BoundedBody {
    inner: Limited<Boxed>,
    limit: u64,
}

impl BoundedBody {
    /// `body` (already decompressed, if it was compressed), limited to `limit` bytes.
    pub(crate) fn new(body: Boxed, limit: u64) -> Self {
        let cap = usize::try_from(limit).unwrap_or(usize::MAX);
        Self {
            inner: Limited::new(body, cap),
            limit,
        }
    }

    /// The error of a body read, as happened while reading the body.
    fn error(&self, e: BoxError) -> ProxyError {
        self.kind_of(e).in_phase(Phase::ResponseBody)
    }

    fn kind_of(&self, e: BoxError) -> ProxyError {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(&*e);
        while let Some(err) = cur {
            if err.is::<LengthLimitError>() {
                return ProxyError::new(K::BodyTooLarge { limit: self.limit });
            }
            if err.is::<hyper::Error>() {
                break;
            }
            // A decoder wraps the body's errors in an io::Error whose `source` skips them.
            cur = match err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => err.source(),
            };
        }
        match cur {
            Some(_) => ProxyError::new(K::Http)
                .detail("reading the response body failed")
                .source(Shown(e.to_string())),
            None => ProxyError::new(K::Decode)
                .detail("the compressed body is corrupt")
                .source(Shown(e.to_string())),
        }
    }
}

/// An error kept as its text (the original is not `Clone`, and `ProxyError` is).
#[derive(Debug)]
struct Shown(String);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Shown {}

impl Body for BoundedBody {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        Poll::Ready(
            match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                None => None,
                Some(Ok(frame)) => Some(Ok(frame)),
                Some(Err(e)) => Some(Err(self.error(e))),
            },
        )
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The body of a response as it came, boxed.
#[cfg(not(any(
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
)))]
pub(crate) fn plain(body: hyper::body::Incoming) -> Boxed {
    use http_body_util::BodyExt;
    body.map_err(Into::into).boxed_unsync()
}

/// A response's `Content-Encoding`, set aside while the response passes the decoder.
#[derive(Clone)]
struct SetAside(http::HeaderValue);

/// The client, setting aside the `Content-Encoding` of responses that have no body by
/// definition (to `HEAD`, or `204 No Content`, `304 Not Modified`), so that the decoder
/// does not try to decode nothing; [`restore_encoding`] puts it back.
#[derive(Clone)]
pub(crate) struct NoBodyUndecoded<S>(pub(crate) S);

impl<S, B> tower_service::Service<http::Request<B>> for NoBodyUndecoded<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<hyper::body::Incoming>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let head = request.method() == http::Method::HEAD;
        let sent = self.0.call(request);
        Box::pin(async move {
            let mut response = sent.await?;
            let status = response.status();
            let no_body = head
                || status == http::StatusCode::NO_CONTENT
                || status == http::StatusCode::NOT_MODIFIED;
            if no_body
                && let Some(coding) = response
                    .headers_mut()
                    .remove(http::header::CONTENT_ENCODING)
            {
                response.extensions_mut().insert(SetAside(coding));
            }
            Ok(response)
        })
    }
}

/// Puts back a `Content-Encoding` that [`NoBodyUndecoded`] set aside.
pub(crate) fn restore_encoding<B>(response: &mut http::Response<B>) {
    if let Some(SetAside(coding)) = response.extensions_mut().remove::<SetAside>() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_ENCODING, coding);
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    fn boxed<B>(body: B) -> Boxed
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        body.map_err(Into::into).boxed_unsync()
    }

    #[test]
    fn a_bounded_body_ends_where_its_body_does() {
        let some = BoundedBody::new(boxed(Full::new(Bytes::from_static(b"abc"))), 10);
        assert!(!some.is_end_stream());
        assert_eq!(some.size_hint().exact(), Some(3));
        let none = BoundedBody::new(boxed(Full::new(Bytes::new())), 10);
        assert!(none.is_end_stream());
    }

    #[tokio::test]
    async fn a_body_past_its_bound_is_an_error_naming_the_bound() {
        let body = BoundedBody::new(boxed(Full::new(Bytes::from_static(b"0123456789"))), 9);
        let err = body.collect().await.unwrap_err();
        assert_eq!(err.kind(), &K::BodyTooLarge { limit: 9 });
        let body = BoundedBody::new(boxed(Full::new(Bytes::from_static(b"0123456789"))), 10);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "0123456789");
    }

    #[tokio::test]
    async fn a_decoder_s_error_is_a_decode_error_that_keeps_its_text() {
        // What a decoder yields on a corrupt stream: an I/O error of kind `InvalidData`.
        let frames = futures_util::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"ok so far"))),
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "invalid gzip header",
            )),
        ]);
        let body = BoundedBody::new(boxed(StreamBody::new(frames)), 1024);
        let err = body.collect().await.unwrap_err();
        assert_eq!(err.kind(), &K::Decode);
        assert_eq!(
            err.to_string(),
            "cannot decode the response body: the compressed body is corrupt: invalid gzip header"
        );
        let source = std::error::Error::source(&err).expect("the decoder's error");
        assert_eq!(source.to_string(), "invalid gzip header");
    }
}
