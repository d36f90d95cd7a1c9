//! The stream a route's dialer hands out, whatever proxies and TLS layers it went
//! through, with the member it went through.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::budget::Place;
use std::sync::Arc;

use super::pool::{Lineage, MemberTag, Retire, Through};
use crate::transport::io::{Conn, write_through};

/// An established connection to a target: TCP, through any proxy, with TLS when the
/// target's scheme asks for it. Read and write it like a `TcpStream`.
pub struct ProxyStream {
    inner: Conn,
    description: String,
    h2: bool,
    /// The pool member it went through, for a pool of several members (`None` for a
    /// route of one, whose member has nothing to learn from responses).
    member: Option<Through>,
    /// Its place in the exit's connection budget, until the attempt is over (a
    /// WebSocket's upgrade done).
    place: Option<Place>,
    /// What ends it for its reader when it is retired before it carried anything: only
    /// for a connection through a pool of several members, in one of this crate's HTTP
    /// connection pools.
    closer: Option<Arc<Retire>>,
}

impl ProxyStream {
    pub(crate) fn new(inner: Conn, description: String, h2: bool) -> Self {
        Self {
            inner,
            description,
            h2,
            member: None,
            place: None,
            closer: None,
        }
    }

    pub(crate) fn with_place(mut self, place: Option<Place>) -> Self {
        self.place = place;
        self
    }

    /// The stream with its budget place released: the attempt is over.
    pub(crate) fn without_place(mut self) -> Self {
        self.place = None;
        self
    }

    /// Its budget place, to release when the attempt is over.
    pub(crate) fn take_place(&mut self) -> Option<Place> {
        self.place.take()
    }

    pub(crate) fn with_member(mut self, member: Option<Through>) -> Self {
        self.member = member;
        self
    }

    /// The connection goes into the HTTP connection pool whose record is `lineage`
    /// (when it went through a pool of several members: others have nothing to retire).
    pub(crate) fn join(&mut self, lineage: &Arc<Lineage>) {
        if let Some(member) = &mut self.member {
            let closer = Arc::new(Retire::new());
            member.join(lineage, closer.clone());
            self.closer = Some(closer);
        }
    }

    /// Whether the connection was retired while it was being made (its member left the
    /// route in a reload) and is HTTP/1.1: hyper-util is to use it for the request it was
    /// made for, if any, and pool it no more. (An HTTP/2 connection is not poisoned at
    /// its birth: hyper-util hands it to every request waiting on its host, which would
    /// each fail on a poisoned one; the first request handed it retires it.)
    pub(crate) fn born_retired(&self) -> bool {
        !self.h2
            && self
                .closer
                .as_ref()
                .is_some_and(|c| c.born_retired.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The pool member the connection went through, for a pool of several members.
    pub(crate) fn member(&self) -> Option<&MemberTag> {
        self.member.as_ref().map(Through::tag)
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
        if self.closer.as_ref().is_some_and(|c| c.at_end(cx)) {
            // Retired before it carried anything: its end, as if the server closed it.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(closer) = &self.closer {
            closer.writing();
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(closer) = &self.closer {
            closer.writing();
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    write_through!(@rest inner);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn only_an_http1_connection_is_poisoned_from_its_birth() {
        for h2 in [false, true] {
            let (near, _far) = tokio::io::duplex(64);
            let mut stream = ProxyStream::new(Conn::Layered(Box::new(near)), String::new(), h2);
            assert!(!stream.born_retired(), "no record, nothing to retire");
            let closer = Arc::new(Retire::new());
            stream.closer = Some(closer.clone());
            assert!(!stream.born_retired());
            closer.born_retired.store(true, Ordering::Release);
            assert_eq!(stream.born_retired(), !h2, "h2: {h2}");
        }
    }
}
