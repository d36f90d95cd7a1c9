//! The proxy system in force: [`ProxyInjector`] hands out dialers, HTTP clients and
//! WebSockets per exchange from one set of settings; `init_proxy_system`,
//! `proxy_injector` and the scoped variants decide which injector is in force.
//!
//! Fail closed: an injector whose settings could not be loaded fails every connection
//! with the load error; it never connects direct.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use rustls::ClientConfig;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response as WsResponse;

use super::dial::Dialer;
use super::error::{ProxyError, ProxyErrorKind as K};
use super::http::{HttpClient, HttpOptions, ProxyConnector};
use super::target::{Resolve, SystemResolver};
use super::tls::{RouteTls, TlsRoots};
use super::ws::WebSocket;
use crate::{ConnectionKind, ExchangeId, LoadError, ProxyConfig, ProxySettings, ProxyUrl};

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
    resolver: Arc<dyn Resolve>,
    tls: Result<ClientConfig, ProxyError>,
    http: HttpOptions,
    dialers: Mutex<HashMap<(Option<String>, ConnectionKind), Dialer>>,
    http_clients: Mutex<HashMap<String, HttpClient>>,
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

    /// The injector. Settings that configure routes while proxies are disabled are logged
    /// once, at warn level: every connection of theirs goes direct.
    pub fn build(self) -> ProxyInjector {
        if let Ok(settings) = &self.settings
            && !settings.enabled()
            && settings.has_routes()
        {
            tracing::warn!(
                "proxy routes are configured but proxies are disabled (`enabled` is false): every connection goes direct"
            );
        }
        let tls = self.roots.client_config().map_err(|e| {
            ProxyError::new(K::Tls)
                .detail("cannot configure TLS")
                .source(e)
        });
        ProxyInjector {
            settings: self.settings,
            resolver: self.resolver,
            tls,
            http: self.http,
            dialers: Mutex::new(HashMap::new()),
            http_clients: Mutex::new(HashMap::new()),
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
    /// that [`proxy_injector`] applies to the lazy load: a load error never becomes a
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
        let label = exchange.to_ascii_lowercase();
        if let Err(e) = ExchangeId::new(exchange) {
            let error = ProxyError::new(K::InvalidExchange).source(e);
            return Dialer::failing(Some(label), error);
        }
        self.cached_dialer(Some(label), kind)
    }

    /// The dialer that an exchange without an entry of its own gets for `kind`.
    pub fn default_dialer(&self, kind: ConnectionKind) -> Dialer {
        self.cached_dialer(None, kind)
    }

    fn cached_dialer(&self, exchange: Option<String>, kind: ConnectionKind) -> Dialer {
        let mut dialers = self.dialers.lock().unwrap_or_else(PoisonError::into_inner);
        dialers
            .entry((exchange.clone(), kind))
            .or_insert_with(|| self.new_dialer(exchange, kind))
            .clone()
    }

    fn new_dialer(&self, exchange: Option<String>, kind: ConnectionKind) -> Dialer {
        let settings = match &self.settings {
            Ok(s) => s,
            Err(e) => return Dialer::failing(exchange, e.clone()),
        };
        let tls = match &self.tls {
            Ok(base) => RouteTls::new(base, self.http.http2),
            Err(e) => return Dialer::failing(exchange, e.clone()),
        };
        let route = match &exchange {
            Some(id) => settings.route(id, kind),
            None => settings.default_route(kind),
        };
        Dialer::new(exchange, kind, route, self.resolver.clone(), tls)
    }

    /// The HTTP client of `exchange`; every call for the same exchange shares one pool.
    pub fn http_client(&self, exchange: &str) -> HttpClient {
        let key = exchange.to_ascii_lowercase();
        let mut clients = self
            .http_clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(key)
            .or_insert_with(|| {
                HttpClient::with_options(self.dialer(exchange, ConnectionKind::Http), self.http)
            })
            .clone()
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
    ) -> Result<(WebSocket, WsResponse), ProxyError> {
        self.dialer(exchange, ConnectionKind::Websocket)
            .connect_websocket(request)
            .await
    }
}

static GLOBAL: RwLock<Option<Arc<ProxyInjector>>> = RwLock::new(None);
static FROM_ENV: OnceLock<Arc<ProxyInjector>> = OnceLock::new();

tokio::task_local! {
    static SCOPED: Arc<ProxyInjector>;
}

/// Installs `settings` for the whole process (replacing any earlier ones). Settings built
/// in code are used exactly as given.
pub fn init_proxy_system(settings: ProxySettings) {
    init_proxy_system_with(ProxyInjector::new(settings));
}

/// Installs an injector (with its TLS roots and resolver) for the whole process.
pub fn init_proxy_system_with(injector: ProxyInjector) {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(injector));
}

/// The proxy system in force: the one installed for the current scope
/// ([`with_proxy_injector`]), else the one installed for the process
/// ([`init_proxy_system`]), else settings loaded once from the environment and
/// `CRYPTOFEED_CONFIG`. If that load fails, the injector fails every connection with the
/// load error, which is logged once.
pub fn proxy_injector() -> Arc<ProxyInjector> {
    if let Ok(scoped) = SCOPED.try_with(Arc::clone) {
        return scoped;
    }
    if let Some(global) = GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return global.clone();
    }
    FROM_ENV
        .get_or_init(|| {
            Arc::new(match ProxySettings::load() {
                Ok(settings) => ProxyInjector::new(settings),
                Err(e) => {
                    tracing::error!(error = %e, "proxy settings could not be loaded; every proxied connection will fail");
                    ProxyInjector::failed(e)
                }
            })
        })
        .clone()
}

/// Runs `future` with `injector` in force for it alone (and not for tasks it spawns).
/// Tests use it to give each test its own settings while running in parallel.
pub async fn with_proxy_injector<F: Future>(injector: Arc<ProxyInjector>, future: F) -> F::Output {
    SCOPED.scope(injector, future).await
}

/// Runs `f` with `injector` in force for it alone (synchronous code, such as a
/// constructor).
pub fn with_proxy_injector_sync<R>(injector: Arc<ProxyInjector>, f: impl FnOnce() -> R) -> R {
    SCOPED.sync_scope(injector, f)
}
