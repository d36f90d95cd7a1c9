//! HTTP CONNECT: asks the proxy for a tunnel to `host:port` and reads its reply.
//!
//! Credentials, if any, go in `Proxy-Authorization`, and the member's CONNECT headers after
//! them; nothing of the exchange's own requests is ever sent to the proxy. The reply head is read with a bound (16 KiB, 64 headers), and
//! bytes that arrive after it belong to the tunnel and are kept.

use base64::Engine as _;
use bytes::{BufMut as _, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{ProxyError, ProxyErrorKind as K, Refusal};
use crate::model::proxy_url::ProxyEndpoint;
use crate::transport::io::{Io, Prefixed};
use crate::transport::target::Target;

/// Longest CONNECT reply head accepted.
const MAX_REPLY_HEAD: usize = 16 * 1024;
/// Most headers accepted in a CONNECT reply.
const MAX_REPLY_HEADERS: usize = 64;

/// Opens a tunnel to `target` through the proxy at the other end of `io`.
pub(crate) async fn handshake(
    mut io: Box<dyn Io>,
    proxy: &ProxyEndpoint,
    target: &Target,
    headers: &[(http::HeaderName, http::HeaderValue)],
) -> Result<Box<dyn Io>, ProxyError> {
    // The request holds the Basic token while it is written. It is not wiped afterwards:
    // the password it encodes stays in the settings for the life of the process, so wiping
    // this one copy would not change what a memory dump shows.
    let request = request(proxy, target, headers);
    let written = async {
        io.write_all(&request).await?;
        io.flush().await
    }
    .await;
    written.map_err(|e| {
        ProxyError::new(K::Protocol)
            .detail("the proxy closed the connection before the CONNECT request was sent")
            .source(e)
    })?;
    read_reply(io, proxy.username().is_some()).await
}

/// `CONNECT host:port HTTP/1.1` with `Host:`, with credentials `Proxy-Authorization`, and
/// `headers` (checked when the member was made: names and values that cannot break the
/// request's framing).
fn request(
    proxy: &ProxyEndpoint,
    target: &Target,
    headers: &[(http::HeaderName, http::HeaderValue)],
) -> Vec<u8> {
    let authority = target.to_string();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(user) = proxy.username() {
        let password = proxy.password().map(|p| p.expose()).unwrap_or_default();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.extend_from_slice(b"Proxy-Authorization: Basic ");
        request.extend_from_slice(token.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// How every CONNECT reply starts.
const STATUS_START: &[u8] = b"HTTP/1.";

async fn read_reply(
    mut io: Box<dyn Io>,
    sent_credentials: bool,
) -> Result<Box<dyn Io>, ProxyError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        // At most 16 KiB is read before the head ends: a longer head is refused, and
        // bytes of the tunnel past a head stay in the socket until the tunnel reads them.
        let room = MAX_REPLY_HEAD - buf.len();
        if room == 0 {
            return Err(
                ProxyError::new(K::Protocol).detail("the CONNECT reply head is longer than 16 KiB")
            );
        }
        let n = io
            .read_buf(&mut (&mut buf).limit(room))
            .await
            .map_err(|e| {
                ProxyError::new(K::Protocol)
                    .detail("reading the CONNECT reply failed")
                    .source(e)
            })?;
        if n == 0 {
            return Err(ProxyError::new(K::Protocol)
                .detail("the proxy closed the connection before the end of its CONNECT reply"));
        }
        // httparse skips empty lines before a status line, as servers may before a request
        // line; a proxy's reply has no such allowance, and anything else is not a reply.
        let start = &buf[..buf.len().min(STATUS_START.len())];
        if !STATUS_START.starts_with(start) {
            return Err(ProxyError::new(K::Protocol)
                .detail("the CONNECT reply does not start with an HTTP/1 status line"));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_REPLY_HEADERS];
        let mut reply = httparse::Response::new(&mut headers);
        match reply.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = reply.code.unwrap_or_default();
                let reason = short_reason(reply.reason.unwrap_or_default());
                let rest = buf.split_off(head_len).freeze();
                return match status {
                    200..=299 => Ok(Box::new(Prefixed::new(rest, io))),
                    407 | 401 if sent_credentials => Err(ProxyError::new(K::AuthFailed)
                        .detail(format!("CONNECT answered {status} {reason}"))),
                    407 | 401 => Err(ProxyError::new(K::AuthRequired)
                        .detail(format!("CONNECT answered {status} {reason}"))),
                    status => Err(ProxyError::new(K::Refused(Refusal::Http {
                        status,
                        reason,
                    }))),
                };
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ProxyError::new(K::Protocol).detail(format!(
                    "the CONNECT reply has more than {MAX_REPLY_HEADERS} headers"
                )));
            }
            Err(e) => {
                return Err(
                    ProxyError::new(K::Protocol).detail(format!("malformed CONNECT reply ({e})"))
                );
            }
        }
    }
}

/// The start of a reason phrase, printable ASCII only.
fn short_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::proxy_url::ProxyUrl;

    fn request_through(url: &str, headers: &[(http::HeaderName, http::HeaderValue)]) -> String {
        let url: ProxyUrl = url.parse().unwrap();
        let target = Target::new("example.com", 443).unwrap();
        String::from_utf8(request(url.endpoint().unwrap(), &target, headers)).unwrap()
    }

    #[test]
    fn connect_headers_follow_the_credentials_each_on_its_line() {
        let headers = [
            (
                http::HeaderName::from_static("x-session"),
                http::HeaderValue::from_static("s1"),
            ),
            (
                http::HeaderName::from_static("x-country"),
                http::HeaderValue::from_static("de"),
            ),
        ];
        assert_eq!(
            request_through("http://u:p@proxy:3128", &headers),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic dTpw\r\nx-session: s1\r\nx-country: de\r\n\r\n"
        );
        assert_eq!(
            request_through("http://proxy:3128", &[]),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
    }
}
