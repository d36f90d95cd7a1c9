//! The proxy system: [`ProxyInjector`] hands out dialers, HTTP clients and WebSockets per
//! exchange from one set of settings; [`global`] decides which injector is in force.
//!
//! Fail closed: an injector whose settings could not be loaded fails every connection
//! with the load error; it never connects direct.

pub(crate) mod global;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::{ProxyError, ProxyErrorKind as K};
use crate::http_client::client::{HttpClient, HttpOptions};
use crate::http_client::connector::ProxyConnector;
use crate::model::exchange::ExchangeId;
use crate::model::hosts::{HostIndex, url_form};
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::proxy_settings::ProxySettings;
use crate::model::proxy_url::ProxyUrl;
use crate::model::route::ProxyConfig;
use crate::redact;
use crate::route::dialer::Dialer;
use crate::route::shared::Store;
use crate::settings::load::LoadError;
use crate::transport::target::{Resolve, SystemResolver};
use crate::transport::tls::{TlsBase, TlsRoots};
use crate::ws::session::WebSocketSessionBuilder;
use crate::ws::{WebSocket, WebSocketResponse};

/// Opens every connection of every exchange according to one set of settings.
///
/// Dialers (and their TLS session caches) and HTTP clients (and their pools) are made once
/// per exchange and kind and kept, so that a route's connections are reused and a TLS
/// resumption ticket is only ever presented on the route that got it.
///
/// ```
/// use proxy_runtime::{ConnectionKind, ProxyInjector, ProxySettings};
/// let settings = ProxySettings::loader()
///     .env_vars([
///         ("CRYPTOFEED_PROXY_ENABLED", "true"),
///         ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", "http://binance-proxy:8080"),
///     ])
///     .load()?;
/// let injector = ProxyInjector::new(settings);
/// let binance = injector.http_proxy_url("binance").expect("settings loaded");
/// assert_eq!(binance.unwrap().to_string(), "http://binance-proxy:8080");
/// assert!(injector.http_proxy_url("coinbase").expect("settings loaded").is_none());
/// assert_eq!(injector.dialer("binance", ConnectionKind::Http).proxy(), Some("http://binance-proxy:8080"));
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
pub struct ProxyInjector {
    settings: Result<ProxySettings, ProxyError>,
    /// Which exchange claims each target host, by the settings' `hosts`.
    hosts: HostIndex,
    resolver: Arc<dyn Resolve>,
    tls: Result<TlsBase, ProxyError>,
    http: HttpOptions,
    dialers: Mutex<HashMap<(RouteKey, ConnectionKind), Dialer>>,
    http_clients: Mutex<HashMap<RouteKey, HttpClient>>,
    /// The store exit state is shared through, when the settings name one.
    store: Option<Arc<Store>>,
    /// Called after a route is handed out for the first time (the environment's injector
    /// checks whether settings were installed meanwhile).
    on_new_route: Option<fn()>,
}

impl std::fmt::Debug for ProxyInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyInjector")
            .field("settings", &self.settings)
            .field("resolver", &self.resolver)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ProxyInjector`] with extra TLS roots, another resolver, or other HTTP client
/// options.
#[derive(Debug)]
pub struct ProxyInjectorBuilder {
    settings: Result<ProxySettings, ProxyError>,
    roots: TlsRoots,
    resolver: Arc<dyn Resolve>,
    http: HttpOptions,
}

impl ProxyInjectorBuilder {
    /// Which certificate authorities TLS trusts (targets and `https://` proxies).
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self
    }

    /// How host names are resolved, where the scheme says they are resolved locally.
    pub fn resolver(mut self, resolver: impl Resolve + 'static) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// A deadline for every HTTP request (connecting, sending, the response head and the
    /// body together), unless the request sets its own with
    /// [`RequestBuilder::timeout`](crate::RequestBuilder::timeout). None by default: the
    /// route's `timeout_seconds` still bounds establishing a connection.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http.timeout = Some(timeout);
        self
    }

    /// The largest response body read, counted after decompression (64 MiB by default).
    /// Past it, reading fails with [`ProxyErrorKind::BodyTooLarge`](crate::ProxyErrorKind::BodyTooLarge)
    /// and nothing more is read.
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.http.max_body_bytes = limit;
        self
    }

    /// Offers only HTTP/1.1 to `https://` targets (by default ALPN offers `h2` too, and the
    /// server chooses).
    pub fn http1_only(mut self) -> Self {
        self.http.http2 = false;
        self
    }

    /// The injector. Settings that configure routes while proxies are disabled, or enable
    /// proxies with no route at all, are logged once, at warn level: every connection of
    /// theirs goes direct.
    pub fn build(self) -> ProxyInjector {
        if let Some(warning) = self
            .settings
            .as_ref()
            .ok()
            .and_then(|s| s.inert_warning("enabled"))
        {
            tracing::warn!("{warning}");
        }
        let http2 = self.http.http2;
        let tls = self
            .roots
            .client_config()
            .map(|c| TlsBase::new(c, http2))
            .map_err(|e| {
                ProxyError::new(K::Tls)
                    .detail("cannot configure TLS")
                    .source(e)
            });
        let hosts = self
            .settings
            .as_ref()
            .map(ProxySettings::host_index)
            .unwrap_or_default();
        let store = self
            .settings
            .as_ref()
            .ok()
            .and_then(|s| Store::new(s.shared()));
        ProxyInjector {
            store,
            hosts,
            settings: self.settings,
            resolver: self.resolver,
            tls,
            http: self.http,
            dialers: Mutex::new(HashMap::new()),
            http_clients: Mutex::new(HashMap::new()),
            on_new_route: None,
        }
    }
}

impl ProxyInjector {
    /// An injector for `settings`, trusting the public CAs, resolving with the system.
    pub fn new(settings: ProxySettings) -> Self {
        Self::builder(settings).build()
    }

    /// A builder, to add TLS roots, replace the resolver, or set HTTP client options.
    pub fn builder(settings: ProxySettings) -> ProxyInjectorBuilder {
        Self::builder_from(Ok(settings))
    }

    fn builder_from(settings: Result<ProxySettings, ProxyError>) -> ProxyInjectorBuilder {
        ProxyInjectorBuilder {
            settings,
            roots: TlsRoots::default(),
            resolver: Arc::new(SystemResolver),
            http: HttpOptions::default(),
        }
    }

    /// An injector whose every connection fails with `error` (settings that did not load).
    ///
    /// Public so that a program that loads its settings itself keeps the fail-closed rule
    /// that [`proxy_injector`](crate::proxy_injector) applies to the lazy load: a load error never becomes a
    /// direct connection.
    ///
    /// ```
    /// use proxy_runtime::{ProxyInjector, ProxySettings};
    /// let loaded = ProxySettings::loader()
    ///     .env_vars([("CRYPTOFEED_PROXY_ENABLE", "true")]) // a typo: the load fails
    ///     .load();
    /// let injector = match loaded {
    ///     Ok(settings) => ProxyInjector::new(settings),
    ///     Err(e) => ProxyInjector::failed(e),
    /// };
    /// assert!(injector.dialer("binance", proxy_runtime::ConnectionKind::Http).failure().is_some());
    /// ```
    pub fn failed(error: LoadError) -> Self {
        Self::builder_from(Err(ProxyError::settings(error))).build()
    }

    /// The settings, or the error that stops every connection.
    pub fn settings(&self) -> Result<&ProxySettings, &ProxyError> {
        self.settings.as_ref()
    }

    /// The proxy of `exchange`'s HTTP traffic: `Ok(None)` for direct, or the error every
    /// connection fails with when the settings could not be loaded (never "direct" then:
    /// fail closed). Named after cryptofeed's Python `get_http_proxy_url`; `Display` of the
    /// URL is redacted.
    pub fn http_proxy_url(&self, exchange: &str) -> Result<Option<&ProxyUrl>, &ProxyError> {
        let settings = self.settings.as_ref()?;
        Ok(settings
            .get_proxy(exchange, ConnectionKind::Http)
            .map(ProxyConfig::url))
    }

    /// The dialer of `exchange`'s traffic of `kind`.
    pub fn dialer(&self, exchange: &str, kind: ConnectionKind) -> Dialer {
        match route_key(exchange) {
            Ok(key) => self.cached_dialer(key, kind),
            Err(failing) => failing,
        }
    }

    /// The dialer that an exchange without an entry of its own gets for `kind`.
    pub fn default_dialer(&self, kind: ConnectionKind) -> Dialer {
        self.cached_dialer(RouteKey::Default, kind)
    }

    /// The dialer of `key`'s traffic of `kind`.
    pub(crate) fn dialer_for(&self, key: &RouteKey, kind: ConnectionKind) -> Dialer {
        self.cached_dialer(key.clone(), kind)
    }

    fn cached_dialer(&self, key: RouteKey, kind: ConnectionKind) -> Dialer {
        let (dialer, new) = {
            let mut dialers = self.dialers.lock().unwrap_or_else(PoisonError::into_inner);
            match dialers.entry((key.clone(), kind)) {
                Entry::Occupied(entry) => (entry.get().clone(), false),
                Entry::Vacant(entry) => (entry.insert(self.new_dialer(key, kind)).clone(), true),
            }
        };
        // After the lock: the hook may ask what was served.
        if let Some(hook) = self.on_new_route.filter(|_| new) {
            hook();
        }
        dialer
    }

    /// The same injector, calling `hook` after it hands out a route for the first time.
    pub(crate) fn on_new_route(mut self, hook: fn()) -> Self {
        self.on_new_route = Some(hook);
        self
    }

    fn new_dialer(&self, key: RouteKey, kind: ConnectionKind) -> Dialer {
        let exchange = key.exchange().map(|id| id.as_str().to_owned());
        let settings = match &self.settings {
            Ok(s) => s,
            Err(e) => return Dialer::failing(exchange, e.clone()),
        };
        let tls = match &self.tls {
            Ok(base) => base,
            Err(e) => return Dialer::failing(exchange, e.clone()),
        };
        let session = settings.session_for(&key);
        let budget = settings.budget_for(&key);
        let budget_key = key.clone();
        let dialer = match (settings.route_for(&key, kind), settings.system_proxies()) {
            (Some((_, route)), _) => {
                Dialer::new(key, kind, Some(route), self.resolver.clone(), tls)
            }
            // A route the settings leave unset, taken by the system's proxy variables.
            (None, Some(system)) => Dialer::system(key, kind, system, self.resolver.clone(), tls),
            (None, None) => Dialer::new(key, kind, None, self.resolver.clone(), tls),
        };
        match kind {
            ConnectionKind::Websocket => {
                dialer.with_session(session, &budget_key, self.store.as_ref())
            }
            ConnectionKind::Http => {
                dialer.with_http_budget(&budget, &budget_key, self.store.as_ref())
            }
        }
    }

    /// The HTTP client of `exchange`; every call for the same exchange shares one pool.
    pub fn http_client(&self, exchange: &str) -> HttpClient {
        match route_key(exchange) {
            Ok(key) => self.http_client_for(key),
            Err(failing) => HttpClient::with_options(failing, self.http),
        }
    }

    /// An HTTP client that chooses the route of each request by its URL's host: the routes
    /// of the exchange whose `hosts` claim the host (an exact name first, then the longest
    /// `*.suffix`), or the default route when no exchange claims it. For generic clients
    /// that know only the URL. It shares each exchange's connection pool with
    /// [`http_client`](Self::http_client) of that exchange, so connections never cross
    /// routes.
    ///
    /// ```
    /// use proxy_runtime::{ProxyInjector, ProxySettings};
    /// let settings = ProxySettings::loader()
    ///     .env_vars([
    ///         ("CRYPTOFEED_PROXY_ENABLED", "true"),
    ///         ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", "socks5h://binance-proxy:1080"),
    ///         ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HOSTS", r#"["api.binance.com", "*.binance.vision"]"#),
    ///     ])
    ///     .load()?;
    /// let client = ProxyInjector::new(settings).http_client_by_host();
    /// // `client.get("https://api.binance.com/api/v3/time")` goes through binance-proxy;
    /// // `client.get("https://api.kraken.com/0/public/Time")` takes the default route.
    /// # drop(client);
    /// # Ok::<(), proxy_runtime::LoadError>(())
    /// ```
    pub fn http_client_by_host(&self) -> HttpClient {
        let default = self.http_client_for(RouteKey::Default);
        let Ok(settings) = &self.settings else {
            // Every route fails with the load error: the default's says so.
            return default;
        };
        if self.hosts.is_empty() {
            return default;
        }
        let exchanges: Vec<(ExchangeId, HttpClient)> = settings
            .exchanges()
            .iter()
            .filter(|(_, proxies)| !proxies.hosts().is_empty())
            .map(|(id, _)| {
                let client = self.http_client_for(RouteKey::Exchange(id.clone()));
                (id.clone(), client)
            })
            .collect();
        HttpClient::by_host(&default, self.hosts.clone(), exchanges)
    }

    /// The route key of a target `host` (a URL's host), by the exchanges' `hosts`.
    fn key_for_host(&self, host: Option<&str>) -> RouteKey {
        host.and_then(url_form)
            .and_then(|host| self.hosts.exchange_for(&host).cloned())
            .map_or(RouteKey::Default, RouteKey::Exchange)
    }

    fn http_client_for(&self, key: RouteKey) -> HttpClient {
        let mut clients = self
            .http_clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(key)
            .or_insert_with_key(|key| {
                HttpClient::with_options(
                    self.cached_dialer(key.clone(), ConnectionKind::Http),
                    self.http,
                )
            })
            .clone()
    }

    /// The routes handed out so far (a dialer, or a client, of each), once each, in order.
    pub(crate) fn served(&self) -> Vec<RouteKey> {
        let dialers = self.dialers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<RouteKey> = dialers.keys().map(|(key, _)| key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The options of the HTTP clients this injector makes.
    pub(crate) fn http_options(&self) -> HttpOptions {
        self.http
    }

    /// `exchange`'s HTTP route as a `tower::Service<Uri>`, to put under a hyper-util
    /// client of your own (see [`ProxyConnector`]).
    pub fn connector(&self, exchange: &str) -> ProxyConnector {
        ProxyConnector::new(self.dialer(exchange, ConnectionKind::Http), self.http.http2)
    }

    /// Opens a WebSocket on `exchange`'s WebSocket route (see
    /// [`Dialer::connect_websocket`]).
    pub async fn connect_websocket(
        &self,
        exchange: &str,
        request: impl IntoClientRequest,
    ) -> Result<(WebSocket, WebSocketResponse), ProxyError> {
        self.dialer(exchange, ConnectionKind::Websocket)
            .connect_websocket(request)
            .await
    }

    /// A resilient WebSocket session on `exchange`'s WebSocket route (see
    /// [`Dialer::websocket_session`]).
    pub fn websocket_session(
        &self,
        exchange: &str,
        request: impl IntoClientRequest,
    ) -> WebSocketSessionBuilder {
        self.dialer(exchange, ConnectionKind::Websocket)
            .websocket_session(request)
    }

    /// Opens a WebSocket on the WebSocket route chosen by the request's host, as
    /// [`http_client_by_host`](Self::http_client_by_host) chooses: the exchange whose
    /// `hosts` claim it, or the default route.
    pub async fn connect_websocket_by_host(
        &self,
        request: impl IntoClientRequest,
    ) -> Result<(WebSocket, WebSocketResponse), ProxyError> {
        let request = crate::ws::client_request(request);
        let key = match &request {
            Ok(request) => self.key_for_host(request.uri().host()),
            Err(_) => RouteKey::Default,
        };
        self.dialer_for(&key, ConnectionKind::Websocket)
            .open_websocket(request, None, None)
            .await
    }
}

/// The key of `exchange`'s routes, the one place an exchange asked for by name is checked
/// (and lowercased): an id that is not one gets a dialer that fails every connection
/// (never the default's routes), kept nowhere, and named as a URL would be shown (a URL
/// passed for an exchange id keeps its password out of errors and logs).
fn route_key(exchange: &str) -> Result<RouteKey, Dialer> {
    ExchangeId::new(exchange)
        .map(RouteKey::Exchange)
        .map_err(|e| {
            let error = ProxyError::new(K::InvalidExchange).source(e);
            Dialer::failing(Some(redact::redact_url(exchange)), error)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(injector: &ProxyInjector) -> (usize, usize) {
        let dialers = injector.dialers.lock().unwrap().len();
        let clients = injector.http_clients.lock().unwrap().len();
        (dialers, clients)
    }

    #[test]
    fn only_valid_exchange_ids_are_kept_once_each_whatever_their_spelling() {
        let injector = ProxyInjector::new(ProxySettings::new(false));
        for n in 0..100 {
            let bad = format!("not-an-id-{n}");
            assert!(
                injector
                    .dialer(&bad, ConnectionKind::Http)
                    .failure()
                    .is_some()
            );
            let client = injector.http_client(&bad);
            assert!(client.dialer().failure().is_some());
            assert_eq!(
                client.dialer().exchange(),
                Some(bad.as_str()),
                "named as asked"
            );
        }
        assert_eq!(held(&injector), (0, 0), "nothing kept for invalid ids");
        // A URL passed for an id is named without its password.
        let url = injector.http_client("socks5://u:s3cret@h:1080");
        assert_eq!(url.dialer().exchange(), Some("socks5://***@h:1080"));
        for name in ["binance", "BINANCE", "Binance"] {
            injector.http_client(name);
            injector.dialer(name, ConnectionKind::Websocket);
        }
        injector.default_dialer(ConnectionKind::Http);
        // binance's HTTP and WebSocket dialers and its client, and the default's dialer.
        assert_eq!(held(&injector), (3, 1));
        let binance = RouteKey::Exchange(ExchangeId::new("binance").unwrap());
        assert_eq!(injector.served(), [RouteKey::Default, binance]);
    }

    #[test]
    fn a_target_host_is_looked_up_in_url_s_form() {
        let settings = ProxySettings::loader()
            .env_vars([(
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__HOSTS",
                r#"["127.0.0.1", "[::1]", "*.okx.com"]"#,
            )])
            .load()
            .unwrap();
        let injector = ProxyInjector::new(settings);
        let okx = RouteKey::Exchange(ExchangeId::new("okx").unwrap());
        for host in [
            "127.0.0.1",
            "127.1",
            "[0:0::1]",
            "WWW.OKX.com",
            "www.okx.com.",
        ] {
            assert_eq!(injector.key_for_host(Some(host)), okx, "{host}");
        }
        for host in [Some("okx.com"), Some("not a host"), None] {
            assert_eq!(injector.key_for_host(host), RouteKey::Default, "{host:?}");
        }
    }
}
