//! The connector of one route as a `tower::Service<Uri>`: what hyper-util's pooled client
//! (ours, or one of the user's own) calls to open a connection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::error::{Phase, ProxyError};
use crate::model::key::ConnectionKind;
use crate::route::dialer::Dialer;
use crate::route::pool::Lineage;
use crate::route::stream::ProxyStream;
use crate::transport::dial::Alpn;
use crate::transport::target::Target;
use crate::transport::trace::Trace;

tokio::task_local! {
    /// Where the request being sent traces the phases of the connection it opens (so that a
    /// request's deadline can name the phase it ran out in, and the probe can time them).
    pub(crate) static REQUEST_TRACE: Arc<Trace>;
}

/// Tells hyper-util whether TLS negotiated HTTP/2.
impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        let mut connected = Connected::new();
        if self.is_h2() {
            connected = connected.negotiated_h2();
        }
        // Every response of a connection through a pool of several members carries the
        // member (a route of one has no member to cool or connection to retire).
        if let Some(member) = self.member() {
            connected = connected.extra(member.clone());
        }
        if self.born_retired() {
            connected.poison();
        }
        connected
    }
}

/// Opens the connections of one route (one exchange's HTTP traffic) for hyper: a
/// `tower::Service<http::Uri>` whose responses are hyper-util connections.
///
/// Put it under your own hyper-util client to keep this library's guarantees (fail-closed
/// dialing, the DNS rule of each scheme, typed and redacted errors, the route's timeout)
/// while building requests yourself:
///
/// ```no_run
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = proxy_runtime::proxy_injector().connector("binance");
/// let client: Client<_, Empty<bytes::Bytes>> =
///     Client::builder(TokioExecutor::new()).build(connector);
/// let response = client.get("https://api.binance.com/api/v3/time".parse()?).await?;
/// # let _ = response; Ok(()) }
/// ```
///
/// For `https://` URIs TLS to the target offers ALPN `h2` and `http/1.1` (unless the
/// injector was built with HTTP/2 off), and the connection tells hyper which was chosen:
/// build your client with hyper-util's `http2` feature, or call [`http1_only`](Self::http1_only).
/// `http://` URIs are HTTP/1.1 (or HTTP/2 with prior knowledge, if your client asks for it).
#[derive(Clone)]
pub struct ProxyConnector {
    dialer: Dialer,
    alpn: Alpn,
    /// The record of the connection pool it connects for, when it is one of this
    /// crate's clients': every connection through a pool of several members joins it.
    lineage: Option<Arc<Lineage>>,
}

impl fmt::Debug for ProxyConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConnector")
            .field("dialer", &self.dialer)
            .field("alpn", &self.alpn)
            .finish_non_exhaustive()
    }
}

impl ProxyConnector {
    /// Connections through `dialer`, offering HTTP/2 to `https://` targets when `http2`.
    pub(crate) fn new(dialer: Dialer, http2: bool) -> Self {
        let alpn = if http2 { Alpn::Http } else { Alpn::Http1 };
        Self {
            dialer,
            alpn,
            lineage: None,
        }
    }

    /// The same connector, its connections recorded by `lineage` (the record of the
    /// connection pool it connects for).
    pub(crate) fn recorded_by(self, lineage: Arc<Lineage>) -> Self {
        Self {
            lineage: Some(lineage),
            ..self
        }
    }

    /// The same connector, offering only HTTP/1.1 to `https://` targets.
    pub fn http1_only(self) -> Self {
        Self {
            alpn: Alpn::Http1,
            ..self
        }
    }

    /// The route (dialer) it connects through.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }
}

impl tower_service::Service<http::Uri> for ProxyConnector {
    type Response = TokioIo<ProxyStream>;
    type Error = ProxyError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ProxyError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        // The route in force now, for the whole connection.
        let dialer = self.dialer.now();
        let alpn = self.alpn;
        let lineage = self.lineage.clone();
        // Taken now, while the request that needs this connection is being polled.
        let trace = REQUEST_TRACE.try_with(Arc::clone).ok();
        Box::pin(async move {
            let (target, tls) =
                Target::of_url(&uri, ConnectionKind::Http).map_err(|e| dialer.attach(e, None))?;
            let mut deadline = Instant::now() + dialer.timeout();
            let mut stream = dialer
                .connect_by(
                    &target,
                    tls.then_some(alpn),
                    &mut deadline,
                    trace.as_deref(),
                )
                .await?
                // An HTTP route has no connection budget; a place would end with the dial.
                .without_place();
            if let Some(lineage) = &lineage {
                stream.join(lineage);
            }
            if let Some(trace) = &trace {
                trace.enter(Phase::ResponseHead);
            }
            Ok(TokioIo::new(stream))
        })
    }
}
