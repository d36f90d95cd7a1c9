//! The proxy settings model and route resolution.
//!
//! Owns the settings types (`ProxySettings`, `ConnectionProxies`, `ProxyConfig`, the
//! validated leaves) and `get_proxy`. Every field holds an
//! already-validated type (`ProxyUrl`, `TimeoutSeconds`, `ExchangeId`), so a value built in
//! code is as valid as one loaded from a source, and nothing here mutates after construction.
//! Loading lives in [`crate::load`]; this module reads no environment and no file.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::schema::{Scalar, SettingsLeaf, parse_int};
use crate::{ExchangeId, LoadError, Loader, ProxyUrl, Settings};

/// Which kind of connection a route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionKind {
    /// REST and other HTTP requests.
    Http,
    /// WebSocket streams.
    Websocket,
}

impl ConnectionKind {
    /// Both kinds, HTTP first.
    pub const ALL: [ConnectionKind; 2] = [ConnectionKind::Http, ConnectionKind::Websocket];

    /// `"http"` or `"websocket"`, as in variable names and YAML keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Http => "http",
            ConnectionKind::Websocket => "websocket",
        }
    }
}

impl fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which entry of the settings a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteEntry {
    /// The exchange's own entry (`exchanges.<id>.<kind>`).
    Exchange,
    /// The default (`default.<kind>`).
    Default,
}

/// How long establishing one connection may take, in whole seconds from 1 to 300.
///
/// ```
/// use proxy_runtime::TimeoutSeconds;
/// assert_eq!(TimeoutSeconds::default().get(), 30);
/// assert!(TimeoutSeconds::new(0).is_err());
/// assert!(TimeoutSeconds::new(301).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeoutSeconds(u16);

/// A timeout outside 1..=300 seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timeout_seconds must be an integer from 1 to 300")]
pub struct TimeoutError;

impl TimeoutSeconds {
    /// The smallest timeout, 1 second.
    pub const MIN: u16 = 1;
    /// The largest timeout, 300 seconds.
    pub const MAX: u16 = 300;
    /// The default, 30 seconds.
    pub const DEFAULT: TimeoutSeconds = TimeoutSeconds(30);

    /// Checks that `seconds` is in 1..=300.
    pub fn new(seconds: u64) -> Result<Self, TimeoutError> {
        match u16::try_from(seconds) {
            Ok(s) if (Self::MIN..=Self::MAX).contains(&s) => Ok(Self(s)),
            _ => Err(TimeoutError),
        }
    }

    /// The number of seconds.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The timeout as a `Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl Default for TimeoutSeconds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for TimeoutSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl<'de> Deserialize<'de> for TimeoutSeconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::schema::deserialize_leaf(d)
    }
}

impl SettingsLeaf for TimeoutSeconds {
    const EXPECTED: &'static str = "an integer from 1 to 300 (seconds)";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        let i = parse_int(value).map_err(|_| TimeoutError.to_string())?;
        u64::try_from(i)
            .ok()
            .and_then(|i| TimeoutSeconds::new(i).ok())
            .ok_or_else(|| TimeoutError.to_string())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Int(i128::from(self.0))
    }
}

/// How a pool of proxies chooses the member for a new connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// The first healthy member, in the order given (`failover`, the default).
    #[default]
    Failover,
    /// The healthy members in turn, spreading new connections (`round_robin`).
    RoundRobin,
}

impl Strategy {
    /// `"failover"` or `"round_robin"`, as settings write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Failover => "failover",
            Strategy::RoundRobin => "round_robin",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SettingsLeaf for Strategy {
    const EXPECTED: &'static str = "a pool strategy: failover or round_robin";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value.to_text().to_ascii_lowercase().as_str() {
            "failover" => Ok(Strategy::Failover),
            "round_robin" => Ok(Strategy::RoundRobin),
            _ => Err(format!("expected {}", Self::EXPECTED)),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.as_str().to_owned())
    }
}

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::schema::deserialize_leaf(d)
    }
}

/// The shape of a route in the settings' sources, as its schema describes it; a
/// [`ProxyConfig`] is made from it once `url` or `urls` is known to be given, alone.
mod fields {
    use serde::Deserialize;

    use super::{Strategy, TimeoutSeconds};
    use crate::{ProxyUrl, Settings};

    #[derive(Deserialize, Settings)]
    #[serde(deny_unknown_fields)]
    #[settings(one_of("url", "urls"))]
    pub(super) struct ProxyConfig {
        /// Proxy URL, like `socks5h://user:password@proxy.example.com:1080`, or `direct://`.
        #[serde(default)]
        pub(super) url: Option<ProxyUrl>,
        /// A pool of proxy URLs (`direct://` allowed as a member), instead of `url`.
        #[serde(default)]
        pub(super) urls: Option<Vec<ProxyUrl>>,
        /// How a pool chooses a member for a new connection: failover or round_robin.
        #[serde(default)]
        pub(super) strategy: Strategy,
        /// Seconds allowed to establish a connection (TCP, proxy handshake, TLS, upgrade).
        #[serde(default)]
        pub(super) timeout_seconds: TimeoutSeconds,
    }
}

/// One route: a proxy URL (or `direct://`), or a pool of them with a [`Strategy`], and the
/// connection timeout.
///
/// `Debug` and `Display` show passwords as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Never empty.
    members: Vec<ProxyUrl>,
    pool: bool,
    strategy: Strategy,
    timeout_seconds: TimeoutSeconds,
}

/// A pool without members.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pool of proxies needs at least one member")]
pub struct EmptyPool;

impl ProxyConfig {
    /// A route through `url` with the default timeout of 30 seconds.
    pub fn new(url: ProxyUrl) -> Self {
        Self {
            members: vec![url],
            pool: false,
            strategy: Strategy::Failover,
            timeout_seconds: TimeoutSeconds::DEFAULT,
        }
    }

    /// A route through a pool of proxies (`direct://` allowed as a member), with the
    /// default timeout of 30 seconds.
    pub fn pool(urls: Vec<ProxyUrl>, strategy: Strategy) -> Result<Self, EmptyPool> {
        if urls.is_empty() {
            return Err(EmptyPool);
        }
        Ok(Self {
            members: urls,
            pool: true,
            strategy,
            timeout_seconds: TimeoutSeconds::DEFAULT,
        })
    }

    /// The same route with another timeout.
    pub fn with_timeout(self, timeout_seconds: TimeoutSeconds) -> Self {
        Self {
            timeout_seconds,
            ..self
        }
    }

    /// The proxy URL (possibly `direct://`); for a pool, its first member.
    pub fn url(&self) -> &ProxyUrl {
        &self.members[0]
    }

    /// Every member, in order: the one URL of a route that is not a pool.
    pub fn members(&self) -> &[ProxyUrl] {
        &self.members
    }

    /// Whether the route was given as a pool (`urls`), even of one member.
    pub fn is_pool(&self) -> bool {
        self.pool
    }

    /// How the pool chooses a member (`Failover` for a route that is not a pool).
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The connection timeout.
    pub fn timeout(&self) -> TimeoutSeconds {
        self.timeout_seconds
    }

    /// Whether the route is `direct://` alone (a pool with a `direct://` member is not).
    pub fn is_direct(&self) -> bool {
        !self.pool && self.members[0].is_direct()
    }
}

impl Settings for ProxyConfig {
    const OPTIONS: crate::schema::SettingsOptions = crate::schema::SettingsOptions {
        env_prefix: None,
        yaml_section: None,
        config_env: None,
    };
    fn schema() -> &'static crate::schema::Schema {
        <fields::ProxyConfig as Settings>::schema()
    }
}

impl crate::SettingsField for ProxyConfig {
    fn kind() -> crate::schema::FieldKind {
        <fields::ProxyConfig as crate::SettingsField>::kind()
    }
}

/// Reads the source shape and requires `url` or a non-empty `urls`, alone (the loader has
/// said so with the value's origin already; this holds for any other serde input too).
impl<'de> Deserialize<'de> for ProxyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let fields = fields::ProxyConfig::deserialize(d)?;
        let config = match (fields.url, fields.urls) {
            (Some(url), None) => ProxyConfig::new(url),
            (None, Some(urls)) => {
                ProxyConfig::pool(urls, fields.strategy).map_err(D::Error::custom)?
            }
            (Some(_), Some(_)) => return Err(D::Error::custom("give only one of `url`, `urls`")),
            (None, None) => return Err(D::Error::custom("missing `url` (or `urls`)")),
        };
        Ok(config.with_timeout(fields.timeout_seconds))
    }
}

impl fmt::Display for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pool {
            let members: Vec<String> = self.members.iter().map(ToString::to_string).collect();
            write!(
                f,
                "[{}] {} (timeout {})",
                members.join(", "),
                self.strategy,
                self.timeout_seconds
            )
        } else {
            write!(f, "{} (timeout {})", self.members[0], self.timeout_seconds)
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProxyConfig");
        if self.pool {
            d.field("urls", &self.members)
                .field("strategy", &self.strategy);
        } else {
            d.field("url", &self.members[0]);
        }
        d.field("timeout_seconds", &self.timeout_seconds.0).finish()
    }
}

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

    /// The route given for `kind`, if any.
    pub fn get(&self, kind: ConnectionKind) -> Option<&ProxyConfig> {
        match kind {
            ConnectionKind::Http => self.http.as_ref(),
            ConnectionKind::Websocket => self.websocket.as_ref(),
        }
    }
}

impl fmt::Display for ConnectionProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in ConnectionKind::ALL {
            if let Some(c) = self.get(kind) {
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
#[settings(
    env_prefix = "CRYPTOFEED_PROXY_",
    yaml_section = "proxy",
    config_env = "CRYPTOFEED_CONFIG"
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
    exchanges: BTreeMap<ExchangeId, ConnectionProxies>,
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

    /// The same settings with routes for one exchange.
    pub fn with_exchange(mut self, id: ExchangeId, proxies: ConnectionProxies) -> Self {
        self.exchanges.insert(id, proxies);
        self
    }

    /// Whether proxies are used at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The default routes.
    pub fn default_routes(&self) -> Option<&ConnectionProxies> {
        self.default.as_ref()
    }

    /// The per-exchange routes.
    pub fn exchanges(&self) -> &BTreeMap<ExchangeId, ConnectionProxies> {
        &self.exchanges
    }

    /// Whether any route is configured, enabled or not.
    pub fn has_routes(&self) -> bool {
        let has = |c: &ConnectionProxies| c.http.is_some() || c.websocket.is_some();
        self.default.as_ref().is_some_and(has) || self.exchanges.values().any(has)
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
        if !self.enabled {
            return None;
        }
        let own = if exchange.bytes().any(|b| b.is_ascii_uppercase()) {
            self.exchanges.get(exchange.to_ascii_lowercase().as_str())
        } else {
            self.exchanges.get(exchange)
        };
        match own.and_then(|c| c.get(kind)) {
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
    fn strategies_read_and_display_as_written() {
        use crate::schema::Scalar;
        let read = |s: &str| Strategy::from_scalar(&Scalar::Text(s.to_owned()));
        assert_eq!(read("failover"), Ok(Strategy::Failover));
        assert_eq!(read("Round_Robin"), Ok(Strategy::RoundRobin));
        assert!(
            read("random")
                .unwrap_err()
                .contains("failover or round_robin")
        );
        assert_eq!(Strategy::Failover.to_string(), "failover");
        assert_eq!(Strategy::RoundRobin.to_string(), "round_robin");
    }

    #[test]
    fn routes_display_and_debug_redacted() {
        let one = ProxyConfig::new(url("socks5h://u:canary@a:1080"))
            .with_timeout(TimeoutSeconds::new(5).unwrap());
        assert_eq!(one.to_string(), "socks5h://u:***@a:1080 (timeout 5s)");
        assert_eq!(
            format!("{one:?}"),
            "ProxyConfig { url: ProxyUrl(socks5h://u:***@a:1080), timeout_seconds: 5 }"
        );
        let pool = ProxyConfig::pool(
            vec![url("socks5h://a:1080"), url("direct://")],
            Strategy::RoundRobin,
        )
        .unwrap();
        assert_eq!(
            pool.to_string(),
            "[socks5h://a:1080, direct://] round_robin (timeout 30s)"
        );
        assert_eq!(
            format!("{pool:?}"),
            "ProxyConfig { urls: [ProxyUrl(socks5h://a:1080), ProxyUrl(direct://)], \
             strategy: RoundRobin, timeout_seconds: 30 }"
        );
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
    fn kinds_and_timeouts_display_as_written() {
        assert_eq!(ConnectionKind::Http.to_string(), "http");
        assert_eq!(ConnectionKind::Websocket.to_string(), "websocket");
        assert_eq!(TimeoutSeconds::new(7).unwrap().to_string(), "7s");
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

    #[test]
    fn timeouts() {
        assert!(TimeoutSeconds::new(0).is_err());
        assert!(TimeoutSeconds::new(301).is_err());
        assert_eq!(TimeoutSeconds::new(300).unwrap().get(), 300);
        assert_eq!(
            TimeoutSeconds::new(1).unwrap().as_duration(),
            Duration::from_secs(1)
        );
        assert!(TimeoutSeconds::from_scalar(&Scalar::Text("1.5".into())).is_err());
        assert!(TimeoutSeconds::from_scalar(&Scalar::Float(1.0)).is_err());
        assert_eq!(
            TimeoutSeconds::from_scalar(&Scalar::Text("15".into()))
                .unwrap()
                .get(),
            15
        );
    }
}
