//! What `#[proxied]` clients are made of: the [`Proxied`] trait and the connectors held in
//! the hidden field the macro adds.
//!
//! Connectors are resolved from the proxy system in force when the client is built
//! ([`proxy_injector`]), once, and then used for every connection of
//! that client. Nothing here chooses a route itself.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{ProxyError, ProxyErrorKind as K};
use crate::http_client::client::HttpClient;
use crate::injector::global::proxy_injector;
use crate::model::key::ConnectionKind;
use crate::route::dialer::Dialer;
use crate::ws::session::WebSocketSessionBuilder;
use crate::ws::{WebSocket, WebSocketResponse, client_request};

/// An exchange client made with `#[proxied(...)]`: it knows its exchange and gives the
/// HTTP client and WebSocket connect of that exchange's routes.
///
/// The exchange is fixed when the client is built, by the form the struct was annotated
/// with: a literal (`exchange = "binance"`, checked at compile time), an expression
/// (`exchange = VENUE`, evaluated in each constructor), or a field
/// (`exchange_field = venue`, its value as the constructor set it). An id that is not a
/// valid exchange id gives a client whose every connection fails with
/// [`InvalidExchange`](crate::ProxyErrorKind::InvalidExchange): never another route.
///
/// Implemented by the macro; do not implement it by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a proxied client",
    label = "`#[proxied]` on this impl block needs `{Self}` to be a proxied client",
    note = "annotate the struct itself with `#[proxied(exchange = \"...\")]`, above its derives"
)]
pub trait Proxied {
    #[doc(hidden)]
    fn __connectors(&self) -> &Connectors<Self>;

    #[doc(hidden)]
    fn __connectors_mut(&mut self) -> &mut Connectors<Self>;

    /// The connectors of the exchange `client` names (generated per annotation form).
    #[doc(hidden)]
    fn __resolve(client: &Self) -> Connectors<Self>;

    /// The exchange id whose routes the client uses (as given, when it is not a valid
    /// id; a URL given by mistake shows no password).
    fn exchange(&self) -> &str {
        self.__connectors().exchange()
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
        let dialer = self.__connectors().websocket().clone();
        // Made now, so that the future borrows nothing.
        let request = client_request(request);
        async move { dialer.open_websocket(request, config, None).await }
    }

    /// A resilient WebSocket session on this exchange's WebSocket route: a stream that
    /// keeps itself alive, reconnects through the route and runs `on_connect` after every
    /// connection (see [`WebSocketSession`](crate::WebSocketSession)).
    ///
    /// ```no_run
    /// # use proxy_runtime::{proxied, Proxied};
    /// # #[proxied(exchange = "binance")]
    /// # struct Binance { testnet: bool }
    /// # #[proxied]
    /// # impl Binance { fn new() -> Self { Binance { testnet: false } } }
    /// # async fn demo() -> Result<(), proxy_runtime::ProxyError> {
    /// use futures_util::StreamExt;
    /// use proxy_runtime::tungstenite::Message;
    /// let trades = Binance::new()
    ///     .websocket_session("wss://stream.binance.com:9443/ws")
    ///     .on_connect(|subscriber| async move {
    ///         let subscribe = r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#;
    ///         subscriber.send(Message::text(subscribe)).await
    ///     })
    ///     .open()
    ///     .await?;
    /// let mut trades = std::pin::pin!(trades);
    /// while let Some(item) = trades.next().await {
    ///     let received = item?; // an error only when the session gave up
    ///     println!("{:?} (connection {})", received.message, received.connection);
    /// }
    /// # Ok(()) }
    /// ```
    fn websocket_session(&self, request: impl IntoClientRequest) -> WebSocketSessionBuilder {
        self.__connectors().websocket().websocket_session(request)
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
    /// `None` only between a constructor's struct literal and its completion.
    resolved: Option<Resolved>,
    client: PhantomData<fn() -> C>,
}

#[derive(Clone)]
struct Resolved {
    exchange: Arc<str>,
    http: HttpClient,
    websocket: Dialer,
}

impl Resolved {
    fn new(exchange: &str) -> Self {
        let injector = proxy_injector();
        let http = injector.http_client(exchange);
        // A valid id is named in its lowercase form; anything else as the dialer shows it
        // (redacted).
        let dialer = http.dialer();
        let exchange = dialer.exchange().unwrap_or(exchange);
        Self {
            exchange: Arc::from(exchange),
            websocket: injector.dialer(exchange, ConnectionKind::Websocket),
            http,
        }
    }

    /// What a client built without its constructors' completion holds (only code that
    /// names the hidden items can build one): connectors that fail every connection.
    fn unresolved() -> &'static Self {
        static UNRESOLVED: OnceLock<Resolved> = OnceLock::new();
        UNRESOLVED.get_or_init(|| {
            let error = || {
                ProxyError::new(K::InvalidExchange).detail(
                    "the client was built outside a `#[proxied]` impl block, so it has no exchange",
                )
            };
            Self {
                exchange: Arc::from(""),
                http: HttpClient::new(Dialer::failing(None, error())),
                websocket: Dialer::failing(None, error()),
            }
        })
    }
}

impl<C: Proxied + ?Sized> Connectors<C> {
    /// The connectors of `exchange` from the proxy system in force now. Only generated
    /// code calls it (through `__private`): a client gets its connectors when it is built.
    pub(crate) fn resolve(exchange: &str) -> Self {
        Self {
            resolved: Some(Resolved::new(exchange)),
            client: PhantomData,
        }
    }

    /// The placeholder a constructor's struct literal holds until it is completed.
    pub(crate) fn pending() -> Self {
        Self {
            resolved: None,
            client: PhantomData,
        }
    }
}

impl<C: ?Sized> Connectors<C> {
    fn resolved(&self) -> &Resolved {
        self.resolved
            .as_ref()
            .unwrap_or_else(|| Resolved::unresolved())
    }

    /// The exchange id.
    pub fn exchange(&self) -> &str {
        &self.resolved().exchange
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.resolved().http
    }

    /// The WebSocket dialer.
    pub fn websocket(&self) -> &Dialer {
        &self.resolved().websocket
    }
}

impl<C: ?Sized> Clone for Connectors<C> {
    fn clone(&self) -> Self {
        Self {
            resolved: self.resolved.clone(),
            client: PhantomData,
        }
    }
}

impl<C: ?Sized> fmt::Debug for Connectors<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectors")
            .field("exchange", &self.exchange())
            .field("http", &self.http().dialer().route())
            .field("websocket", &self.websocket().route())
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

/// A field that can name a client's exchange (`#[proxied(exchange_field = ...)]`): any
/// `AsRef<str>`, such as `String`, `&'static str`, `Box<str>` or [`ExchangeId`](crate::ExchangeId).
#[diagnostic::on_unimplemented(
    message = "`exchange_field` names a field of type `{Self}`, which cannot name an exchange",
    label = "not `AsRef<str>`",
    note = "the field that names the exchange holds its id as text: a `String`, a `&'static str`, an `ExchangeId`, ..."
)]
pub trait ExchangeName {
    /// The exchange id as text.
    fn exchange_name(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> ExchangeName for T {
    fn exchange_name(&self) -> &str {
        self.as_ref()
    }
}
