//! The streams a connection is built of: what each layer must be ([`Io`]), and a stream
//! with bytes already read in front of it ([`Prefixed`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
        }
        write_through!(@rest $field);
    };
    // All but the writes themselves, for a stream that does something before each.
    (@rest $field:ident) => {
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.$field).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.$field).poll_shutdown(cx)
        }
        fn is_write_vectored(&self) -> bool {
            self.$field.is_write_vectored()
        }
    };
}
pub(crate) use write_through;

/// An established connection's stream, whatever it went through. A direct connection is
/// a concrete type (TCP, or TLS over TCP): reading and writing it dispatch nothing
/// dynamically. A connection through a proxy has layers that vary by the proxy's scheme
/// (TLS to the proxy, a tunnel with bytes read ahead, TLS to the target): boxed.
pub(crate) enum Conn {
    /// Direct, without TLS (`http://`, `ws://`).
    Tcp(tokio::net::TcpStream),
    /// Direct, with TLS to the target (`https://`, `wss://`); boxed, as its state is
    /// about a kilobyte.
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    /// Through a proxy.
    Layered(Box<dyn Io>),
}

/// `$body` with `$s` bound to the stream of whichever kind `$conn` is.
macro_rules! each {
    ($conn:expr, $s:ident => $body:expr) => {
        match $conn {
            Conn::Tcp($s) => $body,
            Conn::Tls($s) => $body,
            Conn::Layered($s) => $body,
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }
}

/// What a layer of a connection must be.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Io for T {}

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter, duplex};

    use super::*;

    /// A stream whose writes reach the other end only when flushed (a buffered writer),
    /// as TLS records that a full socket held back reach the peer only on a flush.
    fn buffered() -> (Conn, tokio::io::DuplexStream) {
        let (near, far) = duplex(1024);
        (Conn::Layered(Box::new(BufWriter::new(near))), far)
    }

    /// Exactly `n` bytes from `from`, within a generous time: a test whose bytes never
    /// come fails instead of hanging.
    async fn read_n<R: AsyncRead + Unpin>(from: &mut R, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        tokio::time::timeout(Duration::from_secs(10), from.read_exact(&mut got))
            .await
            .expect("the bytes arrive")
            .unwrap();
        got
    }

    #[tokio::test]
    async fn a_flush_reaches_the_stream_below() {
        let (mut conn, mut far) = buffered();
        conn.write_all(b"hello").await.unwrap();
        conn.flush().await.unwrap();
        assert_eq!(read_n(&mut far, 5).await, b"hello");
        // Reads come from the stream below too.
        far.write_all(b"back").await.unwrap();
        assert_eq!(read_n(&mut conn, 4).await, b"back");
    }

    #[tokio::test]
    async fn vectored_writes_reach_the_stream_below_whole() {
        let (mut conn, mut far) = buffered();
        let slices = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cde")];
        let n = conn.write_vectored(&slices).await.unwrap();
        assert_eq!(n, 5, "a buffered writer takes both slices at once");
        conn.flush().await.unwrap();
        assert_eq!(read_n(&mut far, 5).await, b"abcde");
    }

    #[tokio::test]
    async fn a_shutdown_flushes_and_ends_the_stream_below() {
        let (mut conn, mut far) = buffered();
        conn.write_all(b"bye").await.unwrap();
        conn.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), far.read_to_end(&mut got))
            .await
            .expect("the far end sees the end of the stream")
            .unwrap();
        assert_eq!(got, b"bye");
    }

    /// A stream that writes one slice at a time (the trait's default), and reads nothing.
    struct OneSlice;

    impl AsyncRead for OneSlice {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for OneSlice {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn vectored_writes_are_offered_as_the_stream_below_offers_them() {
        let single = Conn::Layered(Box::new(OneSlice));
        assert!(
            !single.is_write_vectored(),
            "a stream that writes one slice at a time"
        );
        let (buffered, _far) = buffered();
        assert!(buffered.is_write_vectored());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(Conn::Tcp(tcp).is_write_vectored());
    }
}
