//! WebSocket connections (`ws://`, `wss://`) over the dialer, through tokio-tungstenite,
//! with its request and configuration types.
//!
//! The request's URI is the one parser of the URL: the target dialed is the host and port
//! it names, the same that tungstenite writes in the request line. A URI with user
//! information (which RFC 6455 does not allow, and which tungstenite and `http` read
//! differently) or a request tungstenite cannot send is refused before anything is dialed.

use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::model::key::ConnectionKind;
use crate::route::dialer::Dialer;
use crate::route::stream::ProxyStream;
use crate::transport::dial::Alpn;
use crate::transport::target::Target;
use crate::transport::trace::Trace;

pub(crate) mod session;

/// A WebSocket stream: read it as a `Stream` of messages and write it as a `Sink`
/// (`futures_util::{StreamExt, SinkExt}`), as with any tokio-tungstenite stream.
pub type WebSocket = WebSocketStream<ProxyStream>;

/// The server's answer to the upgrade: its status, headers (the chosen
/// `Sec-WebSocket-Protocol` among them) and body, as tokio-tungstenite gives it.
pub type WebSocketResponse = Response;

impl Dialer {
    /// Opens a WebSocket through this route, as `tokio_tungstenite::connect_async` does:
    /// `request` is a URL (`&str`, `String`) or an `http::Request` with headers of your own
    /// (`Sec-WebSocket-Protocol`, auth); the upgrade response comes back beside the stream.
    /// The route's timeout bounds everything up to the end of the upgrade.
    pub async fn connect_websocket(
        &self,
        request: impl IntoClientRequest,
    ) -> Result<(WebSocket, Response), ProxyError> {
        self.connect_websocket_with_config(request, None).await
    }

    /// [`connect_websocket`](Self::connect_websocket) with tungstenite's frame and message
    /// size limits and buffer sizes (its defaults with `None`).
    pub async fn connect_websocket_with_config(
        &self,
        request: impl IntoClientRequest,
        config: Option<WebSocketConfig>,
    ) -> Result<(WebSocket, Response), ProxyError> {
        self.websocket_traced(request, config, None).await
    }

    /// [`connect_websocket_with_config`](Self::connect_websocket_with_config), tracing
    /// the phases (for `proxy-check --probe`).
    pub(crate) async fn websocket_traced(
        &self,
        request: impl IntoClientRequest,
        config: Option<WebSocketConfig>,
        trace: Option<&Trace>,
    ) -> Result<(WebSocket, Response), ProxyError> {
        self.open_websocket(client_request(request), config, trace)
            .await
    }

    /// Opens a WebSocket for `request` (made by [`client_request`], an error naming this
    /// route when it could not be made).
    pub(crate) async fn open_websocket(
        &self,
        request: Result<Request, ProxyError>,
        config: Option<WebSocketConfig>,
        trace: Option<&Trace>,
    ) -> Result<(WebSocket, Response), ProxyError> {
        // The route in force now, for the whole connection.
        let route = self.now();
        let mut shown = None;
        let result = async {
            let request = request?;
            let (target, tls) = target_of(&request)?;
            check_config(config.as_ref())?;
            shown = Some(target.to_string());
            let mut deadline = Instant::now() + route.timeout();
            let alpn = tls.then_some(Alpn::Http1);
            let mut stream = route
                .connect_by(&target, alpn, &mut deadline, trace)
                .await?;
            if let Some(trace) = trace {
                trace.enter(Phase::WebSocketUpgrade);
            }
            // The attempt holds its budget place until the upgrade, what the exchange
            // counts, is over.
            let _place = stream.take_place();
            let upgrade = tokio_tungstenite::client_async_with_config(request, stream, config);
            match tokio::time::timeout_at(deadline, upgrade).await {
                Err(_) => Err(ProxyError::new(K::Timeout(Phase::WebSocketUpgrade))),
                Ok(Err(e)) => Err(ProxyError::new(K::WebSocket).source(e)),
                Ok(Ok(connected)) => Ok(connected),
            }
        }
        .await;
        result.map_err(|e| route.attach(e, shown.as_deref()))
    }
}

/// The request `request` stands for (a URL, or an `http::Request`), as tungstenite makes
/// it; the one place a request that is not one becomes an error.
pub(crate) fn client_request(request: impl IntoClientRequest) -> Result<Request, ProxyError> {
    request.into_client_request().map_err(|e| {
        ProxyError::new(K::InvalidTarget)
            .detail("not a WebSocket request")
            .source(e)
    })
}

/// Refuses a configuration tungstenite would reject: it asserts (panics) once the tunnel
/// and TLS are up, where the caller cannot catch it.
fn check_config(config: Option<&WebSocketConfig>) -> Result<(), ProxyError> {
    match config {
        Some(c) if c.max_write_buffer_size <= c.write_buffer_size => {
            Err(ProxyError::new(K::InvalidRequest).detail(format!(
                "WebSocketConfig: max_write_buffer_size ({}) must be greater than write_buffer_size ({})",
                c.max_write_buffer_size, c.write_buffer_size
            )))
        }
        _ => Ok(()),
    }
}

/// The target of a WebSocket request, and whether it takes TLS; refuses what cannot be
/// sent, before anything is dialed.
fn target_of(request: &Request) -> Result<(Target, bool), ProxyError> {
    let (target, tls) = Target::of_url(request.uri(), ConnectionKind::Websocket)?;
    // What tungstenite will write, checked now: a missing header fails here, not after the
    // tunnel and TLS are up.
    tokio_tungstenite::tungstenite::handshake::client::generate_request(request.clone()).map_err(
        |e| {
            ProxyError::new(K::InvalidTarget)
                .detail("the WebSocket request cannot be sent")
                .source(e)
        },
    )?;
    Ok((target, tls))
}
