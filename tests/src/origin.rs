//! A local "exchange": HTTPS and plain HTTP endpoints that answer every GET with a body
//! naming the path, and WSS and plain WS endpoints that greet and echo. Each counts the
//! connections it accepted, so tests can prove where traffic went.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::tls::TestCa;

/// One listening endpoint and how many connections it accepted.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Endpoint {
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// The local exchange: four endpoints on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Origin {
    /// HTTPS REST.
    pub https: Endpoint,
    /// Plain HTTP REST.
    pub http: Endpoint,
    /// WSS stream.
    pub wss: Endpoint,
    /// Plain WS stream.
    pub ws: Endpoint,
}

/// The body the HTTP endpoints answer for `path`.
pub fn body_for(path: &str) -> String {
    format!("hello from the origin: {path}")
}

/// The first message the WebSocket endpoints send.
pub const WELCOME: &str = "welcome";

impl Origin {
    /// Starts the four endpoints on `bind` (127.0.0.1 or ::1).
    pub async fn start_on(ca: &TestCa, bind: &str) -> Self {
        Self {
            https: serve(bind, Some(ca.clone()), Kind::Http).await,
            http: serve(bind, None, Kind::Http).await,
            wss: serve(bind, Some(ca.clone()), Kind::WebSocket).await,
            ws: serve(bind, None, Kind::WebSocket).await,
        }
    }

    /// Starts the four endpoints on 127.0.0.1.
    pub async fn start(ca: &TestCa) -> Self {
        Self::start_on(ca, "127.0.0.1").await
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Http,
    WebSocket,
}

async fn serve(bind: &str, tls: Option<TestCa>, kind: Kind) -> Endpoint {
    let listener = TcpListener::bind((bind, 0)).await.expect("bind origin");
    let addr = listener.local_addr().expect("origin address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(ca) => {
                        if let Ok(stream) = ca.acceptor().accept(tcp).await {
                            handle(stream, kind).await;
                        }
                    }
                    None => handle(tcp, kind).await,
                }
            });
        }
    });
    Endpoint { addr, accepted }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S, kind: Kind) {
    match kind {
        Kind::Http => http(stream).await,
        Kind::WebSocket => websocket(stream).await,
    }
}

/// Answers GET requests on one connection until the client closes it.
async fn http<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (status, body) = if path.starts_with("/status/404") {
            ("404 Not Found", "not here".to_owned())
        } else {
            ("200 OK", body_for(&path))
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Greets, then echoes every text message as `echo: <text>`.
async fn websocket<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    if ws.send(Message::text(WELCOME)).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(t) => Message::text(format!("echo: {t}")),
            Message::Close(_) => return,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}
