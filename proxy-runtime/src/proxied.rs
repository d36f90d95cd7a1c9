//! What `#[proxied]` clients are made of: the [`Proxied`] trait and the connectors held in
//! the hidden field the macro adds.
//!
//! Connectors are resolved from the proxy system in force when the client is built
//! ([`proxy_injector`]), once, and then used for every connection of
//! that client. Nothing here chooses a route itself.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::ProxyError;
use crate::http_client::client::HttpClient;
use crate::injector::global::proxy_injector;
use crate::model::key::ConnectionKind;
use crate::route::dialer::Dialer;
use crate::ws::{WebSocket, WebSocketResponse, client_request};

/// An exchange client made with `#[proxied(exchange = "...")]`: it knows its exchange and
/// gives the HTTP client and WebSocket connect of that exchange's routes.
///
/// Implemented by the macro; do not implement it by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a proxied client",
    label = "`#[proxied]` on this impl block needs `{Self}` to be a proxied client",
    note = "annotate the struct itself with `#[proxied(exchange = \"...\")]`, above its derives"
)]
pub trait Proxied {
    /// The exchange id whose routes the client uses.
    const EXCHANGE: &'static str;

    #[doc(hidden)]
    fn __connectors(&self) -> &Connectors<Self>;

    /// The exchange id.
    fn exchange(&self) -> &'static str {
        Self::EXCHANGE
    }

    /// The HTTP client of this exchange's HTTP route.
    fn http(&self) -> &HttpClient {
        self.__connectors().http()
    }

    /// Opens a WebSocket on this exchange's WebSocket route, as
    /// `tokio_tungstenite::connect_async` does: `request` is a URL or an `http::Request`
    /// with headers of your own; the upgrade response comes back beside the stream.
    fn websocket(
        &self,
        request: impl IntoClientRequest,
    ) -> impl Future<Output = Result<(WebSocket, WebSocketResponse), ProxyError>> + Send + 'static
    {
        self.websocket_with_config(request, None)
    }

    /// [`websocket`](Self::websocket) with tungstenite's frame and message size limits
    /// (its defaults with `None`).
    fn websocket_with_config(
        &self,
        request: impl IntoClientRequest,
        config: Option<WebSocketConfig>,
    ) -> impl Future<Output = Result<(WebSocket, WebSocketResponse), ProxyError>> + Send + 'static
    {
        let dialer = self.__connectors().websocket.clone();
        // Made now, so that the future borrows nothing.
        let request = client_request(request);
        async move { dialer.open_websocket(request, config, None).await }
    }
}

/// The connectors of one client: its exchange's HTTP client and WebSocket dialer, as
/// resolved when the client was built. `Debug` shows the routes, redacted.
///
/// The type names the client (`C`), so that the hidden field of one client type cannot
/// hold another's connectors: a `#[proxied] impl Spot` that builds a `Futures { .. }` (a
/// same-named type brought in with `use`) gives it `Connectors<Spot>`, which does not
/// compile, instead of routing the futures client through spot's routes.
pub struct Connectors<C: ?Sized> {
    exchange: &'static str,
    http: HttpClient,
    websocket: Dialer,
    client: PhantomData<fn() -> C>,
}

impl<C: Proxied + ?Sized> Connectors<C> {
    /// The connectors of `C`'s exchange from the proxy system in force now. Only generated
    /// code calls it (through `__private`): a client gets its connectors when it is built.
    pub(crate) fn resolve() -> Self {
        let exchange = C::EXCHANGE;
        let injector = proxy_injector();
        Self {
            exchange,
            http: injector.http_client(exchange),
            websocket: injector.dialer(exchange, ConnectionKind::Websocket),
            client: PhantomData,
        }
    }
}

impl<C: ?Sized> Connectors<C> {
    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The WebSocket dialer.
    pub fn websocket(&self) -> &Dialer {
        &self.websocket
    }
}

impl<C: ?Sized> Clone for Connectors<C> {
    fn clone(&self) -> Self {
        Self {
            exchange: self.exchange,
            http: self.http.clone(),
            websocket: self.websocket.clone(),
            client: PhantomData,
        }
    }
}

impl<C: ?Sized> fmt::Debug for Connectors<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectors")
            .field("exchange", &self.exchange)
            .field("http", &self.http.dialer().route())
            .field("websocket", &self.websocket.route())
            .finish()
    }
}

/// Clients compare equal whatever their routes: connectors are not part of a client's
/// value.
impl<C: ?Sized> PartialEq for Connectors<C> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<C: ?Sized> Eq for Connectors<C> {}
