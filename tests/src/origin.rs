//! A local "exchange": HTTPS and plain HTTP endpoints (hyper, HTTP/1.1 and, over TLS by
//! ALPN, HTTP/2) and WSS and plain WS endpoints (tungstenite). Each counts the connections
//! it accepted and records what it was sent, so tests can prove where traffic went and
//! that it arrived byte for byte.
//!
//! HTTP paths:
//! - anything not below: `200`, body [`body_for`] the path;
//! - `/status/NNN`: that status, with a short body;
//! - `/encoded/gzip`, `/encoded/deflate`, `/encoded/br`, `/encoded/zstd`: [`ENCODED_BODY`]
//!   compressed so, with its `Content-Encoding`;
//! - `/bomb/MIB`: MIB MiB of zeros, gzip-compressed (a few KiB on the wire);
//! - `/endless`: a body that never ends;
//! - `/stall-head`: never answers; `/stall-body`: the head and a first chunk, then nothing;
//! - `/headers`: `200`, with response headers `X-Mbx-Used-Weight-1m: 7` and `X-Origin: 1`;
//! - `/latin1`: `café crème` in ISO-8859-1, saying so in `Content-Type`;
//! - `/ratelimit/N`: `429 Too Many Requests` with `Retry-After: N`.
//!
//! WebSocket endpoints greet with [`WELCOME`], echo every text message as `echo: <text>`,
//! answer `big N` with a message of N bytes and `count N` with the messages `0` to `N-1`
//! then `done`, and choose the first subprotocol offered.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};

use crate::tls::TestCa;

/// The decoded body of every `/encoded/...` path.
pub const ENCODED_BODY: &str =
    "{\"symbol\":\"BTCUSDT\",\"bids\":[[\"97012.50\",\"0.5\"]],\"asks\":[[\"97013.10\",\"0.7\"]]}";

/// The first message the WebSocket endpoints send.
pub const WELCOME: &str = "welcome";

/// The body the HTTP endpoints answer for `path`.
pub fn body_for(path: &str) -> String {
    format!("hello from the origin: {path}")
}

/// A request as the origin received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Where the connection came from (a proxy's outgoing address, or the client's).
    pub peer: SocketAddr,
    /// The method.
    pub method: Method,
    /// The path and query.
    pub target: String,
    /// The authority of the request's target when it came with one: HTTP/2's
    /// `:authority` (HTTP/1.1 names it in `Host`, among the headers).
    pub authority: Option<String>,
    /// The HTTP version it came in.
    pub version: Version,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as it arrived.
    pub body: Bytes,
}

/// One listening endpoint: how many connections it accepted and what it was sent.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    resumed: Arc<Mutex<Vec<bool>>>,
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

    /// Every request received so far (HTTP: the whole request; WebSocket: the upgrade).
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The address each request received so far came from, in order (a proxy's
    /// outgoing address, or the client's).
    pub fn peers(&self) -> Vec<IpAddr> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.peer.ip())
            .collect()
    }

    /// For each TLS connection accepted, in order, whether its handshake resumed an
    /// earlier session.
    pub fn resumed(&self) -> Vec<bool> {
        self.resumed.lock().expect("lock").clone()
    }
}

/// The local exchange: four endpoints on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Origin {
    /// HTTPS REST (HTTP/1.1 or HTTP/2, by ALPN).
    pub https: Endpoint,
    /// Plain HTTP REST (HTTP/1.1, or HTTP/2 with prior knowledge).
    pub http: Endpoint,
    /// WSS stream.
    pub wss: Endpoint,
    /// Plain WS stream.
    pub ws: Endpoint,
}

impl Origin {
    /// Starts the four endpoints on `bind` (127.0.0.1 or ::1).
    pub async fn start_on(ca: &TestCa, bind: &str) -> Self {
        Self {
            https: serve(bind, Some(ca.clone()), Kind::Http(None)).await,
            http: serve(bind, None, Kind::Http(None)).await,
            wss: serve(bind, Some(ca.clone()), Kind::WebSocket).await,
            ws: serve(bind, None, Kind::WebSocket).await,
        }
    }

    /// Starts the four endpoints on 127.0.0.1.
    pub async fn start(ca: &TestCa) -> Self {
        Self::start_on(ca, "127.0.0.1").await
    }
}

/// Answers one HTTP request (for origins with an application of their own).
pub type Handler = Arc<dyn Fn(&Received) -> Response<Body> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    Http(Option<Handler>),
    WebSocket,
}

/// An HTTPS endpoint (HTTP/1.1 or HTTP/2) on 127.0.0.1 whose every request `handler`
/// answers.
pub async fn serve_https_with(ca: &TestCa, handler: Handler) -> Endpoint {
    serve("127.0.0.1", Some(ca.clone()), Kind::Http(Some(handler))).await
}

/// A plain HTTP endpoint (HTTP/1.1) on 127.0.0.1 whose every request `handler` answers
/// (for clients in other processes, which do not trust the test CA).
pub async fn serve_http_with(handler: Handler) -> Endpoint {
    serve("127.0.0.1", None, Kind::Http(Some(handler))).await
}

/// A plain HTTP endpoint (HTTP/1.1) on 127.0.0.1 that answers every request `200 ok`
/// and keeps nothing of it (its `received` stays empty): for tests that measure this
/// process's memory under many requests.
pub async fn serve_http_quiet() -> Endpoint {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind origin");
    let endpoint = Endpoint {
        addr: listener.local_addr().expect("origin address"),
        accepted: Arc::default(),
        received: Arc::default(),
        resumed: Arc::default(),
    };
    let accepted = endpoint.accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(full("ok")))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    endpoint
}

async fn serve(bind: &str, tls: Option<TestCa>, kind: Kind) -> Endpoint {
    let listener = TcpListener::bind((bind, 0)).await.expect("bind origin");
    let addr = listener.local_addr().expect("origin address");
    let endpoint = Endpoint {
        addr,
        accepted: Arc::default(),
        received: Arc::default(),
        resumed: Arc::default(),
    };
    let served = endpoint.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            served.accepted.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            let received = served.received.clone();
            let resumed = served.resumed.clone();
            let kind = kind.clone();
            tokio::spawn(async move {
                match tls {
                    Some(ca) => {
                        let acceptor = match kind {
                            Kind::Http(_) => ca.acceptor_h2(),
                            Kind::WebSocket => ca.acceptor(),
                        };
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let kind_of = stream.get_ref().1.handshake_kind();
                            resumed
                                .lock()
                                .expect("lock")
                                .push(kind_of == Some(rustls::HandshakeKind::Resumed));
                            handle(stream, kind, received, peer).await;
                        }
                    }
                    None => handle(tcp, kind, received, peer).await,
                }
            });
        }
    });
    endpoint
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    kind: Kind,
    received: Arc<Mutex<Vec<Received>>>,
    peer: SocketAddr,
) {
    match kind {
        Kind::Http(handler) => http(stream, received, handler, peer).await,
        Kind::WebSocket => websocket(stream, received, peer).await,
    }
}

/// A response body of the origin.
pub type Body = BoxBody<Bytes, Infallible>;

/// Serves HTTP/1.1 or HTTP/2 on one connection until the client closes it.
async fn http<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    received: Arc<Mutex<Vec<Received>>>,
    handler: Option<Handler>,
    peer: SocketAddr,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let received = received.clone();
        let handler = handler.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let target = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let request = Received {
                peer,
                method: parts.method.clone(),
                target,
                authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
                version: parts.version,
                headers: parts.headers.clone(),
                body,
            };
            received.lock().expect("lock").push(request.clone());
            let response = match handler {
                Some(handler) => handler(&request),
                None => answer(parts.uri.path()).await,
            };
            // The head of what a GET would get, without the body (HTTP/2 forbids one).
            Ok::<_, Infallible>(if parts.method == Method::HEAD {
                response.map(|_| full(Bytes::new()))
            } else {
                response
            })
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A whole response body.
pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

async fn answer(path: &str) -> Response<Body> {
    let mut response = Response::new(full(body_for(path)));
    if let Some(code) = path.strip_prefix("/status/") {
        let status = code
            .parse()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        *response.status_mut() = status;
        *response.body_mut() = full(format!("status {code} from the origin"));
    } else if let Some(coding) = path.strip_prefix("/encoded/") {
        *response.body_mut() = full(encode(coding, ENCODED_BODY.as_bytes()));
        response
            .headers_mut()
            .insert("content-encoding", coding.parse().expect("coding"));
    } else if let Some(code) = path.strip_prefix("/no-body-encoded/") {
        // 204 or 304 with `Content-Encoding: gzip`, as some servers send them.
        *response.status_mut() = code.parse().unwrap_or(StatusCode::NO_CONTENT);
        *response.body_mut() = full(Bytes::new());
        response
            .headers_mut()
            .insert("content-encoding", "gzip".parse().expect("gzip"));
    } else if let Some(mib) = path.strip_prefix("/bomb/") {
        let mib: usize = mib.parse().unwrap_or(1);
        *response.body_mut() = full(bomb(mib));
        response
            .headers_mut()
            .insert("content-encoding", "gzip".parse().expect("gzip"));
    } else if path == "/endless" {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let frames = futures_util::stream::repeat_with(move || {
            Ok::<_, Infallible>(Frame::data(chunk.clone()))
        });
        *response.body_mut() = BodyExt::boxed(StreamBody::new(frames));
    } else if let Some(ms) = path.strip_prefix("/delay-ms/") {
        tokio::time::sleep(std::time::Duration::from_millis(ms.parse().unwrap_or(0))).await;
    } else if path == "/stall-head" {
        std::future::pending::<()>().await;
    } else if path == "/stall-body" {
        let first = futures_util::stream::once(async {
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"first chunk")))
        });
        let never = futures_util::stream::pending();
        *response.body_mut() = BodyExt::boxed(StreamBody::new(first.chain(never)));
    } else if let Some(len) = path.strip_prefix("/error-then-stall/") {
        // A 500 whose body is `len` bytes and then never ends.
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        let first = Bytes::from(vec![b'e'; len.parse().unwrap_or(1)]);
        let first = futures_util::stream::once(async { Ok::<_, Infallible>(Frame::data(first)) });
        let never = futures_util::stream::pending();
        *response.body_mut() = BodyExt::boxed(StreamBody::new(first.chain(never)));
    } else if let Some(seconds) = path.strip_prefix("/ratelimit/") {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        *response.body_mut() = full("{\"code\":-1003,\"msg\":\"Too many requests\"}");
        response
            .headers_mut()
            .insert("retry-after", seconds.parse().expect("seconds"));
    } else if path == "/latin1" {
        *response.body_mut() = full(&b"caf\xe9 cr\xe8me"[..]);
        response.headers_mut().insert(
            "content-type",
            "text/plain; charset=ISO-8859-1".parse().expect("value"),
        );
    } else if path == "/utf8" {
        // UTF-8 text, no charset named.
        *response.body_mut() = full("café crème");
    } else if path == "/headers" {
        let headers = response.headers_mut();
        headers.insert("x-mbx-used-weight-1m", "7".parse().expect("value"));
        headers.insert("x-origin", "1".parse().expect("value"));
    }
    response
}

/// `body` compressed with `coding` (`gzip`, `deflate`, `br`, `zstd`).
pub fn encode(coding: &str, body: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).expect("gzip");
            e.finish().expect("gzip")
        }
        "deflate" => {
            // HTTP's "deflate" is the zlib format.
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).expect("deflate");
            e.finish().expect("deflate")
        }
        "br" => {
            let mut out = Vec::new();
            let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            e.write_all(body).expect("brotli");
            drop(e);
            out
        }
        "zstd" => zstd::encode_all(body, 3).expect("zstd"),
        other => panic!("unknown coding {other}"),
    }
}

/// `mib` MiB of zeros, gzip-compressed (made once per size).
fn bomb(mib: usize) -> Vec<u8> {
    type Made = Mutex<Vec<(usize, Vec<u8>)>>;
    static MADE: OnceLock<Made> = OnceLock::new();
    let made = MADE.get_or_init(Mutex::default);
    let mut made = made.lock().expect("lock");
    if let Some((_, bytes)) = made.iter().find(|(m, _)| *m == mib) {
        return bytes.clone();
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        e.write_all(&zeros).expect("gzip");
    }
    let bytes = e.finish().expect("gzip");
    made.push((mib, bytes.clone()));
    bytes
}

/// Greets, chooses the first subprotocol offered, then echoes.
#[allow(clippy::result_large_err)] // the error type of tungstenite's header callback
async fn websocket<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    received: Arc<Mutex<Vec<Received>>>,
    peer: SocketAddr,
) {
    let record = |request: &WsRequest, mut response: WsResponse| {
        received.lock().expect("lock").push(Received {
            peer,
            method: request.method().clone(),
            authority: request.uri().authority().map(|a| a.as_str().to_owned()),
            target: request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            version: request.version(),
            headers: request.headers().clone(),
            body: Bytes::new(),
        });
        let chosen = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|p| p.trim().to_owned());
        if let Some(protocol) = chosen
            && let Ok(value) = protocol.parse()
        {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
        return;
    };
    if ws.send(Message::text(WELCOME)).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        let reply = match msg {
            Message::Text(t) if t.as_str().starts_with("count ") => {
                let n: usize = t.as_str()["count ".len()..].parse().unwrap_or(0);
                for i in 0..n {
                    if ws.feed(Message::text(i.to_string())).await.is_err() {
                        return;
                    }
                }
                Message::text("done")
            }
            Message::Text(t) => match t.as_str().strip_prefix("big ") {
                Some(n) => Message::text("x".repeat(n.parse().unwrap_or(0))),
                None => Message::text(format!("echo: {t}")),
            },
            Message::Close(_) => return,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// Waits (a little) for a condition that a server task makes true after the client is
/// done.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}
