//! The stream every connection ends up as, whatever proxies and TLS layers it went through.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::pool::MemberTag;

/// The methods of `AsyncWrite` for a wrapper whose writes all go to its field `$field`
/// unchanged (vectored writes included, so that a layer never splits what hyper gathers).
macro_rules! write_through {
    ($field:ident) => {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.$field).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.$field).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.$field).poll_shutdown(cx)
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
        }
        fn is_write_vectored(&self) -> bool {
            self.$field.is_write_vectored()
        }
    };
}

/// What a layer of a connection must be.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// An established connection to a target: TCP, through any proxy, with TLS when the
/// target's scheme asks for it. Read and write it like a `TcpStream`.
pub struct ProxyStream {
    inner: Box<dyn Io>,
    description: String,
    h2: bool,
    /// The pool member it went through, and the token alive as long as it is.
    member: Option<(MemberTag, Arc<()>)>,
}

impl ProxyStream {
    pub(crate) fn new(inner: impl Io + 'static, description: String, h2: bool) -> Self {
        Self {
            inner: Box::new(inner),
            description,
            h2,
            member: None,
        }
    }

    pub(crate) fn with_member(mut self, member: Option<(MemberTag, Arc<()>)>) -> Self {
        self.member = member;
        self
    }

    /// The pool member the connection went through.
    pub(crate) fn member(&self) -> Option<&MemberTag> {
        self.member.as_ref().map(|(tag, _)| tag)
    }

    /// Whether TLS to the target negotiated HTTP/2 (ALPN `h2`).
    pub fn is_h2(&self) -> bool {
        self.h2
    }

    /// How this connection was made, like `binance via socks5h://127.0.0.1:1080 to
    /// api.binance.com:443` (redacted).
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl fmt::Debug for ProxyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyStream")
            .field("description", &self.description)
            .field("h2", &self.h2)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    write_through!(inner);
}

/// A stream with bytes already read from it in front: what a proxy sent right after its
/// reply belongs to the tunnel and must not be lost.
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    write_through!(inner);
}

/// The TCP connection to a proxy, acknowledging what it receives at once.
///
/// Why: many proxies (microsocks and tinyproxy among them) leave Nagle's algorithm on for
/// the socket they relay to the client. Whenever the target sends several small writes
/// in a row (an HTTP/2 server's SETTINGS, its SETTINGS acknowledgement, session tickets
/// and a response head are four), the proxy sends the first and holds the rest until it
/// is acknowledged; and Linux, with nothing to send back, delays that acknowledgement by
/// its delayed-ACK timer, 40 ms. Measured: a new HTTP/2 connection with one GET took
/// 48 ms through microsocks and 92 ms through tinyproxy (one and two such waits; 5 ms
/// through dante and squid, which disable Nagle), and the system call trace of the proxy
/// showed the 44 ms gap between its writes to the client. We cannot change the proxy's
/// socket, but the acknowledgement is ours: after every read that returned data, the
/// socket is put back in quick-ACK mode (`TCP_QUICKACK`, which Linux clears again by
/// itself, hence after every read), which also sends an acknowledgement already waiting.
/// The cost is one `setsockopt` per read, on proxied connections only. Elsewhere than
/// Linux and Android it does nothing. `benches/` keeps the new-connection figures per proxy
/// as the regression benchmark.
///
/// What this cannot remove is the same wait on the proxy's other socket, to the target:
/// an HTTP/2 client acknowledges the server's SETTINGS (a frame the server never answers)
/// and then sends its request; the proxy relays the two as two writes, holds the second
/// until the target acknowledges the first, and the target's kernel delays that by 40 ms.
/// Traced (`perf` socket events) in about one new HTTP/2 connection in ten through
/// tinyproxy; HTTP/1.1 has no such unanswered write.
pub(crate) struct AckNow {
    tcp: tokio::net::TcpStream,
}

impl AckNow {
    pub(crate) fn new(tcp: tokio::net::TcpStream) -> Self {
        Self { tcp }
    }

    fn ack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // Best effort: a failure leaves the kernel's default, which is still correct.
            let _ = socket2::SockRef::from(&self.tcp).set_tcp_quickack(true);
        }
    }
}

impl AsyncRead for AckNow {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.ack();
        }
        polled
    }
}

impl AsyncWrite for AckNow {
    write_through!(tcp);
}
