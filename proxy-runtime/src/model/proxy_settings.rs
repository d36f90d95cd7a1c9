//! The proxy settings: whether proxies are used, the default routes and per-exchange
//! overrides, and their resolution (`get_proxy`).
//!
//! Every field holds an already-validated type (`ProxyUrl`, `TimeoutSeconds`,
//! `ExchangeId`), so a value built in code is as valid as one loaded from a source, and
//! nothing here mutates after construction. Loading is the settings framework's
//! ([`crate::settings::load`]); this module reads no environment and no file.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::exchange::{self, ExchangeId};
use super::hosts::{Claimed, HostIndex, HostPattern, url_form};
use super::http_budget::HttpBudget;
use super::key::{ConnectionKind, RouteEntry, RouteKey};
use super::reload::ReloadSettings;
use super::route::ProxyConfig;
use super::session::SessionSettings;
use super::shared::SharedSettings;
use super::system::SystemProxies;
use crate::settings::load::{
    Environment, ErrorKind, KeyPath, LoadError, Loader, Origin, Origins, SettingError,
};
use crate::settings::schema::Settings as SettingsType;
use proxy_derive::Settings;

/// The routes of one exchange (or of the default): one for HTTP, one for WebSockets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
pub struct ConnectionProxies {
    /// Route for REST / HTTP requests.
    #[serde(default)]
    http: Option<ProxyConfig>,
    /// Route for WebSocket streams.
    #[serde(default)]
    websocket: Option<ProxyConfig>,
    /// How resilient WebSocket sessions keep alive and reconnect (each knob falls back).
    #[serde(default)]
    websocket_session: Option<SessionSettings>,
    /// The weight budget of each HTTP exit (each knob falls back).
    #[serde(default)]
    http_budget: Option<HttpBudget>,
}

impl ConnectionProxies {
    /// No routes: both kinds fall back to the default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same with an HTTP route.
    pub fn with_http(self, http: ProxyConfig) -> Self {
        Self {
            http: Some(http),
            ..self
        }
    }

    /// The same with a WebSocket route.
    pub fn with_websocket(self, websocket: ProxyConfig) -> Self {
        Self {
            websocket: Some(websocket),
            ..self
        }
    }

    /// The same with session knobs (see [`SessionSettings`]).
    pub fn with_websocket_session(self, session: SessionSettings) -> Self {
        Self {
            websocket_session: Some(session),
            ..self
        }
    }

    /// The session knobs given here, if any (unresolved: see
    /// [`ProxySettings::websocket_session`]).
    pub fn websocket_session(&self) -> Option<&SessionSettings> {
        self.websocket_session.as_ref()
    }

    /// The same with budget knobs (see [`HttpBudget`]).
    pub fn with_http_budget(self, budget: HttpBudget) -> Self {
        Self {
            http_budget: Some(budget),
            ..self
        }
    }

    /// The budget knobs given here, if any (unresolved: see
    /// [`ProxySettings::http_budget`]).
    pub fn http_budget(&self) -> Option<&HttpBudget> {
        self.http_budget.as_ref()
    }

    /// The route given for `kind`, if any.
    pub fn get(&self, kind: ConnectionKind) -> Option<&ProxyConfig> {
        route_of_kind(&self.http, &self.websocket, kind)
    }
}

/// The settings of one exchange: its routes, one for HTTP and one for WebSockets, and the
/// target hosts it claims for the clients that choose their route by host
/// ([`ProxyInjector::http_client_by_host`](crate::ProxyInjector::http_client_by_host)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
pub struct ExchangeProxies {
    /// Route for REST / HTTP requests.
    #[serde(default)]
    http: Option<ProxyConfig>,
    /// Route for WebSocket streams.
    #[serde(default)]
    websocket: Option<ProxyConfig>,
    /// How resilient WebSocket sessions keep alive and reconnect (each knob falls back).
    #[serde(default)]
    websocket_session: Option<SessionSettings>,
    /// The weight budget of each HTTP exit (each knob falls back).
    #[serde(default)]
    http_budget: Option<HttpBudget>,
    /// Target hosts routed as this exchange by host: names, IPs, or `*.suffix` patterns.
    #[serde(default)]
    hosts: Vec<HostPattern>,
}

impl ExchangeProxies {
    /// No routes and no hosts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same with an HTTP route.
    pub fn with_http(self, http: ProxyConfig) -> Self {
        Self {
            http: Some(http),
            ..self
        }
    }

    /// The same with a WebSocket route.
    pub fn with_websocket(self, websocket: ProxyConfig) -> Self {
        Self {
            websocket: Some(websocket),
            ..self
        }
    }

    /// The same claiming `hosts` (beside those it claims already).
    pub fn with_hosts(mut self, hosts: impl IntoIterator<Item = HostPattern>) -> Self {
        self.hosts.extend(hosts);
        self
    }

    /// The same with session knobs (see [`SessionSettings`]).
    pub fn with_websocket_session(self, session: SessionSettings) -> Self {
        Self {
            websocket_session: Some(session),
            ..self
        }
    }

    /// The session knobs given here, if any (unresolved: see
    /// [`ProxySettings::websocket_session`]).
    pub fn websocket_session(&self) -> Option<&SessionSettings> {
        self.websocket_session.as_ref()
    }

    /// The same with budget knobs (see [`HttpBudget`]).
    pub fn with_http_budget(self, budget: HttpBudget) -> Self {
        Self {
            http_budget: Some(budget),
            ..self
        }
    }

    /// The budget knobs given here, if any (unresolved: see
    /// [`ProxySettings::http_budget`]).
    pub fn http_budget(&self) -> Option<&HttpBudget> {
        self.http_budget.as_ref()
    }

    /// The route given for `kind`, if any.
    pub fn get(&self, kind: ConnectionKind) -> Option<&ProxyConfig> {
        route_of_kind(&self.http, &self.websocket, kind)
    }

    /// The target hosts this exchange claims, as listed.
    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    /// Where an exchange's `hosts` sit in the settings: the path
    /// [`Origins`](crate::load::Origins) knows their origin by.
    pub fn hosts_path(exchange: &ExchangeId) -> KeyPath {
        KeyPath::from_keys(["exchanges", exchange.as_str(), "hosts"])
    }
}

/// Routes alone, for an exchange that claims no hosts.
impl From<ConnectionProxies> for ExchangeProxies {
    fn from(routes: ConnectionProxies) -> Self {
        Self {
            http: routes.http,
            websocket: routes.websocket,
            websocket_session: routes.websocket_session,
            http_budget: routes.http_budget,
            hosts: Vec::new(),
        }
    }
}

/// The route of `kind` among the two an entry holds (the default's, or an exchange's).
fn route_of_kind<'a>(
    http: &'a Option<ProxyConfig>,
    websocket: &'a Option<ProxyConfig>,
    kind: ConnectionKind,
) -> Option<&'a ProxyConfig> {
    match kind {
        ConnectionKind::Http => http.as_ref(),
        ConnectionKind::Websocket => websocket.as_ref(),
    }
}

/// `http: ..., websocket: ...` of the routes given, or `(no routes)`.
fn write_routes(
    f: &mut fmt::Formatter<'_>,
    http: &Option<ProxyConfig>,
    websocket: &Option<ProxyConfig>,
) -> fmt::Result {
    let mut first = true;
    for kind in ConnectionKind::ALL {
        if let Some(c) = route_of_kind(http, websocket, kind) {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "{kind}: {c}")?;
            first = false;
        }
    }
    if first {
        f.write_str("(no routes)")?;
    }
    Ok(())
}

impl fmt::Display for ExchangeProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_routes(f, &self.http, &self.websocket)?;
        if !self.hosts.is_empty() {
            let hosts: Vec<String> = self.hosts.iter().map(ToString::to_string).collect();
            write!(f, ", hosts: {}", hosts.join(" "))?;
        }
        Ok(())
    }
}

impl fmt::Display for ConnectionProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_routes(f, &self.http, &self.websocket)
    }
}

/// All proxy settings: whether proxies are used, the default routes and per-exchange
/// overrides.
///
/// Load them with [`ProxySettings::load`] (environment and `CRYPTOFEED_CONFIG`) or
/// [`ProxySettings::loader`]; build them in code with the `with_*` methods.
///
/// ```
/// use proxy_runtime::{ConnectionKind, ProxySettings};
/// let settings = ProxySettings::loader()
///     .env_vars([
///         ("CRYPTOFEED_PROXY_ENABLED", "true"),
///         ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://proxy:1080"),
///         ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", "http://binance-proxy:8080"),
///     ])
///     .load()?;
/// let route = settings.get_proxy("binance", ConnectionKind::Http).unwrap();
/// assert_eq!(route.url().to_string(), "http://binance-proxy:8080");
/// let route = settings.get_proxy("coinbase", ConnectionKind::Http).unwrap();
/// assert_eq!(route.url().to_string(), "socks5h://proxy:1080");
/// assert!(settings.get_proxy("coinbase", ConnectionKind::Websocket).is_none());
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
#[settings(
    env_prefix = "CRYPTOFEED_PROXY_",
    yaml_section = "proxy",
    config_env = "CRYPTOFEED_CONFIG",
    complete = "complete"
)]
pub struct ProxySettings {
    /// Whether proxies are used at all; when false every connection is direct.
    #[serde(default)]
    enabled: bool,
    /// Routes for every exchange without an entry of its own.
    #[serde(default)]
    default: Option<ConnectionProxies>,
    /// Per-exchange routes, keyed by exchange id.
    #[serde(default)]
    exchanges: BTreeMap<ExchangeId, ExchangeProxies>,
    /// Whether HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY route what the settings leave unset.
    #[serde(default = "yes")]
    system: bool,
    /// The store that processes share exit state through (Redis); none: each keeps its own.
    #[serde(default)]
    shared: SharedSettings,
    /// When the settings are read again while the process runs (a watch of the file).
    #[serde(default)]
    reload: ReloadSettings,
    /// What the system's proxy variables said, when they are in force (read at load).
    #[serde(skip)]
    system_proxies: Option<SystemProxies>,
}

fn yes() -> bool {
    true
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            default: None,
            exchanges: BTreeMap::new(),
            system: true,
            shared: SharedSettings::default(),
            reload: ReloadSettings::default(),
            system_proxies: None,
        }
    }
}

/// What no single field checks: that no two exchanges claim one host; then the system's
/// proxy variables, when they are in force: `system` true, and `enabled` true, or set by
/// no source in settings that configure no route (an explicit `enabled: false` keeps
/// everything direct, and routes configured but not enabled stay off: their `direct://`
/// or proxy is what was meant, not the variables').
fn complete(
    settings: &mut ProxySettings,
    env: &Environment<'_>,
    origins: &mut Origins,
) -> Result<(), Vec<SettingError>> {
    let mut errors: Vec<SettingError> = settings
        .host_conflicts()
        .into_iter()
        .map(|claimed| {
            let path = ExchangeProxies::hosts_path(&claimed.second);
            let mut entry = path.clone();
            entry.push(claimed.index.to_string());
            let origin = origins
                .at(&entry)
                .or_else(|| origins.at(&path))
                .cloned()
                .unwrap_or(Origin::Settings { path });
            SettingError::new(
                origin,
                ErrorKind::Invalid,
                format!(
                    "`{}` is listed in the hosts of both `{}` and `{}`: a host routes as one exchange",
                    claimed.pattern, claimed.first, claimed.second
                ),
            )
        })
        .collect();
    errors.extend(settings.session_problems(origins));
    let enabled_given = origins.at(&ProxySettings::enabled_path()).is_some();
    if settings.system && (settings.enabled || (!enabled_given && !settings.has_routes())) {
        match SystemProxies::read(env, origins) {
            Ok(system) => settings.system_proxies = system,
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl ProxySettings {
    /// Settings with proxies enabled or not, and no routes.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    /// Loads settings from the process environment and the YAML file named by
    /// `CRYPTOFEED_CONFIG`, if set.
    pub fn load() -> Result<Self, LoadError> {
        Loader::new().process_env().load()
    }

    /// A loader for these settings, to choose sources explicitly.
    pub fn loader() -> Loader<Self> {
        Loader::new()
    }

    /// The same settings with default routes.
    pub fn with_default(self, default: ConnectionProxies) -> Self {
        Self {
            default: Some(default),
            ..self
        }
    }

    /// The same settings with routes (and hosts) for one exchange: a
    /// [`ConnectionProxies`] or an [`ExchangeProxies`].
    ///
    /// Settings built in code are used as given: where two exchanges claim one host, the
    /// first in id order takes it (a load rejects such settings instead).
    pub fn with_exchange(mut self, id: ExchangeId, proxies: impl Into<ExchangeProxies>) -> Self {
        self.exchanges.insert(id, proxies.into());
        self
    }

    /// Whether proxies are used at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The system's proxy variables, when they route what these settings leave unset:
    /// read at load when `system` is true (the default) and `enabled` is true or set by
    /// no source. `None` for settings built in code, which are used exactly as given.
    /// [`get_proxy`](Self::get_proxy) answers for the settings' own routes only: a system
    /// route depends on each target (its scheme, `NO_PROXY`).
    pub fn system_proxies(&self) -> Option<&SystemProxies> {
        self.system_proxies.as_ref()
    }

    /// Where `enabled` sits in the settings: the path
    /// [`Origins`](crate::load::Origins) knows its origin by.
    pub fn enabled_path() -> KeyPath {
        KeyPath::from_keys(["enabled"])
    }

    /// The default routes.
    pub fn default_routes(&self) -> Option<&ConnectionProxies> {
        self.default.as_ref()
    }

    /// The per-exchange settings.
    pub fn exchanges(&self) -> &BTreeMap<ExchangeId, ExchangeProxies> {
        &self.exchanges
    }

    /// Whether any route is configured, enabled or not.
    pub fn has_routes(&self) -> bool {
        let any = |http: &Option<ProxyConfig>, websocket: &Option<ProxyConfig>| {
            http.is_some() || websocket.is_some()
        };
        self.default
            .as_ref()
            .is_some_and(|c| any(&c.http, &c.websocket))
            || self.exchanges.values().any(|c| any(&c.http, &c.websocket))
    }

    /// The session knobs of `exchange`'s resilient WebSocket sessions, resolved knob by
    /// knob: the exchange's own entry, else the default's, else the built-in value. They
    /// apply whether or not proxies are enabled (a direct stream keeps alive too). An id
    /// that is not an exchange's gets the default's.
    pub fn websocket_session(&self, exchange: &str) -> SessionSettings {
        let own = self.exchanges.get(exchange::lookup_form(exchange).as_ref());
        self.session_of(own)
    }

    /// [`websocket_session`](Self::websocket_session) of a route key.
    pub(crate) fn session_for(&self, key: &RouteKey) -> SessionSettings {
        self.session_of(key.exchange().and_then(|id| self.exchanges.get(id)))
    }

    fn session_of(&self, own: Option<&ExchangeProxies>) -> SessionSettings {
        let default = self
            .default
            .as_ref()
            .and_then(|d| d.websocket_session)
            .unwrap_or_default();
        own.and_then(|c| c.websocket_session)
            .map_or(default, |own| own.or(&default))
    }

    /// The weight budget of `exchange`'s HTTP exits, resolved knob by knob: the
    /// exchange's own entry, else the default's. It applies whether or not proxies are
    /// enabled (a direct route has one exit, this host). An id that is not an exchange's
    /// gets the default's.
    pub fn http_budget(&self, exchange: &str) -> HttpBudget {
        let own = self.exchanges.get(exchange::lookup_form(exchange).as_ref());
        self.budget_of(own)
    }

    /// The store that processes share exit state through ([`SharedSettings`]).
    pub fn shared(&self) -> &SharedSettings {
        &self.shared
    }

    /// The same sharing exit state as `shared` says.
    pub fn with_shared(self, shared: SharedSettings) -> Self {
        Self { shared, ..self }
    }

    /// When the settings are read again while the process runs ([`ReloadSettings`]).
    pub fn reload(&self) -> &ReloadSettings {
        &self.reload
    }

    /// The same reloading as `reload` says.
    pub fn with_reload(self, reload: ReloadSettings) -> Self {
        Self { reload, ..self }
    }

    /// [`http_budget`](Self::http_budget) of a route key.
    pub(crate) fn budget_for(&self, key: &RouteKey) -> HttpBudget {
        self.budget_of(key.exchange().and_then(|id| self.exchanges.get(id)))
    }

    fn budget_of(&self, own: Option<&ExchangeProxies>) -> HttpBudget {
        let default = self
            .default
            .as_ref()
            .and_then(|d| d.http_budget.clone())
            .unwrap_or_default();
        match own.and_then(|c| c.http_budget.clone()) {
            Some(own) => own.or(&default),
            None => default,
        }
    }

    /// Every entry's session and budget knobs that contradict each other once resolved,
    /// reported at the entry (the default's, or an exchange's whose own knobs take part).
    fn session_problems(&self, origins: &Origins) -> Vec<SettingError> {
        let mut entries = vec![
            (KeyPath::from_keys(["shared"]), self.shared.problems()),
            (
                KeyPath::from_keys(["default", "websocket_session"]),
                self.session_of(None).problems(),
            ),
            (
                KeyPath::from_keys(["default", "http_budget"]),
                self.budget_of(None).problems(),
            ),
        ];
        for (id, proxies) in &self.exchanges {
            if proxies.websocket_session.is_some() {
                entries.push((
                    KeyPath::from_keys(["exchanges", id.as_str(), "websocket_session"]),
                    self.session_of(Some(proxies)).problems(),
                ));
            }
            if proxies.http_budget.is_some() {
                entries.push((
                    KeyPath::from_keys(["exchanges", id.as_str(), "http_budget"]),
                    self.budget_of(Some(proxies)).problems(),
                ));
            }
        }
        let mut errors = Vec::new();
        for (path, problems) in entries {
            for problem in problems {
                // Where the knob the message starts with was given; else any knob of the
                // entry; else the entry itself.
                let mut knob = path.clone();
                knob.push(problem.split(' ').next().unwrap_or_default());
                let origin = origins
                    .at(&knob)
                    .or_else(|| {
                        origins
                            .iter()
                            .find(|(p, _)| p.keys().starts_with(path.keys()))
                            .map(|(_, o)| o)
                    })
                    .cloned()
                    .unwrap_or(Origin::Settings { path: path.clone() });
                errors.push(SettingError::new(origin, ErrorKind::Invalid, problem));
            }
        }
        errors
    }

    /// The index of every exchange's `hosts`.
    pub(crate) fn host_index(&self) -> HostIndex {
        self.index_hosts().0
    }

    /// The patterns that a second exchange lists too.
    fn host_conflicts(&self) -> Vec<Claimed> {
        self.index_hosts().1
    }

    fn index_hosts(&self) -> (HostIndex, Vec<Claimed>) {
        HostIndex::new(
            self.exchanges
                .iter()
                .map(|(id, proxies)| (id, proxies.hosts())),
        )
    }

    /// The exchange whose `hosts` claim `host` (a URL's host: a name, an IPv4 address, or
    /// an IPv6 address in brackets; compared in the form `url` writes it, so `127.1` is
    /// `127.0.0.1`), the most specific pattern first: an exact name, then
    /// the longest `*.suffix`. `None` when no exchange claims it: such a target takes the
    /// default route. Each call indexes the hosts anew (to look one host up); clients
    /// routed by host keep the index their injector made.
    ///
    /// ```
    /// use proxy_runtime::ProxySettings;
    /// let settings = ProxySettings::loader()
    ///     .env_vars([("CRYPTOFEED_PROXY_EXCHANGES__COINBASE__HOSTS", r#"["*.coinbase.com"]"#)])
    ///     .load()?;
    /// let exchange = settings.exchange_for_host("api.exchange.coinbase.com");
    /// assert_eq!(exchange.map(|id| id.as_str()), Some("coinbase"));
    /// assert_eq!(settings.exchange_for_host("api.binance.com"), None);
    /// # Ok::<(), proxy_runtime::LoadError>(())
    /// ```
    pub fn exchange_for_host(&self, host: &str) -> Option<&ExchangeId> {
        let host = url_form(host)?;
        let index = self.host_index();
        let id = index.exchange_for(&host)?;
        self.exchanges.get_key_value(id).map(|(id, _)| id)
    }

    /// The warning an operator should see when the settings send every connection direct
    /// without saying so: routes configured while proxies are disabled, or proxies
    /// enabled with no route at all. `enabled` names the `enabled` setting (the key, or
    /// the variable). `None` when the settings do neither.
    pub(crate) fn inert_warning(&self, enabled: &str) -> Option<String> {
        match (self.enabled, self.has_routes()) {
            (false, true) => Some(format!(
                "proxy routes are configured but proxies are disabled (`{enabled}` is not true): every connection goes direct"
            )),
            (true, false) if self.system_proxies.is_none() => Some(format!(
                "proxies are enabled (`{enabled}`) but no route is configured: every connection goes direct"
            )),
            _ => None,
        }
    }

    /// A warning for each settings file that was read and gave no proxy setting (no
    /// `proxy:` section, nothing under it, or an empty file): the settings meant to be
    /// there are not.
    pub fn file_warnings(origins: &Origins) -> Vec<String> {
        let section = <Self as SettingsType>::OPTIONS
            .yaml_section
            .unwrap_or("proxy");
        origins
            .files_without_values()
            .into_iter()
            .map(|file| {
                format!(
                    "{file} gives no proxy setting (no `{section}:` section, or nothing under it): only the variables and the defaults are in force"
                )
            })
            .collect()
    }

    /// The proxy for `exchange`'s connections of `kind`, or `None` for a direct connection.
    ///
    /// Rules, in order: proxies disabled → direct; the exchange's own entry for `kind` →
    /// that route (`direct://` → direct); the default's entry for `kind` → that route
    /// (`direct://` → direct); else direct. An entry is taken whole: an exchange's own
    /// `http` does not inherit the default's timeout. The exchange id is matched
    /// case-insensitively.
    pub fn get_proxy(&self, exchange: &str, kind: ConnectionKind) -> Option<&ProxyConfig> {
        self.route(exchange, kind)
            .filter(|config| !config.is_direct())
    }

    /// Like [`get_proxy`](Self::get_proxy), but keeps a `direct://` entry (so its timeout
    /// can be used) instead of mapping it to `None`.
    pub fn route(&self, exchange: &str, kind: ConnectionKind) -> Option<&ProxyConfig> {
        self.route_entry(exchange, kind).map(|(_, config)| config)
    }

    /// Like [`route`](Self::route), also saying which entry it came from: the exchange's
    /// own, or the default.
    pub fn route_entry(
        &self,
        exchange: &str,
        kind: ConnectionKind,
    ) -> Option<(RouteEntry, &ProxyConfig)> {
        let own = self.exchanges.get(exchange::lookup_form(exchange).as_ref());
        self.resolve(own.and_then(|c| c.get(kind)), kind)
    }

    /// The route `key`'s connections of `kind` take (a `direct://` entry kept), and which
    /// entry it came from; `None` when proxies are disabled or nothing configures one.
    pub fn route_for(
        &self,
        key: &RouteKey,
        kind: ConnectionKind,
    ) -> Option<(RouteEntry, &ProxyConfig)> {
        let own = key.exchange().and_then(|id| self.exchanges.get(id));
        self.resolve(own.and_then(|c| c.get(kind)), kind)
    }

    /// The rules of resolution, given the exchange's own route for `kind` (if any).
    fn resolve<'a>(
        &'a self,
        own: Option<&'a ProxyConfig>,
        kind: ConnectionKind,
    ) -> Option<(RouteEntry, &'a ProxyConfig)> {
        if !self.enabled {
            return None;
        }
        match own {
            Some(config) => Some((RouteEntry::Exchange, config)),
            None => self
                .default_route(kind)
                .map(|config| (RouteEntry::Default, config)),
        }
    }

    /// What an exchange without an entry of its own gets for `kind` (a `direct://` entry
    /// kept); `None` when proxies are disabled or the default has no entry for `kind`.
    pub fn default_route(&self, kind: ConnectionKind) -> Option<&ProxyConfig> {
        if !self.enabled {
            return None;
        }
        self.default.as_ref().and_then(|d| d.get(kind))
    }
}

impl fmt::Display for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proxies {}",
            if self.enabled { "enabled" } else { "disabled" }
        )?;
        if let Some(d) = &self.default {
            write!(f, "; default: {d}")?;
        }
        for (id, c) in &self.exchanges {
            write!(f, "; {id}: {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::proxy_url::ProxyUrl;
    use crate::model::route::Strategy;
    use crate::model::timeout::TimeoutSeconds;

    fn url(s: &str) -> ProxyUrl {
        s.parse().unwrap()
    }

    fn seed_settings() -> ProxySettings {
        ProxySettings::new(true)
            .with_default(
                ConnectionProxies::new().with_http(ProxyConfig::new(url("socks5://default:1080"))),
            )
            .with_exchange(
                ExchangeId::new("binance").unwrap(),
                ConnectionProxies::new().with_http(ProxyConfig::new(url("http://binance:8080"))),
            )
    }

    #[test]
    fn routes_of_both_kinds_display_redacted() {
        let one = ProxyConfig::new(url("socks5h://u:canary@a:1080"))
            .with_timeout(TimeoutSeconds::new(5).unwrap());
        let pool = ProxyConfig::pool(
            vec![url("socks5h://a:1080"), url("direct://")],
            Strategy::RoundRobin,
        )
        .unwrap();
        let both = ConnectionProxies::new()
            .with_http(one.clone())
            .with_websocket(pool);
        assert_eq!(
            both.to_string(),
            "http: socks5h://u:***@a:1080 (timeout 5s), \
             websocket: [socks5h://a:1080, direct://] round_robin (timeout 30s)"
        );
        let ws_only = ConnectionProxies::new().with_websocket(one);
        assert_eq!(
            ws_only.to_string(),
            "websocket: socks5h://u:***@a:1080 (timeout 5s)"
        );
        assert_eq!(ConnectionProxies::new().to_string(), "(no routes)");
    }

    #[test]
    fn settings_display_redacted() {
        let s = seed_settings().with_exchange(
            ExchangeId::new("kraken").unwrap(),
            ConnectionProxies::new().with_websocket(ProxyConfig::new(url("socks5h://u:pw@k:1"))),
        );
        assert_eq!(
            s.to_string(),
            "proxies enabled; default: http: socks5://default:1080 (timeout 30s); \
             binance: http: http://binance:8080 (timeout 30s); \
             kraken: websocket: socks5h://u:***@k:1 (timeout 30s)"
        );
        assert_eq!(ProxySettings::new(false).to_string(), "proxies disabled");
    }

    #[test]
    fn accessors_give_what_was_built() {
        let s = seed_settings();
        assert!(s.enabled());
        let default = s.default_routes().unwrap();
        assert_eq!(
            default.get(ConnectionKind::Http).unwrap().url().to_string(),
            "socks5://default:1080"
        );
        assert_eq!(ProxySettings::new(true).default_routes(), None);
        assert!(s.has_routes());
        assert!(!ProxySettings::new(true).has_routes());
        let empty = ProxySettings::new(false)
            .with_default(ConnectionProxies::new())
            .with_exchange(ExchangeId::new("kraken").unwrap(), ConnectionProxies::new());
        assert!(!empty.has_routes(), "entries without a route are no routes");
        let ws = ConnectionProxies::new().with_websocket(ProxyConfig::new(url("direct://")));
        assert!(
            ProxySettings::new(false)
                .with_default(ws.clone())
                .has_routes()
        );
        let own = ProxySettings::new(false).with_exchange(ExchangeId::new("kraken").unwrap(), ws);
        assert!(own.has_routes());
    }

    #[test]
    fn an_exchange_s_settings_hold_what_each_builder_step_gave() {
        let http = ProxyConfig::new(url("socks5h://h:1"));
        let ws = ProxyConfig::new(url("socks5h://w:2"));
        let hosts = [
            HostPattern::new("api.x.com").unwrap(),
            HostPattern::new("*.x.com").unwrap(),
        ];
        let e = ExchangeProxies::new()
            .with_http(http.clone())
            .with_websocket(ws.clone())
            .with_hosts(hosts[..1].iter().cloned())
            .with_hosts(hosts[1..].iter().cloned());
        assert_eq!(e.get(ConnectionKind::Http), Some(&http));
        assert_eq!(e.get(ConnectionKind::Websocket), Some(&ws));
        assert_eq!(e.hosts(), hosts);
        // Each step keeps what the others gave.
        let reordered = ExchangeProxies::new()
            .with_hosts(hosts.iter().cloned())
            .with_websocket(ws.clone())
            .with_http(http.clone());
        assert_eq!(reordered, e);
        assert_eq!(
            e.to_string(),
            "http: socks5h://h:1 (timeout 30s), websocket: socks5h://w:2 (timeout 30s), hosts: api.x.com *.x.com"
        );
        let from_routes = ExchangeProxies::from(ConnectionProxies::new().with_http(http.clone()));
        assert_eq!(from_routes, ExchangeProxies::new().with_http(http));
        assert_eq!(
            ExchangeProxies::hosts_path(&ExchangeId::new("okx").unwrap()).dotted(),
            "exchanges.okx.hosts"
        );
    }

    #[test]
    fn seed_resolution() {
        let s = seed_settings();
        let http = ConnectionKind::Http;
        assert_eq!(
            s.get_proxy("binance", http).unwrap().url(),
            &url("http://binance:8080")
        );
        assert_eq!(
            s.get_proxy("coinbase", http).unwrap().url(),
            &url("socks5://default:1080")
        );
        assert_eq!(
            s.get_proxy("BINANCE", http).unwrap().url(),
            &url("http://binance:8080")
        );
        let disabled = ProxySettings {
            enabled: false,
            ..s
        };
        assert!(disabled.get_proxy("binance", http).is_none());
        assert!(disabled.get_proxy("coinbase", http).is_none());
    }

    #[test]
    fn websocket_only_override_inherits_default_http() {
        let s = ProxySettings::new(true)
            .with_default(
                ConnectionProxies::new()
                    .with_http(ProxyConfig::new(url("socks5h://d:1")))
                    .with_websocket(ProxyConfig::new(url("socks5h://d:2"))),
            )
            .with_exchange(
                ExchangeId::new("kraken").unwrap(),
                ConnectionProxies::new().with_websocket(
                    ProxyConfig::new(url("socks5h://k:3"))
                        .with_timeout(TimeoutSeconds::new(5).unwrap()),
                ),
            );
        assert_eq!(
            s.get_proxy("kraken", ConnectionKind::Http).unwrap().url(),
            &url("socks5h://d:1")
        );
        let ws = s.get_proxy("kraken", ConnectionKind::Websocket).unwrap();
        assert_eq!(ws.url(), &url("socks5h://k:3"));
        assert_eq!(ws.timeout().get(), 5);
    }

    #[test]
    fn a_key_resolves_as_its_id_does_and_says_whose_entry_it_took() {
        let s = seed_settings();
        let http = ConnectionKind::Http;
        let binance = RouteKey::Exchange(ExchangeId::new("binance").unwrap());
        let okx = RouteKey::Exchange(ExchangeId::new("okx").unwrap());
        let (entry, route) = s.route_for(&binance, http).unwrap();
        assert_eq!(entry, RouteEntry::Exchange);
        assert_eq!(route.url(), &url("http://binance:8080"));
        assert_eq!(binance.owner(entry), binance);
        let (entry, route) = s.route_for(&okx, http).unwrap();
        assert_eq!(entry, RouteEntry::Default);
        assert_eq!(route.url(), &url("socks5://default:1080"));
        assert_eq!(okx.owner(entry), RouteKey::Default);
        let (entry, _) = s.route_for(&RouteKey::Default, http).unwrap();
        assert_eq!(entry, RouteEntry::Default);
        assert!(s.route_for(&okx, ConnectionKind::Websocket).is_none());
        let disabled = ProxySettings {
            enabled: false,
            ..s.clone()
        };
        assert!(disabled.route_for(&binance, http).is_none());
        assert!(disabled.route_for(&RouteKey::Default, http).is_none());
        // The same answers as by name, whatever its letter case.
        for name in ["binance", "BINANCE", "okx", "Okx"] {
            let key = RouteKey::Exchange(ExchangeId::new(name).unwrap());
            assert_eq!(s.route_for(&key, http), s.route_entry(name, http), "{name}");
        }
    }

    #[test]
    fn settings_that_send_everything_direct_unsaid_are_warned_about_naming_the_setting() {
        let routes = seed_settings();
        assert_eq!(
            routes.inert_warning("enabled"),
            None,
            "enabled, with routes"
        );
        let disabled = ProxySettings {
            enabled: false,
            ..routes
        };
        assert_eq!(
            disabled.inert_warning("MY_ENABLED").as_deref(),
            Some(
                "proxy routes are configured but proxies are disabled (`MY_ENABLED` is not true): every connection goes direct"
            )
        );
        assert_eq!(
            ProxySettings::new(true)
                .inert_warning("MY_ENABLED")
                .as_deref(),
            Some(
                "proxies are enabled (`MY_ENABLED`) but no route is configured: every connection goes direct"
            )
        );
        assert_eq!(ProxySettings::new(false).inert_warning("enabled"), None);
        assert_eq!(ProxySettings::enabled_path().dotted(), "enabled");
        // Enabled with no route of its own, but the system's variables route it.
        let system = ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                ("HTTPS_PROXY", "http://corp:3128"),
            ])
            .load()
            .unwrap();
        assert!(system.system_proxies().is_some());
        assert_eq!(system.inert_warning("enabled"), None);
    }

    #[test]
    fn a_settings_file_that_gives_nothing_is_warned_about() {
        for text in ["", "other: 1\n", "proxy:\n", "proxy: {}\n"] {
            let (_, origins) = ProxySettings::loader()
                .yaml_str("empty.yaml", text)
                .load_with_origins()
                .unwrap();
            assert_eq!(
                ProxySettings::file_warnings(&origins),
                [
                    "empty.yaml gives no proxy setting (no `proxy:` section, or nothing under it): only the variables and the defaults are in force"
                ],
                "{text:?}"
            );
        }
        let (_, origins) = ProxySettings::loader()
            .yaml_str("some.yaml", "proxy:\n  enabled: false\n")
            .load_with_origins()
            .unwrap();
        assert!(ProxySettings::file_warnings(&origins).is_empty());
        let (_, origins) = ProxySettings::loader()
            .env_vars([("CRYPTOFEED_PROXY_ENABLED", "true")])
            .load_with_origins()
            .unwrap();
        assert!(ProxySettings::file_warnings(&origins).is_empty(), "no file");
        // A file whose every value a variable overrides gave them all the same.
        let (_, origins) = ProxySettings::loader()
            .yaml_str("some.yaml", "proxy:\n  enabled: false\n")
            .env_vars([("CRYPTOFEED_PROXY_ENABLED", "true")])
            .load_with_origins()
            .unwrap();
        assert!(
            ProxySettings::file_warnings(&origins).is_empty(),
            "overridden"
        );
    }

    #[test]
    fn direct_stops_the_fallback() {
        let s = seed_settings().with_exchange(
            ExchangeId::new("coinbase").unwrap(),
            ConnectionProxies::new().with_http(ProxyConfig::new(ProxyUrl::Direct)),
        );
        assert!(s.get_proxy("coinbase", ConnectionKind::Http).is_none());
        assert!(
            s.route("coinbase", ConnectionKind::Http)
                .unwrap()
                .url()
                .is_direct()
        );
        assert!(s.get_proxy("okx", ConnectionKind::Http).is_some());
    }
}
