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

impl Dialer {
    /// Opens a WebSocket to `url` through this route. The route's timeout bounds
    /// everything up to the end of the upgrade.
    pub async fn connect_websocket(&self, url: &str) -> Result<WebSocket, ProxyError> {
        let mut shown = None;
        let result = async {
            let parsed = url::Url::parse(url).map_err(|e| {
                ProxyError::new(K::InvalidTarget)
                    .detail("not a URL")
                    .source(e)
            })?;
            let tls = match parsed.scheme() {
                "wss" => true,
                "ws" => false,
                _ => {
                    return Err(
                        ProxyError::new(K::InvalidTarget).detail("only ws:// and wss:// URLs")
                    );
                }
            };
            let target = Target::from_url(&parsed)?;
            shown = Some(target.to_string());
            let deadline = Instant::now() + self.timeout();
            let stream = self.connect_by(&target, tls, deadline).await?;
            let upgrade = tokio_tungstenite::client_async(url, stream);
            match tokio::time::timeout_at(deadline, upgrade).await {
                Err(_) => Err(ProxyError::new(K::Timeout(Phase::WebSocketUpgrade))),
                Ok(Err(e)) => Err(ProxyError::new(K::WebSocket).source(e)),
                Ok(Ok((ws, _response))) => Ok(ws),
            }
        }
        .await;
        result.map_err(|e| self.attach(e, shown.as_deref()))
    }
}
