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

#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench;
pub mod check;
mod exchange;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
mod host;
pub mod load;
mod net;
mod proxied;
mod proxy_url;
mod redact;
pub mod schema;
mod settings;

pub use bytes::Bytes;
pub use exchange::{ExchangeId, ExchangeIdError};
pub use host::Host;
/// The `http` crate this one speaks (methods, headers, status codes, versions).
pub use http;
pub use load::{LoadError, Loader};
pub use net::dial::Dialer;
pub use net::error::{Phase, ProxyError, ProxyErrorKind, Refusal};
pub use net::http::{DEFAULT_MAX_BODY_BYTES, HttpClient, ProxyConnector, RequestBuilder, Response};
pub use net::stream::ProxyStream;
pub use net::system::{
    ProxyInjector, ProxyInjectorBuilder, init_proxy_system, init_proxy_system_with, proxy_injector,
    with_proxy_injector, with_proxy_injector_sync,
};
pub use net::target::{Resolve, Resolving, SystemResolver, Target};
pub use net::tls::{PemError, TlsRoots};
pub use net::ws::{WebSocket, WebSocketResponse};
pub use proxied::{Connectors, Proxied};
pub use proxy_url::{ProxyEndpoint, ProxyScheme, ProxyUrl, UrlError};
pub use redact::Password;
pub use schema::{Settings, SettingsField, SettingsKey, SettingsLeaf};
pub use settings::{
    ConnectionKind, ConnectionProxies, EmptyPool, ProxyConfig, ProxySettings, RouteEntry, Strategy,
    TimeoutError, TimeoutSeconds,
};
/// The tungstenite this one speaks (messages, `WebSocketConfig`, `IntoClientRequest`).
pub use tokio_tungstenite::tungstenite;

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

/// What generated code needs. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::proxied::Connectors;
    pub use crate::schema::{FieldKind, FieldSchema, Schema, SettingsField, SettingsOptions};

    /// A struct's schema, from its name, fields and `one_of` groups.
    pub fn schema(
        type_name: &'static str,
        fields: Vec<FieldSchema>,
        one_of: &'static [&'static [&'static str]],
    ) -> Schema {
        Schema::new(type_name, fields, one_of)
    }

    /// The connectors of `T`'s exchange, from the proxy system in force now.
    pub fn connectors<T: crate::Proxied + ?Sized>() -> Connectors<T> {
        Connectors::resolve()
    }

    /// Compiles only for proxied clients (checked by `#[proxied]` impl blocks).
    pub const fn assert_proxied<T: crate::Proxied + ?Sized>() {}
    pub use ::core::option::Option::{None, Some};
    pub use ::serde::Deserialize;
    pub use ::serde::de::DeserializeOwned;
    pub use ::std::vec;

    /// The schema of `T`, built by `build` on first use and kept for the life of the
    /// process (one small allocation per settings type).
    pub fn cached_schema<T: 'static>(build: fn() -> Schema) -> &'static Schema {
        use std::any::TypeId;
        use std::collections::HashMap;
        use std::sync::{OnceLock, PoisonError, RwLock};

        static CACHE: OnceLock<RwLock<HashMap<TypeId, &'static Schema>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let id = TypeId::of::<T>();
        if let Some(schema) = cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return schema;
        }
        let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
        cache
            .entry(id)
            .or_insert_with(|| Box::leak(Box::new(build())))
    }

    /// Shows a field's default value, for `proxy-check --vars`.
    pub fn show_default<T: SettingsField>(value: &T) -> String {
        value.show_default()
    }

    /// One field's schema. A field is required when it has no serde default and is not an
    /// `Option`.
    pub fn field<T: SettingsField>(
        name: &'static str,
        doc: &'static str,
        default: Option<fn() -> String>,
    ) -> FieldSchema {
        let kind = T::kind();
        let required = default.is_none() && !matches!(kind, FieldKind::Optional(_));
        FieldSchema::new(name, doc, kind, required, default)
    }
}
