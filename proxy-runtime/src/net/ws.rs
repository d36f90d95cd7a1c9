//! WebSocket connections (`ws://`, `wss://`) over the dialer, through tokio-tungstenite.

use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;

use super::dial::Dialer;
use super::error::{Phase, ProxyError, ProxyErrorKind as K};
use super::stream::ProxyStream;
use super::target::Target;

/// A WebSocket stream: read it as a `Stream` of messages and write it as a `Sink`
/// (`futures_util::{StreamExt, SinkExt}`), as with any tokio-tungstenite stream.
pub type WebSocket = WebSocketStream<ProxyStream>;

/// Opens a WebSocket to `url` through `dialer`. The route's timeout bounds everything up to
/// the end of the upgrade.
pub async fn connect_websocket(dialer: &Dialer, url: &str) -> Result<WebSocket, ProxyError> {
    let context =
        |e: ProxyError, target: Option<&str>| e.context(dialer.exchange(), dialer.proxy(), target);
    let parsed = url::Url::parse(url).map_err(|e| {
        context(
            ProxyError::new(K::InvalidTarget)
                .detail("not a URL")
                .source(e),
            None,
        )
    })?;
    let tls = match parsed.scheme() {
        "wss" => true,
        "ws" => false,
        _ => {
            return Err(context(
                ProxyError::new(K::InvalidTarget).detail("only ws:// and wss:// URLs"),
                None,
            ));
        }
    };
    let target = Target::from_url(&parsed).map_err(|e| context(e, None))?;
    let shown = target.to_string();
    let deadline = Instant::now() + dialer.timeout();
    let stream = dialer.connect_by(&target, tls, deadline).await?;
    let upgrade = tokio_tungstenite::client_async(url, stream);
    match tokio::time::timeout_at(deadline, upgrade).await {
        Err(_) => Err(context(
            ProxyError::new(K::Timeout(Phase::WebSocketUpgrade)),
            Some(&shown),
        )),
        Ok(Err(e)) => Err(context(
            ProxyError::new(K::WebSocket).source(e),
            Some(&shown),
        )),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}
