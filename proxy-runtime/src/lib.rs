//! Route crypto-exchange clients through proxies chosen purely by settings.
//!
//! Settings come from environment variables (`CRYPTOFEED_PROXY_...`) and a YAML file, with
//! a default route and per-exchange overrides, and resolve to a proxy (HTTP CONNECT,
//! SOCKS4/4a/5/5h) or a direct connection for each exchange and connection kind.
//!
//! What is public, and why:
//! - the settings model, [`ProxySettings`], [`ConnectionProxies`], [`ProxyConfig`], with
//!   [`ProxySettings::get_proxy`] for resolution, and the validated values in it:
//!   [`ProxyUrl`] (with [`ProxyEndpoint`], [`ProxyScheme`], [`Host`], [`Password`]),
//!   [`ExchangeId`], [`TimeoutSeconds`];
//! - `#[proxied]` and the [`Proxied`] trait it implements: the way clients are written;
//! - [`ProxyInjector`] and the functions that install one ([`init_proxy_system`], ...):
//!   for programs that build connections without `#[proxied]`, and for tests;
//! - [`Dialer`], [`HttpClient`], [`WebSocket`], [`ProxyStream`], [`Target`], and the
//!   [`Resolve`] hook: one route's connections, for callers that need raw streams or
//!   their own resolver; and the one error type, [`ProxyError`];
//! - [`Loader`], `#[derive(Settings)]` and the [`schema`] and [`load`] modules: settings of
//!   your own with the same conventions, and the names and origins of every value;
//! - [`check`]: the report `proxy-check` prints, so that a program can print it too.
//!
//! What generated code needs and users do not is in `__private`, hidden and unstable.
//! See the README for the configuration reference.

extern crate self as proxy_runtime;

// The rooms, lowest first: each imports only those above it (pinned by
// `tests/layering.rs`). The README's Layout says what each owns.
#[doc(hidden)]
pub mod __private;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench;
pub mod check;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
mod http_client;
mod injector;
mod model;
mod proxied;
mod redact;
mod route;
mod settings;
mod transport;
mod ws;

pub use bytes::Bytes;
/// The `http` crate this one speaks (methods, headers, status codes, versions).
pub use http;
/// The tokio-tungstenite this one speaks: its `WebSocketStream` is [`WebSocket`]'s. With
/// another version of your own, take the routed stream from
/// [`Dialer::connect_url`](crate::Dialer::connect_url) instead.
pub use tokio_tungstenite;
/// The tungstenite this one speaks (messages, `WebSocketConfig`, `IntoClientRequest`).
pub use tokio_tungstenite::tungstenite;
/// The URL type of requests ([`Request::url`], [`Response::url`]).
pub use url::Url;

pub use error::{Phase, ProxyError, ProxyErrorKind, Refusal};
pub use http_client::builder::RequestBuilder;
pub use http_client::client::{DEFAULT_MAX_BODY_BYTES, HttpClient};
pub use http_client::connector::ProxyConnector;
pub use http_client::request::{Body, IntoMethod, IntoUrl, Request};
pub use http_client::response::Response;
pub use injector::global::{
    init_proxy_system, init_proxy_system_with, proxy_injector, with_proxy_injector,
    with_proxy_injector_sync,
};
pub use injector::{
    ProxyInjector, ProxyInjectorBuilder, ReloadError, ReloadReport, RouteChange, RouteChangeKind,
};
pub use model::exchange::{ExchangeId, ExchangeIdError};
pub use model::host::Host;
pub use model::hosts::{HostPattern, HostPatternError};
pub use model::http_budget::{HttpBudget, WeightHeader};
pub use model::key::{ConnectionKind, RouteEntry, RouteField, RouteKey};
pub use model::member::{MemberError, PoolMember};
pub use model::proxy_settings::{ConnectionProxies, ExchangeProxies, ProxySettings};
pub use model::proxy_url::{ProxyEndpoint, ProxyScheme, ProxyUrl, UrlError};
pub use model::reload::ReloadSettings;
pub use model::route::{EmptyPool, ProxyConfig, Strategy};
pub use model::session::{Millis, MillisError, SessionSettings};
pub use model::shared::{SharedSettings, SharedUrl};
pub use model::system::{SystemProxies, SystemProxy};
pub use model::timeout::{TimeoutError, TimeoutSeconds};
pub use proxied::{Connectors, Proxied};
pub use redact::Password;
pub use route::dialer::Dialer;
pub use route::stream::ProxyStream;
pub use settings::load::{LoadError, Loader};
pub use settings::schema::{Settings, SettingsField, SettingsKey, SettingsLeaf};
pub use settings::{load, schema};
pub use transport::target::{Resolve, Resolving, SystemResolver, Target};
pub use transport::tls::{NativeRootsError, PemError, TlsRoots};
pub use ws::session::{
    SessionEvent, SessionMessage, Subscriber, WebSocketSession, WebSocketSessionBuilder,
};
pub use ws::{WebSocket, WebSocketResponse};

/// Derives [`Settings`]: the struct's schema, so its field names become variable names and
/// YAML keys. See [`Settings`] for the container options.
pub use proxy_derive::Settings;

/// Makes a struct an exchange client whose connections follow the proxy settings.
///
/// - `#[proxied(exchange = "binance")]` on a struct with named fields adds one hidden field
///   (`__proxied`, the exchange's [`Connectors`]) and implements [`Proxied`], which gives
///   `self.http()` and `self.websocket(request)`.
/// - `#[proxied]` on an `impl` block of that struct (inherent or trait, like `Default`)
///   completes every `Self { .. }` and `TypeName { .. }` literal in its functions with that
///   field, resolved from the proxy system in force when the literal is evaluated
///   ([`proxy_injector`]). Literals with `..base` are left alone, and so are nested items
///   and the insides of macro invocations (`vec![Self { .. }]`).
///
/// Put `#[proxied(..)]` above the struct's derives: a derive listed before it sees the
/// struct without the hidden field.
///
/// ```
/// use proxy_runtime::{proxied, Proxied, ProxyError};
///
/// #[proxied(exchange = "binance")]
/// #[derive(Debug, Clone)]
/// pub struct Binance {
///     symbols: Vec<String>,
/// }
///
/// #[proxied]
/// impl Binance {
///     pub fn new(symbols: Vec<String>) -> Self {
///         Self { symbols }
///     }
///
///     pub async fn depth(&self) -> Result<proxy_runtime::Bytes, ProxyError> {
///         self.http()
///             .get("https://api.binance.com/api/v3/depth?symbol=BTCUSDT")
///             .send()
///             .await?
///             .bytes()
///             .await
///     }
/// }
///
/// proxy_runtime::init_proxy_system(proxy_runtime::ProxySettings::new(false));
/// let client = Binance::new(vec!["BTCUSDT".into()]);
/// assert_eq!(client.exchange(), "binance");
/// assert!(format!("{client:?}").contains("http: \"direct\""));
/// ```
pub use proxy_derive::proxied;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
