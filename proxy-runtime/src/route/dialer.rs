//! The door every connection of a route goes through: [`Dialer`] asks the route for its
//! members in order of preference, dials through each ([`crate::transport::dial`]) within
//! its share of the deadline until one connects, and tells the pool how each went.
//!
//! Fail closed: a route that cannot be used fails every connection with its error; a
//! member that fails is never replaced by a direct connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

use tokio::time::Instant;

use super::budget::{ConnectBudget, Place};
use super::member::route_labels;
#[cfg(doc)]
use super::pool::Lineage;
use super::pool::{Pool, Through, cannot_carry, is_member_failure, member_deadline};
use super::shared::Store;
use super::stream::ProxyStream;
use super::weight::{ExitName, Weights};
use crate::error::{Phase, ProxyError, ProxyErrorKind as K, Via};
use crate::model::exchange::ExchangeId;
use crate::model::http_budget::HttpBudget;
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::member::PoolMember;
use crate::model::proxy_url::ProxyUrl;
use crate::model::route::{ProxyConfig, Strategy};
use crate::model::session::SessionSettings;
use crate::model::system::{SystemProxies, SystemProxy};
use crate::model::timeout::TimeoutSeconds;
use crate::transport::dial::{Alpn, Established, Link, dial};
use crate::transport::target::{Resolve, Target};
use crate::transport::tls::{ExitTls, TlsBase};
use crate::transport::trace::{Steps, Trace};

/// Opens connections for one route: an exchange's HTTP or WebSocket traffic, direct or
/// through one proxy, within one timeout.
///
/// A dialer handed out by a [`ProxyInjector`](crate::ProxyInjector) follows its reloads:
/// each new connection takes the route in force when it starts, and keeps it to its end.
/// Its accessors ([`proxy`](Self::proxy), [`route`](Self::route), ...) describe the route
/// in force when they are called.
///
/// Cheap to clone: one reference count. hyper-util clones the connector, and with it its
/// dialer, on every request, as does every response (to name its route in errors).
#[derive(Clone)]
pub struct Dialer {
    slot: Arc<Slot>,
}

/// Where a dialer and its clones find the route in force: swapped whole by a reload, read
/// without a lock by every new connection.
struct Slot {
    /// The exchange of every route it holds.
    exchange: Option<Box<str>>,
    route: ArcSwap<Shared>,
    /// How many times a reload put another route in force.
    generation: AtomicU64,
}

/// One route as it was when it was read from a dialer: every connection is made through
/// one, from its start to its end.
#[derive(Clone)]
pub(crate) struct Route {
    shared: Arc<Shared>,
}

/// What a dialer and its clones share.
struct Shared {
    exchange: Option<Box<str>>,
    timeout: TimeoutSeconds,
    state: State,
    /// The session knobs of a WebSocket route (the built-in ones elsewhere).
    session: SessionSettings,
    /// The connection budget of each exit (member as shown, or `direct`), made at its
    /// first connection: only on a WebSocket route whose knobs set one.
    budgets: Option<Budgets>,
    /// The weight budget of each exit: only on an HTTP route whose settings set one.
    weights: Option<Arc<Weights>>,
    /// The one member of the pool this dialer connects through, for the HTTP client that
    /// keeps a connection pool per member of a route with weight budgets.
    pinned: Option<usize>,
}

/// How the store names the exit of `member`: its own `exit` name, else the proxy's host
/// and port (the address the exchange sees is the proxy's, whatever local address
/// reaches it), else the local source address or interface of a direct member, else
/// `direct` (this host's default address). Never the credentials.
pub(crate) fn exit_id(member: &PoolMember) -> String {
    if let Some(name) = member.exit() {
        return name.to_owned();
    }
    match member.url() {
        ProxyUrl::Proxy(endpoint) => format!("{}:{}", endpoint.host(), endpoint.port()),
        ProxyUrl::DirectFrom(ip) => ip.to_string(),
        ProxyUrl::Direct => match (member.source(), member.interface()) {
            (Some(ip), _) => ip.to_string(),
            (None, Some(interface)) => format!("interface {interface}"),
            (None, None) => "direct".to_owned(),
        },
    }
}

/// The connection budgets of a WebSocket route's exits, made at each exit's first
/// connection; shared with other processes through the store, when there is one.
struct Budgets {
    /// By exit, as the store names it ([`exit_id`]): the address the exchange counts, so
    /// that a member whose credentials change keeps its exit's budget.
    exits: Mutex<HashMap<String, Arc<ConnectBudget>>>,
    /// The store, and the exchange whose exits it keeps.
    store: Option<(Arc<Store>, String)>,
}

/// What a dialer does with every connection.
#[derive(Clone)]
enum State {
    /// Fails it with this error (fail closed: settings that did not load, an invalid
    /// exchange id, TLS that could not be configured).
    Failing(ProxyError),
    /// Connects straight to the target.
    Direct(Arc<dyn Resolve>, ExitTls),
    /// Connects through a member of this route: one proxy, or a pool.
    Proxied(Arc<Proxied>),
    /// Connects as the system's proxy variables say, target by target.
    System(Arc<SystemRoute>),
}

/// A route the settings leave unset, taken by the system's proxy variables: through the
/// `HTTPS_PROXY` or `HTTP_PROXY` of the target's scheme, else direct (`NO_PROXY`, or no
/// variable for that scheme).
struct SystemRoute {
    proxies: SystemProxies,
    https: Option<Arc<Proxied>>,
    http: Option<Arc<Proxied>>,
    resolver: Arc<dyn Resolve>,
    /// TLS of the connections that go direct.
    direct: ExitTls,
    /// The route as errors and logs show it, redacted.
    shown: Arc<str>,
}

/// A route through proxies (or a pool with `direct://` among its members).
struct Proxied {
    resolver: Arc<dyn Resolve>,
    /// What each member's TLS was made from (for dialers of one member).
    tls: TlsBase,
    pool: Arc<Pool>,
    /// The route as errors and logs show it, redacted.
    shown: Arc<str>,
}

/// A connection made for the route: how, and through which member.
struct Joined {
    established: Established,
    /// Its place in the exit's connection budget, while the attempt is not over.
    place: Option<Place>,
    /// The member's proxy as shown (redacted); `None` for a direct connection.
    via: Option<String>,
    member: Option<Through>,
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.now().fmt(f)
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("exchange", &self.shared.exchange)
            .field("route", &self.route())
            .field("timeout", &self.timeout())
            .finish_non_exhaustive()
    }
}

impl From<Route> for Dialer {
    /// A dialer that stays on `route` (no reload moves it).
    fn from(route: Route) -> Self {
        Self {
            slot: Arc::new(Slot {
                exchange: route.shared.exchange.clone(),
                route: ArcSwap::new(route.shared),
                generation: AtomicU64::new(0),
            }),
        }
    }
}

impl Dialer {
    /// The route in force now.
    pub(crate) fn now(&self) -> Route {
        Route {
            shared: self.slot.route.load_full(),
        }
    }

    /// Puts `route` in force for this dialer and every clone of it: connections that
    /// start from now on take it; those under way keep theirs.
    pub(crate) fn swap(&self, route: Route) {
        debug_assert_eq!(route.shared.exchange, self.slot.exchange);
        self.slot.route.store(route.shared);
        self.slot.generation.fetch_add(1, Ordering::Release);
    }

    /// How many times a reload put another route in force: a resilient session compares
    /// it with the one its connection was made at, to move to the new route.
    pub(crate) fn generation(&self) -> u64 {
        self.slot.generation.load(Ordering::Acquire)
    }

    /// Whether `route` is the one in force (the same route, not an equal one).
    pub(crate) fn is_on(&self, route: &Route) -> bool {
        Arc::ptr_eq(&self.slot.route.load(), &route.shared)
    }

    /// A dialer for each member of a pool alone, on the route in force (see
    /// [`Route::members_alone`]).
    pub(crate) fn members_alone(&self) -> Vec<(String, Dialer)> {
        self.now().members_alone()
    }

    /// A dialer whose every connection fails with `error` (fail closed).
    pub(crate) fn failing(exchange: Option<String>, error: ProxyError) -> Self {
        Route::failing(exchange, error).into()
    }

    /// The knobs of resilient WebSocket sessions on this route (the settings' resolved
    /// `websocket_session` of its exchange, on a WebSocket route; the built-in ones on
    /// others).
    pub fn session_settings(&self) -> SessionSettings {
        self.now().session_settings()
    }

    /// The exchange this dialer serves.
    pub fn exchange(&self) -> Option<&str> {
        self.slot.exchange.as_deref()
    }

    /// The proxy in force, redacted (a pool: its members and strategy, like
    /// `[socks5h://a:1080, socks5h://b:1080] (failover)`); `None` when connections go
    /// direct (or always fail).
    pub fn proxy(&self) -> Option<String> {
        self.now().proxy().map(str::to_owned)
    }

    /// The time allowed to establish one connection (zero for a failing dialer).
    pub fn timeout(&self) -> Duration {
        self.now().timeout()
    }

    /// The error every connection fails with, when the route is unusable: the settings
    /// could not be loaded, the exchange id is invalid, or TLS could not be configured.
    pub fn failure(&self) -> Option<ProxyError> {
        self.now().failure().cloned()
    }

    /// The route in words, redacted: `direct`, `via socks5h://...`, or `fails (...)`.
    pub fn route(&self) -> String {
        self.now().route()
    }

    /// Connects to `target` (with TLS to it when `tls`, offering ALPN `http/1.1`), within
    /// the route's timeout. Without a URL there is no scheme: on a route of the system's
    /// proxy variables the connection is taken as `https`'s (`HTTPS_PROXY`, else
    /// `ALL_PROXY`), the scheme exchanges use, whether or not the TLS is this dialer's;
    /// [`connect_url`](Self::connect_url) routes by the URL's scheme.
    pub async fn connect(&self, target: &Target, tls: bool) -> Result<ProxyStream, ProxyError> {
        self.now().connect(target, tls).await
    }

    /// The routed stream to `url`'s host and port (`http`, `https`, `ws` or `wss`; the
    /// scheme's default port when it gives none), TLS with the target not done: for a
    /// tokio-tungstenite, hyper or other client of a version of your own, which does TLS
    /// and its protocol over it. With every guarantee of this dialer: fail closed, the DNS
    /// rule of the route's scheme, the route's deadline, pools. `url` is read by
    /// `url::Url`; one with user information is refused.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), proxy_runtime::ProxyError> {
    /// use proxy_runtime::{ConnectionKind, proxy_injector};
    /// let stream = proxy_injector()
    ///     .dialer("binance", ConnectionKind::Websocket)
    ///     .connect_url("wss://stream.binance.com:9443/ws/btcusdt@trade")
    ///     .await?;
    /// // `stream` is the tunnel to stream.binance.com:9443: give it to your own
    /// // tokio-tungstenite's `client_async_tls_with_config`.
    /// # let _ = stream; Ok(()) }
    /// ```
    pub async fn connect_url(&self, url: &str) -> Result<ProxyStream, ProxyError> {
        self.now().connect_url(url).await
    }

    /// `error` naming the route in force (exchange and redacted proxy) and `target`.
    pub(crate) fn attach(&self, error: ProxyError, target: Option<&str>) -> ProxyError {
        self.now().attach(error, target)
    }
}

impl Route {
    /// The route `route` (`None`, or `direct://` alone: direct) of `key`'s traffic of
    /// `kind`.
    pub(crate) fn new(
        key: RouteKey,
        kind: ConnectionKind,
        route: Option<&ProxyConfig>,
        resolver: Arc<dyn Resolve>,
        tls: &TlsBase,
    ) -> Self {
        let exchange = key.exchange().map(|id| id.as_str().into());
        let timeout = route.map_or(TimeoutSeconds::DEFAULT, ProxyConfig::timeout);
        let state = match route.filter(|r| !r.is_direct()) {
            None => State::Direct(resolver, tls.exit()),
            Some(route) => {
                let members = route.members().to_vec();
                let pool = Pool::new(members, route.strategy(), key, kind, tls);
                let shown: Arc<str> = if route.is_pool() {
                    let members: Vec<&str> =
                        pool.members().iter().map(|m| m.shown.as_str()).collect();
                    format!("[{}] ({})", members.join(", "), route.strategy()).into()
                } else {
                    pool.members()[0].shown.as_str().into()
                };
                State::Proxied(Arc::new(Proxied {
                    resolver,
                    tls: tls.clone(),
                    pool,
                    shown,
                }))
            }
        };
        Self::from_parts(exchange, timeout, state)
    }

    /// A dialer for a route the settings leave unset, taken by the system's proxy
    /// variables `proxies`.
    pub(crate) fn system(
        key: RouteKey,
        kind: ConnectionKind,
        proxies: &SystemProxies,
        resolver: Arc<dyn Resolve>,
        tls: &TlsBase,
    ) -> Self {
        let exchange = key.exchange().map(|id| id.as_str().into());
        let through = |proxy: Option<&SystemProxy>| {
            proxy.map(|proxy| {
                let pool = Pool::new(
                    vec![proxy.url().clone().into()],
                    Strategy::Failover,
                    key.clone(),
                    kind,
                    tls,
                );
                let shown = pool.members()[0].shown.as_str().into();
                Arc::new(Proxied {
                    resolver: resolver.clone(),
                    tls: tls.clone(),
                    pool,
                    shown,
                })
            })
        };
        let mut shown: Vec<String> = [proxies.https(), proxies.http()]
            .into_iter()
            .flatten()
            .map(|p| format!("{}={}", p.var(), p.url()))
            .collect();
        if let Some((var, list)) = proxies.no_proxy() {
            shown.push(format!("{var}={list}"));
        }
        let route = SystemRoute {
            proxies: proxies.clone(),
            https: through(proxies.https()),
            http: through(proxies.http()),
            resolver: resolver.clone(),
            direct: tls.exit(),
            shown: format!("system proxy variables ({})", shown.join(", ")).into(),
        };
        Self::from_parts(
            exchange,
            TimeoutSeconds::DEFAULT,
            State::System(Arc::new(route)),
        )
    }

    /// A route whose every connection fails with `error` (fail closed).
    pub(crate) fn failing(exchange: Option<String>, error: ProxyError) -> Self {
        Self::from_parts(
            exchange.map(Into::into),
            TimeoutSeconds::DEFAULT,
            State::Failing(error),
        )
    }

    fn from_parts(exchange: Option<Box<str>>, timeout: TimeoutSeconds, state: State) -> Self {
        Self {
            shared: Arc::new(Shared {
                exchange,
                timeout,
                state,
                session: SessionSettings::new(),
                budgets: None,
                weights: None,
                pinned: None,
            }),
        }
    }

    /// The same route (`key`'s) carrying WebSocket traffic under `session`'s knobs:
    /// resilient sessions opened through it take them, and every new connection through
    /// one of its exits takes a place in that exit's connection budget, when they set
    /// one; with a `store`, every process using the exit shares that budget.
    pub(crate) fn with_session(
        self,
        session: SessionSettings,
        key: &RouteKey,
        store: Option<&Arc<Store>>,
    ) -> Self {
        let exchange = key.exchange().map_or("default", ExchangeId::as_str);
        let budgets = session.connect_budget().map(|_| Budgets {
            exits: Mutex::new(HashMap::new()),
            store: store.map(|store| (store.clone(), exchange.to_owned())),
        });
        let shared = &self.shared;
        self.remade(session, budgets, shared.weights.clone(), shared.pinned)
    }

    /// The same route (exchange, timeout, members and their state) with these session
    /// knobs, connection budgets, weight budgets and pinned member.
    fn remade(
        &self,
        session: SessionSettings,
        budgets: Option<Budgets>,
        weights: Option<Arc<Weights>>,
        pinned: Option<usize>,
    ) -> Self {
        let shared = &self.shared;
        Self {
            shared: Arc::new(Shared {
                exchange: shared.exchange.clone(),
                timeout: shared.timeout,
                state: shared.state.clone(),
                session,
                budgets,
                weights,
                pinned,
            }),
        }
    }

    /// The same route (`key`'s) spending `budget`'s weight per exit, when it sets one:
    /// each member of a pool is an exit; any other route is one. With a `store`, each
    /// exit's budget is shared with every process that uses the same exit. The exits of
    /// `before` (the route this one replaces) keep their windows where they stay.
    pub(crate) fn with_http_budget(
        self,
        budget: &HttpBudget,
        key: &RouteKey,
        store: Option<&Arc<Store>>,
        before: Option<&Route>,
    ) -> Self {
        let direct = || ExitName {
            shown: "direct".to_owned(),
            id: "direct".to_owned(),
        };
        let exits = match &self.shared.state {
            State::Proxied(proxied) => proxied
                .pool
                .members()
                .iter()
                .map(|m| ExitName {
                    shown: m.shown.clone(),
                    id: exit_id(&m.config),
                })
                .collect(),
            // Nothing is sent on a failing route: there is nothing to count.
            State::Failing(_) => return self,
            State::Direct(..) => vec![direct()],
            State::System(system) => vec![ExitName {
                shown: system.shown.to_string(),
                id: "system".to_owned(),
            }],
        };
        let exchange = key.exchange().map_or("default", ExchangeId::as_str);
        let Some(weights) = Weights::new(
            budget,
            exits,
            route_labels(key, ConnectionKind::Http),
            store.map(|store| (store, exchange)),
            before.and_then(Route::weights).map(|w| &**w),
        ) else {
            return self;
        };
        self.remade(self.shared.session, None, Some(weights), None)
    }

    /// Takes over what `before`, the route this one replaces, knew of the members and exits
    /// that stay: a member of the same settings keeps its health (failures, bench) and
    /// cooling; a member that changed (a new password) but leaves by the same exit keeps
    /// its cooling, which the exchange decided for the exit; an exit keeps its connection
    /// budget when the knobs and the store are the same. (Weight budgets are taken over
    /// when they are made: [`with_http_budget`](Self::with_http_budget).)
    pub(crate) fn inherit(&self, before: &Route) {
        let same_exit = |a: &PoolMember, b: &PoolMember| exit_id(a) == exit_id(b);
        match (&self.shared.state, &before.shared.state) {
            (State::Proxied(now), State::Proxied(was)) => now.pool.inherit(&was.pool, same_exit),
            (State::System(now), State::System(was)) => {
                for (now, was) in [(&now.https, &was.https), (&now.http, &was.http)] {
                    if let (Some(now), Some(was)) = (now, was) {
                        now.pool.inherit(&was.pool, same_exit);
                    }
                }
            }
            _ => {}
        }
        let (Some(now), Some(was)) = (&self.shared.budgets, &before.shared.budgets) else {
            return;
        };
        let same_store = match (&now.store, &was.store) {
            (None, None) => true,
            (Some((a, _)), Some((b, _))) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let same_knobs =
            self.shared.session.connect_budget() == before.shared.session.connect_budget();
        if !(same_store && same_knobs) {
            return;
        }
        let exits = self.exit_ids();
        let was = was.exits.lock().unwrap_or_else(PoisonError::into_inner);
        let mut now = now.exits.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, budget) in was.iter() {
            if exits.contains(id) {
                now.insert(id.clone(), budget.clone());
            }
        }
    }

    /// Every exit of the route, as its connection budgets are kept ([`exit_id`]): each
    /// member's, and `direct`.
    fn exit_ids(&self) -> Vec<String> {
        let mut ids = vec!["direct".to_owned()];
        let pools = match &self.shared.state {
            State::Proxied(proxied) => vec![proxied],
            State::System(system) => system.https.iter().chain(&system.http).collect(),
            State::Failing(_) | State::Direct(..) => Vec::new(),
        };
        for proxied in pools {
            ids.extend(proxied.pool.members().iter().map(|m| exit_id(&m.config)));
        }
        ids
    }

    /// The weight budgets of the route's exits, if its settings set one.
    pub(crate) fn weights(&self) -> Option<&Arc<Weights>> {
        self.shared.weights.as_ref()
    }

    /// The route's exits with budget, best first: a pool's members in the order a new
    /// connection would try them (none benched, cooling last); else the route's one exit.
    pub(crate) fn exit_order(&self) -> Vec<usize> {
        match &self.shared.state {
            State::Proxied(proxied) if !proxied.pool.is_single() => proxied.pool.candidates(),
            _ => vec![0],
        }
    }

    /// How many connections are open through member `i` of the route's pool (0 on a route
    /// that is not a pool of several).
    pub(crate) fn open_connections(&self, i: usize) -> usize {
        match &self.shared.state {
            State::Proxied(proxied) if !proxied.pool.is_single() => {
                proxied.pool.open_connections(i)
            }
            _ => 0,
        }
    }

    /// A dialer connecting through member `i` of this route's pool alone, sharing the
    /// pool's record of health and cooling; this dialer itself when the route is not a
    /// pool of several.
    pub(crate) fn pinned(&self, i: usize) -> Route {
        if !self.is_pool() {
            return self.clone();
        }
        let shared = &self.shared;
        self.remade(shared.session, None, shared.weights.clone(), Some(i))
    }

    /// The knobs of resilient WebSocket sessions on this route (the settings' resolved
    /// `websocket_session` of its exchange, on a WebSocket route; the built-in ones on
    /// others).
    pub(crate) fn session_settings(&self) -> SessionSettings {
        self.shared.session
    }

    /// A place in the connection budget of the exit `shown` (a member as shown, or
    /// `direct`; `id` as the store names it), waiting for one; `None` without a budget.
    /// The deadline moves by the wait: the route's timeout bounds the connection, not its
    /// turn.
    async fn budget_place(
        &self,
        shown: &str,
        id: &str,
        deadline: &mut Instant,
    ) -> Option<(Place, bool)> {
        let budgets = self.shared.budgets.as_ref()?;
        let (connects, window) = self.shared.session.connect_budget()?;
        let budget = budgets
            .exits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_insert_with(|| match &budgets.store {
                Some((store, exchange)) => ConnectBudget::shared(
                    connects,
                    window,
                    store,
                    store.keys(exchange, id).connect,
                    self.timeout(),
                ),
                None => ConnectBudget::new(connects, window),
            })
            .clone();
        let (place, waited) = budget.take().await;
        let was_kept_waiting = !waited.is_zero();
        if was_kept_waiting {
            *deadline += waited;
            tracing::debug!(exchange = ?self.shared.exchange, exit = shown, waited_ms = waited.as_millis() as u64, "waited for the connection budget");
            metrics::histogram!("proxy_connect_budget_wait_seconds", "exit" => shown.to_owned())
                .record(waited.as_secs_f64());
        }
        Some((place, was_kept_waiting))
    }

    /// The exchange this dialer serves.
    pub(crate) fn exchange(&self) -> Option<&str> {
        self.shared.exchange.as_deref()
    }

    /// The proxy, redacted (a pool: its members and strategy, like
    /// `[socks5h://a:1080, socks5h://b:1080] (failover)`); `None` when connections go
    /// direct (or always fail).
    pub(crate) fn proxy(&self) -> Option<&str> {
        match &self.shared.state {
            State::Proxied(proxied) => Some(&proxied.shown),
            State::System(system) => Some(&system.shown),
            State::Failing(_) | State::Direct(..) => None,
        }
    }

    /// Whether connections made through this route may carry requests of `next`, the
    /// route that replaces it in a reload, so that an HTTP client keeps its pooled
    /// connections. Yes from a pool of several members to any route through proxies:
    /// every connection of such a pool is tagged with its member and recorded by the
    /// client's [`Lineage`], which retires those of the members `next` does not have and
    /// points the others at `next`'s pool. Yes from a route of one member to a route of
    /// the same one member, and from direct to direct. No otherwise: a route of one
    /// member tags no connection, so its connections could not be told apart, or
    /// retired, in a pool.
    pub(crate) fn keeps_connections_into(&self, next: &Route) -> bool {
        match (&self.shared.state, &next.shared.state) {
            (State::Proxied(was), State::Proxied(now)) => {
                let (was, now) = (&was.pool, &now.pool);
                !was.is_single()
                    || (now.is_single() && was.members()[0].config == now.members()[0].config)
            }
            (State::Direct(..), State::Direct(..)) => true,
            _ => false,
        }
    }

    /// The pool of a route through proxies (not of one of the system's proxy variables).
    pub(crate) fn pool(&self) -> Option<&Arc<Pool>> {
        match &self.shared.state {
            State::Proxied(proxied) => Some(&proxied.pool),
            _ => None,
        }
    }

    /// The settings of member `i` of the route's pool (`None` on a route that is not
    /// through proxies, or of the system's proxy variables).
    pub(crate) fn member(&self, i: usize) -> Option<&PoolMember> {
        match &self.shared.state {
            State::Proxied(proxied) => proxied.pool.members().get(i).map(|m| &*m.config),
            _ => None,
        }
    }

    /// Whether the route is a pool of more than one member (whose connections a cooling
    /// member retires, so that traffic moves to the others).
    pub(crate) fn is_pool(&self) -> bool {
        matches!(&self.shared.state, State::Proxied(proxied) if !proxied.pool.is_single())
    }

    /// A dialer for each member of a pool alone (for `proxy-check --probe`, which tries
    /// every member), with the member's label in the pool (`... #2` where two members
    /// show alike); this dialer itself, with its route, when the route is not a pool.
    pub(crate) fn members_alone(&self) -> Vec<(String, Dialer)> {
        let alone = || {
            let shown = self.proxy().unwrap_or("direct").to_owned();
            vec![(shown, self.clone().into())]
        };
        let State::Proxied(proxied) = &self.shared.state else {
            return alone();
        };
        let pool = &proxied.pool;
        if pool.is_single() {
            return alone();
        }
        pool.members()
            .iter()
            .map(|member| {
                let config =
                    ProxyConfig::single((*member.config).clone()).with_timeout(self.shared.timeout);
                let route = Route::new(
                    pool.key().clone(),
                    pool.kind(),
                    Some(&config),
                    proxied.resolver.clone(),
                    &proxied.tls,
                );
                (member.shown.clone(), route.into())
            })
            .collect()
    }

    /// The time allowed to establish one connection (zero for a failing dialer).
    pub(crate) fn timeout(&self) -> Duration {
        match &self.shared.state {
            State::Direct(..) | State::Proxied(_) | State::System(_) => {
                self.shared.timeout.as_duration()
            }
            State::Failing(_) => Duration::ZERO,
        }
    }

    /// The error every connection fails with, when the route is unusable: the settings
    /// could not be loaded, the exchange id is invalid, or TLS could not be configured.
    pub(crate) fn failure(&self) -> Option<&ProxyError> {
        match &self.shared.state {
            State::Failing(error) => Some(error),
            State::Direct(..) | State::Proxied(_) | State::System(_) => None,
        }
    }

    /// The route in words, redacted: `direct`, `via socks5h://...`, or `fails (...)`.
    pub(crate) fn route(&self) -> String {
        match &self.shared.state {
            State::Failing(error) => format!("fails ({})", error.kind()),
            State::Direct(..) => "direct".to_owned(),
            State::Proxied(proxied) => format!("via {}", proxied.shown),
            State::System(system) => format!("by the {}", system.shown),
        }
    }

    /// See [`Dialer::connect`].
    pub(crate) async fn connect(
        &self,
        target: &Target,
        tls: bool,
    ) -> Result<ProxyStream, ProxyError> {
        let mut deadline = Instant::now() + self.timeout();
        let alpn = tls.then_some(Alpn::Http1);
        // What the caller does over the stream is not ours to see: the attempt ends here.
        self.connect_routed(target, alpn, true, &mut deadline, None)
            .await
            .map(ProxyStream::without_place)
    }

    /// See [`Dialer::connect_url`].
    pub(crate) async fn connect_url(&self, url: &str) -> Result<ProxyStream, ProxyError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            self.attach(
                ProxyError::new(K::InvalidTarget)
                    .detail("not a URL")
                    .source(e),
                None,
            )
        })?;
        let (target, scheme) = Target::from_url(&parsed).map_err(|e| self.attach(e, None))?;
        let mut deadline = Instant::now() + self.timeout();
        self.connect_routed(&target, None, scheme.tls(), &mut deadline, None)
            .await
            .map(ProxyStream::without_place)
    }

    /// Like [`connect`](Self::connect), with TLS to the target when `tls` is given, a
    /// deadline that may be shared with a later phase (the WebSocket upgrade), and a trace
    /// of the phases. Every error leaves here naming the exchange, proxy and target. A
    /// wait for the connection budget moves `deadline` by its length.
    pub(crate) async fn connect_by(
        &self,
        target: &Target,
        tls: Option<Alpn>,
        deadline: &mut Instant,
        trace: Option<&Trace>,
    ) -> Result<ProxyStream, ProxyError> {
        self.connect_routed(target, tls, tls.is_some(), deadline, trace)
            .await
    }

    /// [`connect_by`](Self::connect_by), saying whether the target's scheme is a secure
    /// one (`https`, `wss`) when TLS is not ours to do (the system's variables route by it).
    async fn connect_routed(
        &self,
        target: &Target,
        tls: Option<Alpn>,
        secure: bool,
        deadline: &mut Instant,
        trace: Option<&Trace>,
    ) -> Result<ProxyStream, ProxyError> {
        let shown_target = target.to_string();
        let result = match &self.shared.state {
            State::Failing(error) => Err(error.clone()),
            State::Direct(resolver, exit) => {
                let place = self.budget_place("direct", "direct", deadline).await;
                direct(&**resolver, exit, target, tls, *deadline, trace)
                    .await
                    .map(|joined| joined.in_place(place))
            }
            State::Proxied(proxied) => {
                self.through_pool(proxied, target, tls, deadline, trace)
                    .await
            }
            State::System(system) => {
                let proxied = match system.proxies.proxy_for(&target.host().bare(), secure) {
                    None => None,
                    Some(_) if secure => system.https.as_ref(),
                    Some(_) => system.http.as_ref(),
                };
                match proxied {
                    Some(proxied) => {
                        self.through_pool(proxied, target, tls, deadline, trace)
                            .await
                    }
                    None => {
                        let place = self.budget_place("direct", "direct", deadline).await;
                        direct(
                            &*system.resolver,
                            &system.direct,
                            target,
                            tls,
                            *deadline,
                            trace,
                        )
                        .await
                        .map(|joined| joined.in_place(place))
                        .map_err(|e| e.at(self.exchange(), Via::Direct, None))
                    }
                }
            }
        };
        match result {
            Ok(joined) => {
                let description = match &joined.via {
                    None => format!("direct to {shown_target}"),
                    Some(proxy) => format!("via {proxy} to {shown_target}"),
                };
                let Established { io, h2 } = joined.established;
                tracing::debug!(exchange = ?self.shared.exchange, route = %description, h2, "connected");
                Ok(ProxyStream::new(io, description, h2)
                    .with_member(joined.member)
                    .with_place(joined.place))
            }
            Err(e) => {
                let e = self.attach(e, Some(&shown_target));
                tracing::debug!(error = %e, "connection failed");
                Err(e)
            }
        }
    }

    /// `error` naming this route (exchange and redacted proxy) and `target`: the one way
    /// context is attached, once per connection and once per request or stream.
    pub(crate) fn attach(&self, error: ProxyError, target: Option<&str>) -> ProxyError {
        let via = match &self.shared.state {
            State::Failing(_) => Via::Unknown,
            // Target by target: the way the connection took, as far as it went.
            State::System(_) => error.via().clone(),
            State::Direct(..) => Via::Direct,
            State::Proxied(proxied) => Via::Proxy(proxied.shown.to_string()),
        };
        error.at(self.exchange(), via, target)
    }

    /// A connection through the best member of `pool` that works: members are tried in
    /// the pool's order of preference, each within its share of the deadline, until one
    /// connects. Nothing of a request has been sent, so moving on is safe. A failure that
    /// is not the member's (the target's name, TLS to the target) ends the attempt.
    async fn through_pool(
        &self,
        proxied: &Proxied,
        target: &Target,
        tls: Option<Alpn>,
        deadline: &mut Instant,
        trace: Option<&Trace>,
    ) -> Result<Joined, ProxyError> {
        let pool = &proxied.pool;
        pool.meter();
        let candidates = match self.shared.pinned {
            Some(i) => vec![i],
            None => pool.candidates(),
        };
        let mut failures = Vec::new();
        let mut untried = 0;
        for (n, &i) in candidates.iter().enumerate() {
            // A member reached when the route's deadline has passed is not tried: it has no
            // time, and a timeout then would be no fault of its own.
            if Instant::now() >= *deadline {
                untried = candidates.len() - n;
                break;
            }
            let member = &pool.members()[i];
            // Held until the attempt ends (for a WebSocket, its upgrade): the exit's budget
            // counts it.
            let (place, waited) = self
                .budget_place(&member.shown, &exit_id(&member.config), deadline)
                .await
                .unzip();
            // The member was benched while this attempt waited its turn: the next one is
            // tried instead, and the place it never used goes back.
            if waited == Some(true) && pool.is_benched(i) && n + 1 < candidates.len() {
                if let Some(place) = place {
                    place.unused();
                }
                continue;
            }
            let timing = |phase, took| pool.record_phase(i, phase, took);
            let steps = Steps {
                deadline: member_deadline(*deadline, candidates.len() - n),
                trace,
                timing: Some(&timing),
            };
            let link = Link {
                resolver: &*proxied.resolver,
                tls: &member.tls,
            };
            match dial(link, &member.config, target, tls, steps).await {
                Ok(established) => {
                    pool.succeeded(i);
                    return Ok(Joined {
                        established,
                        place,
                        via: (!member.config.is_direct()).then(|| member.shown.clone()),
                        // The tag rides on every response of the connection (an entry in
                        // its extensions: allocations per request), for a member to cool or
                        // a connection to retire: only a pool of several has either to do.
                        member: (!pool.is_single()).then(|| Through::new(pool, i)),
                    });
                }
                Err(e) if is_member_failure(&e) || cannot_carry(&e) => {
                    if cannot_carry(&e) {
                        pool.counted_failure(i, &e);
                    } else {
                        pool.failed(i, &e);
                    }
                    let via = if member.config.is_direct() {
                        Via::Direct
                    } else {
                        Via::Proxy(member.shown.clone())
                    };
                    failures.push(e.at(self.exchange(), via, Some(&target.to_string())));
                }
                Err(e) => {
                    pool.counted_failure(i, &e);
                    return Err(e);
                }
            }
        }
        match failures.len() {
            0 => Err(ProxyError::new(K::Timeout(Phase::Connect))
                .detail("the deadline passed before any member was tried")),
            // The member's own error: the caller of a pinned dialer tries another member.
            1 if pool.is_single() || self.shared.pinned.is_some() => Err(failures.remove(0)),
            _ if untried > 0 => Err(ProxyError::new(K::AllMembersFailed)
                .detail(format!("{untried} more not tried: the deadline passed"))
                .members(failures)),
            _ => Err(ProxyError::new(K::AllMembersFailed).members(failures)),
        }
    }
}

impl Joined {
    /// The same holding `place` (and whether it waited for it).
    fn in_place(self, place: Option<(Place, bool)>) -> Self {
        Self {
            place: place.map(|(place, _)| place),
            ..self
        }
    }
}

/// A connection straight to `target`.
async fn direct(
    resolver: &dyn Resolve,
    exit: &ExitTls,
    target: &Target,
    tls: Option<Alpn>,
    deadline: Instant,
    trace: Option<&Trace>,
) -> Result<Joined, ProxyError> {
    let steps = Steps {
        deadline,
        trace,
        timing: None,
    };
    let link = Link {
        resolver,
        tls: exit,
    };
    dial(link, &PoolMember::new(ProxyUrl::Direct), target, tls, steps)
        .await
        .map(|established| Joined {
            established,
            place: None,
            via: None,
            member: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::target::SystemResolver;
    use crate::transport::tls::TlsRoots;

    #[test]
    fn an_exit_is_named_by_its_own_name_else_the_proxy_s_address_else_its_source() {
        let member = |url: &str| PoolMember::new(url.parse().unwrap());
        assert_eq!(
            exit_id(&member("socks5h://trader:s3cret@exit-a.example.com:1080")),
            "exit-a.example.com:1080",
            "never the credentials"
        );
        assert_eq!(
            exit_id(&member("http://[2001:db8::1]:8080")),
            "[2001:db8::1]:8080"
        );
        // The source of a proxy's socket is not what the exchange sees.
        let sourced = member("http://10.0.0.1:3128")
            .with_source("192.0.2.7".parse().unwrap())
            .unwrap();
        assert_eq!(exit_id(&sourced), "10.0.0.1:3128");
        assert_eq!(exit_id(&member("direct://192.0.2.10")), "192.0.2.10");
        let from = member("direct://")
            .with_source("192.0.2.11".parse().unwrap())
            .unwrap();
        assert_eq!(exit_id(&from), "192.0.2.11");
        assert_eq!(exit_id(&member("direct://")), "direct");
        let named = member("socks5h://exit-a.example.com:1080")
            .with_exit("nat-gw-1")
            .unwrap();
        assert_eq!(exit_id(&named), "nat-gw-1");
        if cfg!(target_os = "linux") {
            let bound = member("direct://").with_interface("eth1").unwrap();
            assert_eq!(exit_id(&bound), "interface eth1");
        }
    }

    #[tokio::test]
    async fn a_deadline_past_before_the_first_member_tries_none_and_benches_none() {
        let tls = TlsBase::new(TlsRoots::empty().client_config().unwrap(), true);
        let members = ["socks5h://127.0.0.1:1", "socks5h://127.0.0.1:2"]
            .map(|url| url.parse::<ProxyUrl>().unwrap())
            .to_vec();
        let config = ProxyConfig::pool(members, Strategy::Failover).unwrap();
        let dialer = Route::new(
            RouteKey::Default,
            ConnectionKind::Http,
            Some(&config),
            Arc::new(SystemResolver),
            &tls,
        );
        let target = Target::new("exchange.test", 443).unwrap();
        let err = dialer
            .connect_by(&target, None, &mut Instant::now(), None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &K::Timeout(Phase::Connect), "{err}");
        assert!(
            err.to_string().contains("before any member was tried"),
            "{err}"
        );
        assert!(err.member_failures().is_empty());
        let State::Proxied(proxied) = &dialer.shared.state else {
            panic!("a pool");
        };
        assert_eq!(proxied.pool.candidates(), [0, 1], "no one benched");
    }

    #[tokio::test]
    async fn a_route_made_again_keeps_the_connection_budgets_of_its_exits() {
        let tls = TlsBase::new(TlsRoots::empty().client_config().unwrap(), true);
        let route = |urls: &[&str], session: SessionSettings| {
            let members = urls
                .iter()
                .map(|u| u.parse::<ProxyUrl>().unwrap())
                .collect();
            let config = ProxyConfig::pool(members, Strategy::Failover).unwrap();
            Route::new(
                RouteKey::Default,
                ConnectionKind::Websocket,
                Some(&config),
                Arc::new(SystemResolver),
                &tls,
            )
            .with_session(session, &RouteKey::Default, None)
        };
        let budget = SessionSettings::new().with_connect_budget(5, Duration::from_secs(10));
        let before = route(
            &[
                "socks5h://desk-a:old@127.0.0.1:1081",
                "socks5h://127.0.0.1:1082",
            ],
            budget,
        );
        let mut deadline = Instant::now();
        for id in ["127.0.0.1:1081", "127.0.0.1:1082"] {
            before.budget_place(id, id, &mut deadline).await;
        }
        let State::Proxied(proxied) = &before.shared.state else {
            panic!("a pool");
        };
        proxied
            .pool
            .cool(0, Instant::now() + Duration::from_secs(30));
        // The exit's address is what an exchange counts (and what it cooled): new
        // credentials keep both.
        let a = "127.0.0.1:1081";
        let kept = |route: &Route| {
            let budgets = route.shared.budgets.as_ref().unwrap();
            let exits = budgets.exits.lock().unwrap();
            let mut shown: Vec<String> = exits.keys().cloned().collect();
            shown.sort();
            shown
        };
        let after = route(
            &[
                "socks5h://desk-b:new@127.0.0.1:1081",
                "socks5h://127.0.0.1:1083",
            ],
            budget,
        );
        after.inherit(&before);
        let State::Proxied(now) = &after.shared.state else {
            panic!("a pool");
        };
        assert_eq!(now.pool.candidates(), [1, 0], "the exit's cooling kept");
        assert_eq!(
            kept(&after),
            [a],
            "the exit that stays, not the one removed"
        );
        let same = |x: &Route, y: &Route| {
            let x = x.shared.budgets.as_ref().unwrap().exits.lock().unwrap()[a].clone();
            let y = y.shared.budgets.as_ref().unwrap().exits.lock().unwrap()[a].clone();
            Arc::ptr_eq(&x, &y)
        };
        assert!(same(&before, &after), "the same budget, with its places");
        // Other knobs: a budget of their own.
        let other = route(
            &["socks5h://127.0.0.1:1081"],
            budget.with_connect_budget(2, Duration::from_secs(10)),
        );
        other.inherit(&before);
        assert!(kept(&other).is_empty());
    }

    #[test]
    fn a_system_route_made_again_keeps_its_proxies_cooling() {
        let tls = TlsBase::new(TlsRoots::empty().client_config().unwrap(), true);
        let settings = crate::model::proxy_settings::ProxySettings::loader()
            .env_vars([("HTTPS_PROXY", "http://desk:s3cret@proxy.test:3128")])
            .load()
            .unwrap();
        let system = settings.system_proxies().expect("the variable read");
        let route = || {
            Route::system(
                RouteKey::Default,
                ConnectionKind::Http,
                system,
                Arc::new(SystemResolver),
                &tls,
            )
        };
        let https = |route: &Route| match &route.shared.state {
            State::System(system) => system.https.clone().expect("HTTPS_PROXY"),
            _ => panic!("a system route"),
        };
        let before = route();
        let until = Instant::now() + Duration::from_secs(30);
        https(&before).pool.cool(0, until);
        let after = route();
        assert_eq!(https(&after).pool.cooling_until(0), None);
        after.inherit(&before);
        assert_eq!(https(&after).pool.cooling_until(0), Some(until));
    }
}
