//! Response bodies as users read them: decompressed (per the crate's features), bounded
//! after decompression, with errors typed. The bound stops an endless body and a
//! decompression bomb alike: once it is passed nothing more is read.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{LengthLimitError, Limited};

use crate::error::{Phase, ProxyError, ProxyErrorKind as K};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body boxed: a decoded one.
pub(crate) type Boxed = UnsyncBoxBody<Bytes, BoxError>;

/// A response body before its bound: as it came (no `Content-Encoding`, or none this
/// build decodes, or a response that has no body), passed through with no box and no
/// per-frame work; or decoded.
pub(crate) enum ResponseBody {
    /// As hyper gives it.
    Plain(hyper::body::Incoming),
    /// Decoded, boxed (the decoder's type depends on the coding).
    #[cfg_attr(
        not(any(
            feature = "gzip",
            feature = "deflate",
            feature = "brotli",
            feature = "zstd"
        )),
        allow(dead_code, reason = "made only by the decoders, and by tests")
    )]
    Boxed(Boxed),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Plain(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ResponseBody::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Plain(body) => body.is_end_stream(),
            ResponseBody::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Plain(body) => body.size_hint(),
            ResponseBody::Boxed(body) => body.size_hint(),
        }
    }
}

/// What this build asks for in `Accept-Encoding`: the codings it decodes, in
/// tower-http's order and spelling (the decoder is tower-http's). `None` when it decodes
/// none.
pub(crate) fn accept_encoding() -> Option<&'static http::HeaderValue> {
    static VALUE: std::sync::OnceLock<Option<http::HeaderValue>> = std::sync::OnceLock::new();
    VALUE
        .get_or_init(|| {
            let codings: Vec<&str> = [
                (cfg!(feature = "zstd"), "zstd"),
                (cfg!(feature = "gzip"), "gzip"),
                (cfg!(feature = "deflate"), "deflate"),
                (cfg!(feature = "brotli"), "br"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            (!codings.is_empty()).then(|| {
                http::HeaderValue::from_str(&codings.join(","))
                    .expect("coding names are valid header text")
            })
        })
        .as_ref()
}

/// The body of `response` as users read it: decoded when it has a body (a response to
/// `HEAD`, or a `204` or `304`, has none: its `Content-Encoding` describes a body that is
/// not there) and a `Content-Encoding` this build decodes, in which case the
/// `Content-Encoding` and `Content-Length` headers go (they describe the body no longer);
/// else as it came.
pub(crate) fn decoded(
    response: http::Response<hyper::body::Incoming>,
    head: bool,
) -> Result<http::Response<ResponseBody>, ProxyError> {
    let status = response.status();
    let no_body =
        head || status == http::StatusCode::NO_CONTENT || status == http::StatusCode::NOT_MODIFIED;
    if no_body
        || !response
            .headers()
            .contains_key(http::header::CONTENT_ENCODING)
    {
        return Ok(response.map(ResponseBody::Plain));
    }
    #[cfg(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    ))]
    return decoder::decode(response);
    // A build without decoders passes every body through, headers and all.
    #[cfg(not(any(
        feature = "gzip",
        feature = "deflate",
        feature = "brotli",
        feature = "zstd"
    )))]
    Ok(response.map(ResponseBody::Plain))
}

/// tower-http's decoder, over a response already received.
#[cfg(any(
    feature = "gzip",
    feature = "deflate",
    feature = "brotli",
    feature = "zstd"
))]
mod decoder {
    use std::task::{Context, Poll};

    use futures_util::FutureExt;
    use http_body_util::BodyExt;
    use tower_service::Service;

    use super::ResponseBody;
    use crate::error::{ProxyError, ProxyErrorKind as K};

    /// An encoded response through tower-http's decoder, which decodes the codings this
    /// build enables and passes any other through with its headers.
    pub(super) fn decode(
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<http::Response<ResponseBody>, ProxyError> {
        // The decoder is a service wrapping the one that answers: here, one that answers
        // with the response already received.
        let mut decoder = tower_http::decompression::Decompression::new(Received(Some(response)));
        // Ready at once, as the service it wraps is: no future is kept across an await
        // (the request's future stays small, and cheap to move).
        let decoded = decoder
            .call(http::Request::new(()))
            .now_or_never()
            .ok_or_else(|| {
                ProxyError::new(K::Http).detail("the decoder did not answer at once")
            })??;
        Ok(decoded.map(|body| ResponseBody::Boxed(body.boxed_unsync())))
    }

    /// A service that answers its one call with a response received before.
    struct Received(Option<http::Response<hyper::body::Incoming>>);

    impl Service<http::Request<()>> for Received {
        type Response = http::Response<hyper::body::Incoming>;
        type Error = ProxyError;
        type Future = std::future::Ready<Result<Self::Response, ProxyError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            // `decode` calls it once, having made it with the response.
            std::future::ready(self.0.take().ok_or_else(|| {
                ProxyError::new(K::Http).detail("the response was taken by an earlier call")
            }))
        }
    }
}

/// A body with its limit applied.
pub(crate) struct BoundedBody {
    inner: Limited<ResponseBody>,
    limit: u64,
}

impl BoundedBody {
    /// `body` (already decompressed, if it was compressed), limited to `limit` bytes.
    pub(crate) fn new(body: ResponseBody, limit: u64) -> Self {
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

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full, StreamBody};

    use super::*;

    fn boxed<B>(body: B) -> ResponseBody
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        ResponseBody::Boxed(body.map_err(Into::into).boxed_unsync())
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
