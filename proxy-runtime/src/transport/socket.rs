//! The options of our sockets: Nagle off on every TCP connection (`TCP_NODELAY`, set where
//! it connects), and quick acknowledgements on the sockets to proxies ([`AckNow`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::io::write_through;

/// Turns Nagle's algorithm off: a request is sent when written, not when the previous
/// write is acknowledged. Best effort: a failure leaves the kernel's default.
pub(crate) fn no_delay(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
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
    tcp: TcpStream,
}

impl AckNow {
    pub(crate) fn new(tcp: TcpStream) -> Self {
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
