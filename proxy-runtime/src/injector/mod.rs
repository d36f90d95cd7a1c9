//! The proxy system: [`ProxyInjector`] hands out dialers, HTTP clients and WebSockets per
//! exchange from one set of settings; [`global`] decides which injector is in force.
//!
//! Fail closed: an injector whose settings could not be loaded fails every connection
//! with the load error; it never connects direct.

pub(crate) mod global;
mod reload;
mod watch;

pub use reload::{ReloadError, ReloadReport, RouteChange, RouteChangeKind};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwap;
use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::{ProxyError, ProxyErrorKind as K};
use crate::http_client::client::{HttpClient, HttpOptions};
use crate::http_client::connector::ProxyConnector;
use crate::model::exchange::ExchangeId;
use crate::model::hosts::{HostIndex, url_form};
use crate::model::http_budget::HttpBudget;
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::proxy_settings::ProxySettings;
use crate::model::proxy_url::ProxyUrl;
use crate::model::reload::ReloadSettings;
use crate::model::route::ProxyConfig;
use crate::model::session::SessionSettings;
use crate::model::shared::SharedSettings;
use crate::model::system::SystemProxies;
use crate::redact;
use crate::route::dialer::{Dialer, Route};
use crate::route::shared::Store;
use crate::settings::load::{LoadError, Loader};
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
/// assert_eq!(injector.dialer("binance", ConnectionKind::Http).proxy().as_deref(), Some("http://binance-proxy:8080"));
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
pub struct ProxyInjector {
    core: Arc<Core>,
    /// The watch of the settings file, when `reload.watch` asked for one: it stops with
    /// the injector.
    _watch: Option<watch::FileWatch>,
    /// The task that reloads on SIGHUP, when the builder asked for it.
    sighup: Option<tokio::task::AbortHandle>,
}

/// What the injector's handles and its reloaders share.
struct Core {
    /// The settings in force, and what is made of them once for all routes.
    snapshot: ArcSwap<Snapshot>,
    /// Where the settings came from, to read them again; `None` for settings given as a
    /// value.
    loader: Option<Loader<ProxySettings>>,
    resolver: Arc<dyn Resolve>,
    tls: Result<TlsBase, ProxyError>,
    http: HttpOptions,
    /// The dialers handed out, each with what its route was made from.
    dialers: Mutex<HashMap<(RouteKey, ConnectionKind), (Dialer, RouteSpec)>>,
    http_clients: Mutex<HashMap<RouteKey, HttpClient>>,
    /// The client routed by host, once one was asked for.
    by_host: Mutex<Option<HttpClient>>,
    /// Reloads run one at a time; held before every other lock.
    reloading: Mutex<()>,
    /// Called after a route is handed out for the first time (the environment's injector
    /// checks whether settings were installed meanwhile).
    on_new_route: OnceLock<fn()>,
}

/// What one route is made from: equal specs make equal routes, so a reload leaves a
/// route whose spec it does not change as it is.
#[derive(PartialEq)]
enum RouteSpec {
    /// The settings did not load.
    Failing,
    Set(Box<RouteInputs>),
}

/// What a route of settings that loaded is made from: the knobs of its own kind only
/// (a WebSocket route's session knobs, an HTTP route's budget), so that a change to one
/// kind's knobs leaves the other kind's route as it was.
#[derive(PartialEq)]
struct RouteInputs {
    config: Option<ProxyConfig>,
    system: Option<SystemProxies>,
    session: Option<SessionSettings>,
    budget: Option<HttpBudget>,
    shared: SharedSettings,
}

impl RouteSpec {
    fn of(snapshot: &Snapshot, key: &RouteKey, kind: ConnectionKind) -> Self {
        let Ok(settings) = &snapshot.settings else {
            return Self::Failing;
        };
        let config = settings.route_for(key, kind).map(|(_, c)| c.clone());
        Self::Set(Box::new(RouteInputs {
            system: config
                .is_none()
                .then(|| settings.system_proxies().cloned())
                .flatten(),
            config,
            session: (kind == ConnectionKind::Websocket).then(|| settings.session_for(key)),
            budget: (kind == ConnectionKind::Http).then(|| settings.budget_for(key)),
            shared: settings.shared().clone(),
        }))
    }
}

/// The settings in force, and what every route of theirs shares.
struct Snapshot {
    settings: Result<Arc<ProxySettings>, ProxyError>,
    /// Which exchange claims each target host, by the settings' `hosts`.
    hosts: HostIndex,
    /// The store exit state is shared through, when the settings name one.
    store: Option<Arc<Store>>,
}

impl Snapshot {
    /// The snapshot of `settings`, keeping `old`'s store when the settings name the same.
    fn new(settings: Result<ProxySettings, ProxyError>, old: Option<&Snapshot>) -> Self {
        let hosts = settings
            .as_ref()
            .map(ProxySettings::host_index)
            .unwrap_or_default();
        let store = settings.as_ref().ok().and_then(|s| {
            let kept = old.and_then(|old| {
                let same = old.settings.as_ref().ok()?.shared() == s.shared();
                same.then(|| old.store.clone())
            });
            kept.unwrap_or_else(|| Store::new(s.shared()))
        });
        Self {
            settings: settings.map(Arc::new),
            hosts,
            store,
        }
    }
}

impl std::fmt::Debug for ProxyInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.core.snapshot.load();
        f.debug_struct("ProxyInjector")
            .field("settings", &snapshot.settings)
            .field("resolver", &self.core.resolver)
            .field("http", &self.core.http)
            .finish_non_exhaustive()
    }
}

impl Drop for ProxyInjector {
    fn drop(&mut self) {
        if let Some(task) = &self.sighup {
            task.abort();
        }
    }
}

/// Builds a [`ProxyInjector`] with extra TLS roots, another resolver, other HTTP client
/// options, or a reload on SIGHUP.
#[derive(Debug)]
pub struct ProxyInjectorBuilder {
    settings: Result<ProxySettings, ProxyError>,
    loader: Option<Loader<ProxySettings>>,
    /// The settings file's bytes, read just before the settings were loaded from it: the
    /// watch compares the file with them, so that a change made before it started is
    /// not missed.
    read: watch::Read,
    roots: TlsRoots,
    resolver: Arc<dyn Resolve>,
    http: HttpOptions,
    sighup: bool,
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

    /// The bytes the settings were loaded from, for the watch to compare the file with.
    fn read(mut self, read: watch::Read) -> Self {
        self.read = read;
        self
    }

    /// Reloads the settings ([`ProxyInjector::reload`]) each time the process receives
    /// SIGHUP, for as long as the injector lives. Taking a signal is the application's
    /// choice, so this is off unless asked for. Unix only (elsewhere it does nothing);
    /// [`build`](Self::build) must then run inside a Tokio runtime, which runs the task
    /// that waits for the signal. A reload that fails is logged and counted as any other.
    pub fn reload_on_sighup(mut self) -> Self {
        self.sighup = true;
        self
    }

    /// The injector. Settings that configure routes while proxies are disabled, or enable
    /// proxies with no route at all, are logged once, at warn level: every connection of
    /// theirs goes direct. With `reload.watch` set in settings read from a file, the file
    /// is watched from now on.
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
        // Settings that did not load are watched too (they say nothing of a watch: with
        // the built-in debounce), so that the file, once repaired, is put in force.
        let watched = match &self.settings {
            Ok(s) => s.reload().watch().then(|| s.reload().debounce()),
            Err(_) => self
                .loader
                .as_ref()
                .and_then(Loader::file)
                .map(|_| ReloadSettings::new().debounce()),
        };
        let core = Arc::new(Core {
            snapshot: ArcSwap::from_pointee(Snapshot::new(self.settings, None)),
            loader: self.loader,
            resolver: self.resolver,
            tls,
            http: self.http,
            dialers: Mutex::new(HashMap::new()),
            http_clients: Mutex::new(HashMap::new()),
            by_host: Mutex::new(None),
            reloading: Mutex::new(()),
            on_new_route: OnceLock::new(),
        });
        let read = self.read;
        let watch = watched.and_then(|debounce| {
            let file = core.loader.as_ref().and_then(Loader::file);
            watch::FileWatch::start(&core, file, debounce, read)
        });
        let sighup = self.sighup.then(|| watch::on_sighup(&core)).flatten();
        ProxyInjector {
            core,
            _watch: watch,
            sighup,
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
        Self::builder_from(Ok(settings), None)
    }

    /// A builder of an injector whose settings `loader` reads now, and reads again at
    /// each [`reload`](Self::reload) (from a watch of the file, SIGHUP, or your code).
    /// Settings that do not load now give an injector that fails every connection with the
    /// load error (logged at error level), as [`failed`](Self::failed); a reload that
    /// succeeds later puts working routes in force.
    ///
    /// ```
    /// use proxy_runtime::{ConnectionKind, ProxyInjector, ProxySettings};
    /// let loader = ProxySettings::loader().env_vars([
    ///     ("CRYPTOFEED_PROXY_ENABLED", "true"),
    ///     ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://proxy:1080"),
    /// ]);
    /// let injector = ProxyInjector::from_loader(loader).build();
    /// let report = injector.reload().expect("the same settings load again");
    /// assert!(report.is_empty(), "nothing changed");
    /// ```
    pub fn from_loader(loader: Loader<ProxySettings>) -> ProxyInjectorBuilder {
        let read = watch::Read::file_of(&loader);
        let settings = loader.load().map_err(|e| {
            tracing::error!(error = %e, "proxy settings could not be loaded; every proxied connection will fail");
            ProxyError::settings(e)
        });
        Self::builder_from(settings, Some(loader)).read(read)
    }

    fn builder_from(
        settings: Result<ProxySettings, ProxyError>,
        loader: Option<Loader<ProxySettings>>,
    ) -> ProxyInjectorBuilder {
        ProxyInjectorBuilder {
            settings,
            loader,
            read: watch::Read::default(),
            roots: TlsRoots::default(),
            resolver: Arc::new(SystemResolver),
            http: HttpOptions::default(),
            sighup: false,
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
        Self::builder_from(Err(ProxyError::settings(error)), None).build()
    }

    /// The settings in force, or the error that stops every connection. A reload puts
    /// others in force; the `Arc` returned stays as it was.
    pub fn settings(&self) -> Result<Arc<ProxySettings>, ProxyError> {
        self.core.snapshot.load().settings.clone()
    }

    /// The proxy of `exchange`'s HTTP traffic in force: `Ok(None)` for direct, or the
    /// error every connection fails with when the settings could not be loaded (never
    /// "direct" then: fail closed). Named after cryptofeed's Python `get_http_proxy_url`;
    /// `Display` of the URL is redacted.
    pub fn http_proxy_url(&self, exchange: &str) -> Result<Option<ProxyUrl>, ProxyError> {
        let settings = self.settings()?;
        Ok(settings
            .get_proxy(exchange, ConnectionKind::Http)
            .map(|config| config.url().clone()))
    }

    /// The dialer of `exchange`'s traffic of `kind`. It follows reloads.
    pub fn dialer(&self, exchange: &str, kind: ConnectionKind) -> Dialer {
        match route_key(exchange) {
            Ok(key) => self.core.cached_dialer(key, kind),
            Err(failing) => failing,
        }
    }

    /// The dialer that an exchange without an entry of its own gets for `kind`.
    pub fn default_dialer(&self, kind: ConnectionKind) -> Dialer {
        self.core.cached_dialer(RouteKey::Default, kind)
    }

    /// The dialer of `key`'s traffic of `kind`.
    pub(crate) fn dialer_for(&self, key: &RouteKey, kind: ConnectionKind) -> Dialer {
        self.core.cached_dialer(key.clone(), kind)
    }

    /// The same injector, calling `hook` after it hands out a route for the first time.
    pub(crate) fn on_new_route(self, hook: fn()) -> Self {
        // Set once, by the one caller, on an injector it has just built.
        let _ = self.core.on_new_route.set(hook);
        self
    }

    /// The HTTP client of `exchange`; every call for the same exchange shares one pool.
    /// It follows reloads: each request takes the route in force when it starts.
    pub fn http_client(&self, exchange: &str) -> HttpClient {
        match route_key(exchange) {
            Ok(key) => self.core.http_client_for(key),
            Err(failing) => HttpClient::with_options(failing, self.core.http),
        }
    }

    /// An HTTP client that chooses the route of each request by its URL's host: the routes
    /// of the exchange whose `hosts` claim the host (an exact name first, then the longest
    /// `*.suffix`), or the default route when no exchange claims it. For generic clients
    /// that know only the URL. It shares each exchange's connection pool with
    /// [`http_client`](Self::http_client) of that exchange, so connections never cross
    /// routes. It follows reloads, `hosts` included.
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
        let mut by_host = lock(&self.core.by_host);
        if let Some(client) = by_host.as_ref() {
            return client.clone();
        }
        let client = self.core.by_host_now();
        *by_host = Some(client.clone());
        client
    }

    /// The route key of a target `host` (a URL's host), by the exchanges' `hosts`.
    fn key_for_host(&self, host: Option<&str>) -> RouteKey {
        let snapshot = self.core.snapshot.load();
        host.and_then(url_form)
            .and_then(|host| snapshot.hosts.exchange_for(&host).cloned())
            .map_or(RouteKey::Default, RouteKey::Exchange)
    }

    /// The routes handed out so far (a dialer, or a client, of each), once each, in order.
    pub(crate) fn served(&self) -> Vec<RouteKey> {
        let dialers = lock(&self.core.dialers);
        let mut keys: Vec<RouteKey> = dialers.keys().map(|(key, _)| key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The options of the HTTP clients this injector makes.
    pub(crate) fn http_options(&self) -> HttpOptions {
        self.core.http
    }

    /// `exchange`'s HTTP route as a `tower::Service<Uri>`, to put under a hyper-util
    /// client of your own (see [`ProxyConnector`]). Each new connection takes the route in
    /// force; the connections your client pools stay as they were made.
    pub fn connector(&self, exchange: &str) -> ProxyConnector {
        ProxyConnector::new(
            self.dialer(exchange, ConnectionKind::Http),
            self.core.http.http2,
        )
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

    /// Reads the settings again from the loader the injector was built from
    /// ([`from_loader`](Self::from_loader): the file and the variables), checks them
    /// whole, and puts them in force ([`reload_with`](Self::reload_with)). Settings that do
    /// not load change nothing: every error is logged once at error level, counted in
    /// `proxy_reloads_total{result="failed"}`, and returned. An injector built from a
    /// value has nothing to read again: [`ReloadError::NoLoader`].
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.core.reload()
    }

    /// Puts `settings` in force, and says what changed. Every handle made before follows:
    /// dialers, HTTP clients (and `#[proxied]` clients over them) take the new routes for
    /// each connection or request that starts from now on; those under way finish on the
    /// routes they started with. A route whose settings did not change keeps everything
    /// (its pooled connections, health, cooling, budgets). A route that changed keeps the
    /// pooled connections that may go on through it (those of its members that stayed,
    /// when it was a pool of several; all of them, when its one member stayed) and
    /// retires the others, or else starts a new connection pool (the README's
    /// "Operations: reloading settings" says which, and its exceptions); its members that
    /// stayed keep their health and cooling, and its exits their weight and connection
    /// budgets.
    pub fn reload_with(&self, settings: ProxySettings) -> ReloadReport {
        self.core.apply(settings)
    }
}

impl watch::Reloadable for Core {
    fn reload(&self) -> Result<ReloadReport, ReloadError> {
        Core::reload(self)
    }
}

impl Core {
    fn cached_dialer(&self, key: RouteKey, kind: ConnectionKind) -> Dialer {
        let (dialer, new) = {
            let mut dialers = lock(&self.dialers);
            match dialers.entry((key.clone(), kind)) {
                Entry::Occupied(entry) => (entry.get().0.clone(), false),
                Entry::Vacant(entry) => {
                    let snapshot = self.snapshot.load();
                    let spec = RouteSpec::of(&snapshot, &key, kind);
                    let route = self.new_route(&snapshot, key, kind, None);
                    (entry.insert((route.into(), spec)).0.clone(), true)
                }
            }
        };
        // After the lock: the hook may ask what was served.
        if let Some(hook) = self.on_new_route.get().filter(|_| new) {
            hook();
        }
        dialer
    }

    /// `key`'s route of `kind` as `snapshot` sets it, inheriting what the members and
    /// exits of `before` (the route it replaces) had.
    fn new_route(
        &self,
        snapshot: &Snapshot,
        key: RouteKey,
        kind: ConnectionKind,
        before: Option<&Route>,
    ) -> Route {
        let exchange = key.exchange().map(|id| id.as_str().to_owned());
        let settings = match &snapshot.settings {
            Ok(s) => s,
            Err(e) => return Route::failing(exchange, e.clone()),
        };
        let tls = match &self.tls {
            Ok(base) => base,
            Err(e) => return Route::failing(exchange, e.clone()),
        };
        let session = settings.session_for(&key);
        let budget = settings.budget_for(&key);
        let budget_key = key.clone();
        let route = match (settings.route_for(&key, kind), settings.system_proxies()) {
            (Some((_, route)), _) => Route::new(key, kind, Some(route), self.resolver.clone(), tls),
            // A route the settings leave unset, taken by the system's proxy variables.
            (None, Some(system)) => Route::system(key, kind, system, self.resolver.clone(), tls),
            (None, None) => Route::new(key, kind, None, self.resolver.clone(), tls),
        };
        let store = snapshot.store.as_ref();
        let route = match kind {
            ConnectionKind::Websocket => route.with_session(session, &budget_key, store),
            ConnectionKind::Http => route.with_http_budget(&budget, &budget_key, store, before),
        };
        if let Some(before) = before {
            route.inherit(before);
        }
        route
    }

    fn http_client_for(&self, key: RouteKey) -> HttpClient {
        let mut clients = lock(&self.http_clients);
        clients
            .entry(key)
            .or_insert_with_key(|key| {
                let dialer = self.cached_dialer(key.clone(), ConnectionKind::Http);
                HttpClient::with_options(dialer, self.http)
            })
            .clone()
    }

    /// A client routed by host over the routes in force.
    fn by_host_now(&self) -> HttpClient {
        let snapshot = self.snapshot.load_full();
        let default = self.http_client_for(RouteKey::Default);
        let Ok(settings) = &snapshot.settings else {
            // Every route fails with the load error: the default's says so.
            return HttpClient::by_host(&default, HostIndex::default(), []);
        };
        let exchanges: Vec<(ExchangeId, HttpClient)> = settings
            .exchanges()
            .iter()
            .filter(|(_, proxies)| !proxies.hosts().is_empty())
            .map(|(id, _)| {
                let client = self.http_client_for(RouteKey::Exchange(id.clone()));
                (id.clone(), client)
            })
            .collect();
        HttpClient::by_host(&default, snapshot.hosts.clone(), exchanges)
    }

    fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let Some(loader) = &self.loader else {
            return Err(ReloadError::NoLoader);
        };
        // Read and put in force under one lock: two reloads at once (the watch and
        // SIGHUP) never put the older read in force last.
        let one_at_a_time = lock(&self.reloading);
        let failed = |e: ReloadError| {
            tracing::error!(error = %e, "proxy settings reload failed; the settings in force stay");
            metrics::counter!("proxy_reloads_total", "result" => "failed").increment(1);
            Err(e)
        };
        let (settings, origins) = match loader.load_with_origins() {
            Ok(loaded) => loaded,
            Err(e) => return failed(ReloadError::Invalid(e)),
        };
        // An empty file, or one without its section (a file caught half written), would
        // turn every route direct: refused. Disabling proxies is said with `enabled: false`.
        if let Some(empty) = ProxySettings::file_warnings(&origins).into_iter().next() {
            return failed(ReloadError::Empty(empty));
        }
        if let Some(warning) = settings.inert_warning("enabled") {
            tracing::warn!("{warning}");
        }
        Ok(self.apply_locked(settings, one_at_a_time))
    }

    /// Puts `settings` in force: a new snapshot, and every route handed out so far made
    /// again from it where it changed, inheriting what its members and exits had.
    fn apply(&self, settings: ProxySettings) -> ReloadReport {
        self.apply_locked(settings, lock(&self.reloading))
    }

    /// [`apply`](Self::apply), the reloads' lock held (`_one_at_a_time`).
    fn apply_locked(
        &self,
        settings: ProxySettings,
        _one_at_a_time: std::sync::MutexGuard<'_, ()>,
    ) -> ReloadReport {
        let mut by_host = lock(&self.by_host);
        let clients = lock(&self.http_clients);
        let mut dialers = lock(&self.dialers);
        let old = self.snapshot.load_full();
        let report = match &old.settings {
            Ok(before) => ReloadReport::between(before, &settings),
            Err(_) => ReloadReport::after_failure(&settings),
        };
        let unchanged = old.settings.as_deref().is_ok_and(|s| *s == settings);
        if unchanged {
            metrics::counter!("proxy_reloads_total", "result" => "unchanged").increment(1);
            tracing::debug!("proxy settings reloaded: nothing changed");
            return report;
        }
        let snapshot = Snapshot::new(Ok(settings), Some(&old));
        for ((key, kind), (dialer, spec)) in dialers.iter_mut() {
            let new_spec = RouteSpec::of(&snapshot, key, *kind);
            if new_spec == *spec {
                continue;
            }
            let before = dialer.now();
            dialer.swap(self.new_route(&snapshot, key.clone(), *kind, Some(&before)));
            *spec = new_spec;
        }
        for (key, client) in clients.iter() {
            let (dialer, _) = &dialers[&(key.clone(), ConnectionKind::Http)];
            if !dialer.is_on(client.inner().route()) {
                client.follow_route(dialer.now());
            }
        }
        self.snapshot.store(Arc::new(snapshot));
        drop((dialers, clients));
        if let Some(client) = by_host.as_mut() {
            client.follow(&self.by_host_now());
        }
        metrics::counter!("proxy_reloads_total", "result" => "applied").increment(1);
        report.record();
        report
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
        let dialers = injector.core.dialers.lock().unwrap().len();
        let clients = injector.core.http_clients.lock().unwrap().len();
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

    #[test]
    fn reloads_are_counted_by_result_and_changes_by_route() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let dir = std::env::temp_dir().join(format!("injector-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.yaml");
        let yaml = |url: &str| {
            format!(
                "proxy:\n  enabled: true\n  exchanges:\n    binance:\n      http:\n        url: {url}\n"
            )
        };
        std::fs::write(&file, yaml("socks5h://first.test:1080")).unwrap();
        let injector = ProxyInjector::from_loader(ProxySettings::loader().yaml_file(&file)).build();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            assert!(injector.reload().unwrap().is_empty());
            std::fs::write(&file, yaml("socks9://bad.test:1080")).unwrap();
            let err = injector.reload().unwrap_err();
            assert!(matches!(err, ReloadError::Invalid(_)), "{err}");
            assert!(err.to_string().contains("settings.yaml:6"), "{err}");
            std::fs::write(&file, yaml("socks5h://second.test:1080")).unwrap();
            assert_eq!(injector.reload().unwrap().routes().len(), 1);
        });
        let mut seen = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            if let DebugValue::Counter(n) = value {
                seen.push(format!("{} {} {n}", key.name(), labels.join(",")));
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "proxy_reload_changes_total change=changed,exchange=binance,kind=http 1",
                "proxy_reloads_total result=applied 1",
                "proxy_reloads_total result=failed 1",
                "proxy_reloads_total result=unchanged 1",
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_change_to_one_kind_s_knobs_leaves_the_other_kind_s_route_as_it_was() {
        let settings = |more: &[(&str, &str)]| {
            let mut vars = vec![
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                    "socks5h://a.test:1080",
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
                    "socks5h://b.test:1080",
                ),
            ];
            vars.extend_from_slice(more);
            ProxySettings::loader().env_vars(vars).load().unwrap()
        };
        let injector = ProxyInjector::new(settings(&[]));
        let http = injector.dialer("binance", ConnectionKind::Http);
        let ws = injector.dialer("binance", ConnectionKind::Websocket);
        let (http_before, ws_before) = (http.now(), ws.now());
        let budget = (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
            "100",
        );
        injector.reload_with(settings(&[budget]));
        assert!(!http.is_on(&http_before), "the HTTP route has a budget now");
        assert!(ws.is_on(&ws_before), "the WebSocket route is the same");
        assert_eq!(ws.generation(), 0, "its sessions do not move");
        let http_now = http.now();
        let knob = (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__CONNECTS",
            "5",
        );
        injector.reload_with(settings(&[budget, knob]));
        assert!(http.is_on(&http_now), "the HTTP route is the same");
        assert_eq!(ws.generation(), 1, "the WebSocket route has a budget now");
    }

    #[test]
    fn a_client_routed_by_host_serves_only_the_exchanges_that_claim_hosts() {
        let settings = ProxySettings::loader()
            .env_vars([
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HOSTS",
                    r#"["api.binance.com"]"#,
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__URL",
                    "socks5h://okx.test:1080",
                ),
            ])
            .load()
            .unwrap();
        let injector = ProxyInjector::new(settings);
        let _ = injector.http_client_by_host();
        let binance = RouteKey::Exchange(ExchangeId::new("binance").unwrap());
        assert_eq!(injector.served(), [RouteKey::Default, binance]);
    }

    #[tokio::test]
    async fn the_sighup_task_ends_with_its_injector() {
        let dir = std::env::temp_dir().join(format!("injector-sighup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.yaml");
        std::fs::write(&file, "proxy:\n  enabled: true\n").unwrap();
        let runtime = tokio::runtime::Handle::current();
        let before = runtime.metrics().num_alive_tasks();
        let injector = ProxyInjector::from_loader(ProxySettings::loader().yaml_file(&file))
            .reload_on_sighup()
            .build();
        assert_eq!(runtime.metrics().num_alive_tasks(), before + 1);
        drop(injector);
        tokio::task::yield_now().await;
        assert_eq!(runtime.metrics().num_alive_tasks(), before, "ended with it");
        let _ = std::fs::remove_dir_all(dir);
    }
}
