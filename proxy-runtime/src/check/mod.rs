//! What `proxy-check` reports: where each exchange's HTTP and WebSocket traffic goes and
//! where each route was set, warnings an operator should see before deploying, and (in
//! [`probe`]) real connections through each route.
//!
//! Builds the reports from loaded settings; [`render`] is the one place that turns them
//! into text, as a table for people or as JSON (through serde) for tools. Shows URLs
//! redacted only. It is public so that an application can print the same report when it
//! starts.

pub mod probe;
pub mod render;
pub mod shared;

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::model::exchange::ExchangeId;
use crate::model::http_budget::HttpBudget;
use crate::model::key::{ConnectionKind, RouteField, RouteKey};
use crate::model::member::PoolMember;
use crate::model::proxy_settings::ProxySettings;
use crate::model::proxy_url::ProxyEndpoint;
use crate::model::route::ProxyConfig;
use crate::model::session::SessionSettings;
use crate::model::system::{SystemProxies, SystemProxy};
use crate::settings::load::{Origin, Origins};

/// Where one kind of traffic goes through a proxy (a direct connection has no `Route`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The proxy URL with the password shown as `***`.
    pub url: String,
    /// The scheme, like `socks5h`.
    pub scheme: &'static str,
    /// The proxy's host; an IPv6 address without brackets. `None` when the route is a
    /// pool whose first member is `direct://`.
    pub host: Option<String>,
    /// The proxy's port (`None` as `host` is).
    pub port: Option<u16>,
    /// The user name, if the URL has credentials.
    pub username: Option<String>,
    /// The connection timeout in seconds.
    pub timeout_seconds: u16,
    /// Where the route was set: the variable, or the file, line and key of its URL (and of
    /// its timeout, when that was set elsewhere).
    pub source: String,
    /// For a pool: how it chooses a member (`failover`, `round_robin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    /// For a pool: every member, in order; the route's own fields describe the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
}

/// One member of a pool: a route's fields without its timeout (the pool's). A
/// `direct://` member has scheme `direct` and no host or port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The proxy URL with the password shown as `***`, or `direct://`.
    pub url: String,
    /// The scheme, like `socks5h`, or `direct`.
    pub scheme: &'static str,
    /// The proxy's host; an IPv6 address without brackets.
    pub host: Option<String>,
    /// The proxy's port.
    pub port: Option<u16>,
    /// The user name, if the URL has credentials.
    pub username: Option<String>,
    /// Where the member was set.
    pub source: String,
    /// The local address its sockets leave from (`source`, or `direct://ADDRESS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_address: Option<String>,
    /// The network interface its sockets are bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The names of its CONNECT headers (their values are never shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_headers: Vec<String>,
    /// The member as the table shows it: the URL, `from ADDRESS`, `on INTERFACE`, and its
    /// CONNECT headers with their values as `***`.
    #[serde(skip)]
    pub shown: String,
}

impl Member {
    fn new(member: &PoolMember, source: String) -> Self {
        let url = member.url();
        let endpoint = url.endpoint();
        Member {
            url: url.to_string(),
            scheme: endpoint.map_or("direct", |e| e.scheme().as_str()),
            host: endpoint.map(|e| e.host().bare().into_owned()),
            port: endpoint.map(ProxyEndpoint::port),
            username: endpoint.and_then(|e| e.username().map(str::to_owned)),
            source,
            local_address: member.source().map(|ip| ip.to_string()),
            interface: member.interface().map(str::to_owned),
            connect_headers: member
                .connect_headers()
                .iter()
                .map(|(name, _)| name.to_string())
                .collect(),
            shown: member.to_string(),
        }
    }
}

impl Route {
    /// What an operator should know of the route, member by member: a scheme that resolves
    /// the target's name here (local DNS sees which exchange is used), and a `direct://`
    /// member (connections through it leave from this host's own address).
    fn warnings(&self, key: &RouteKey, kind: ConnectionKind) -> Vec<String> {
        let first = [(self.url.as_str(), self.scheme)];
        let each: Vec<(&str, &'static str)> = match &self.members {
            Some(members) => members.iter().map(|m| (m.url.as_str(), m.scheme)).collect(),
            None => first.to_vec(),
        };
        let pool = self.members.is_some();
        let mut out = Vec::new();
        for (url, scheme) in each {
            // Which member, in a pool; a route of one says it by its scheme.
            let which = if pool {
                format!(" ({url})")
            } else {
                String::new()
            };
            let better = match scheme {
                "socks5" => "socks5h",
                "socks4" => "socks4a",
                "direct" => {
                    out.push(format!(
                        "{key} {kind}{which}: a direct:// member connects from this host's own address, not through a proxy: the exchange sees that address"
                    ));
                    continue;
                }
                _ => continue,
            };
            out.push(format!(
                "{key} {kind}{which}: {scheme}:// resolves the target's name locally, so local DNS sees which exchange is used; use {better}:// to let the proxy resolve it"
            ));
        }
        out
    }

    /// The route of `config` (`None` for `direct://` alone); `sources` gives where the
    /// route and each pool member were set.
    fn new(config: &ProxyConfig, source: String, member_sources: Vec<String>) -> Option<Self> {
        if config.is_direct() {
            return None;
        }
        let first = Member::new(&config.members()[0], source.clone());
        let members = config.is_pool().then(|| {
            config
                .members()
                .iter()
                .zip(member_sources)
                .map(|(url, source)| Member::new(url, source))
                .collect()
        });
        Some(Route {
            url: first.url,
            scheme: first.scheme,
            host: first.host,
            port: first.port,
            username: first.username,
            timeout_seconds: config.timeout().get(),
            source,
            strategy: config.is_pool().then(|| config.strategy().as_str()),
            members,
        })
    }
}

/// The routes of one exchange (or the default's); `None` is a direct connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExchangeRoutes {
    /// The exchange, or the default: what exchanges without an entry of their own get.
    #[serde(skip)]
    pub exchange: RouteKey,
    /// Where HTTP requests go.
    pub http: Option<Route>,
    /// Where WebSocket streams go.
    pub websocket: Option<Route>,
    /// The target hosts the exchange claims for clients routed by host (none for the
    /// default, which takes every host no exchange claims).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The knobs of its resilient WebSocket sessions, resolved.
    pub websocket_session: SessionReport,
    /// The weight budget of each of its HTTP exits, resolved.
    pub http_budget: BudgetReport,
}

/// The resolved weight budget of an exchange's HTTP exits, as `proxy-check` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetReport {
    /// The weight each exit may spend per window (0: no budget).
    pub weight: u32,
    /// The window, in ms (0 without a budget).
    pub window_ms: u128,
    /// The response header the exchange reports its count in, if one is read.
    pub used_weight_header: Option<String>,
}

impl BudgetReport {
    fn new(b: &HttpBudget) -> Self {
        let (weight, window) = b.weight_budget().unwrap_or((0, Duration::ZERO));
        Self {
            weight,
            window_ms: window.as_millis(),
            used_weight_header: b.used_weight_header().map(ToString::to_string),
        }
    }
}

/// The resolved knobs of an exchange's resilient WebSocket sessions, as `proxy-check`
/// shows them: milliseconds and counts, `0` for a feature turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SessionReport {
    /// Pings every this many ms.
    pub ping_interval_ms: u128,
    /// Dead after this many ms without a frame.
    pub dead_after_ms: u128,
    /// Idle after this many ms without a data message.
    pub idle_after_ms: u128,
    /// The first backoff ceiling.
    pub backoff_initial_ms: u128,
    /// The largest backoff ceiling.
    pub backoff_max_ms: u128,
    /// Attempts in a row before the session ends.
    pub max_attempts: u32,
    /// How long a connection must last to reset the attempts.
    pub stable_after_ms: u128,
    /// New connections per exit per window.
    pub connects: u32,
    /// The budget's window.
    pub window_ms: u128,
    /// A connection's planned lifetime.
    pub max_lifetime_ms: u128,
    /// The longest wait for a rotation's overlap.
    pub overlap_wait_ms: u128,
}

impl SessionReport {
    fn new(s: &SessionSettings) -> Self {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis());
        let (connects, window) = s.connect_budget().unwrap_or((0, Duration::ZERO));
        Self {
            ping_interval_ms: ms(s.ping_interval()),
            dead_after_ms: ms(s.dead_after()),
            idle_after_ms: ms(s.idle_after()),
            backoff_initial_ms: s.backoff_initial().as_millis(),
            backoff_max_ms: s.backoff_max().as_millis(),
            max_attempts: s.max_attempts().unwrap_or(0),
            stable_after_ms: s.stable_after().as_millis(),
            connects,
            window_ms: window.as_millis(),
            max_lifetime_ms: ms(s.max_lifetime()),
            overlap_wait_ms: s.overlap_wait().as_millis(),
        }
    }
}

impl ExchangeRoutes {
    /// The route of `kind`.
    pub fn get(&self, kind: ConnectionKind) -> Option<&Route> {
        match kind {
            ConnectionKind::Http => self.http.as_ref(),
            ConnectionKind::Websocket => self.websocket.as_ref(),
        }
    }
}

/// Where a configured route was set, for every route a setting decides (proxied or
/// `direct://`); routes that are direct because nothing configures them have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSource {
    /// The exchange, or the default.
    pub exchange: RouteKey,
    /// The kind of traffic.
    pub kind: ConnectionKind,
    /// Where it was set.
    pub source: String,
}

/// What `proxy-check` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether proxies are enabled.
    pub enabled: bool,
    /// Where `enabled` was set (`None`: the default).
    #[serde(skip)]
    pub enabled_source: Option<String>,
    /// The default first, then every exchange configured or asked about, by id.
    #[serde(serialize_with = "render::routes_by_exchange")]
    pub routes: Vec<ExchangeRoutes>,
    /// Where each configured route was set, in the order of `routes`.
    #[serde(skip)]
    pub sources: Vec<RouteSource>,
    /// The store processes share exit state through.
    pub shared: SharedReport,
    /// Things an operator should know before deploying.
    pub warnings: Vec<String>,
}

/// The store processes share exit state through (`shared`), as `proxy-check` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedReport {
    /// The Redis URL with the password shown as `***`; `None`: nothing is shared (each
    /// process keeps its own budgets and cooling).
    pub url: Option<String>,
    /// The prefix of every key.
    pub prefix: String,
    /// The processes expected per exit: each spends this share while the store is down.
    pub processes: u32,
    /// The deadline of each call, in ms.
    pub timeout_ms: u128,
}

impl SharedReport {
    fn new(s: &crate::model::shared::SharedSettings) -> Self {
        Self {
            url: s.url().map(ToString::to_string),
            prefix: s.prefix().to_owned(),
            processes: s.processes(),
            timeout_ms: s.timeout().as_millis(),
        }
    }
}

/// How the source of settings built in code is named.
const IN_CODE: &str = "settings given in code";

impl Report {
    /// Builds the report for every configured exchange, the exchanges in `extra`, and the
    /// default. `origins` (from [`Loader::load_with_origins`](crate::Loader::load_with_origins))
    /// says where each route was set; without it, routes are reported as given in code.
    /// `env_prefix` is used to name variables in warnings.
    pub fn new(
        settings: &ProxySettings,
        origins: Option<&Origins>,
        extra: &[ExchangeId],
        env_prefix: &str,
    ) -> Self {
        let mut keys: Vec<RouteKey> = std::iter::once(RouteKey::Default)
            .chain(settings.exchanges().keys().cloned().map(RouteKey::Exchange))
            .chain(extra.iter().cloned().map(RouteKey::Exchange))
            .collect();
        // The default first (it sorts first), then every exchange once, by id.
        keys.sort_unstable();
        keys.dedup();

        let mut routes = Vec::with_capacity(keys.len());
        let mut sources = Vec::new();
        for key in keys {
            let mut route = |kind: ConnectionKind| {
                let Some((entry, config)) = settings.route_for(&key, kind) else {
                    // Unset by the settings: the system's proxy variables' route, if any
                    // (the `https` one, which exchanges use, else the `http` one).
                    let proxies = settings.system_proxies()?;
                    let system = proxies.https().or(proxies.http())?;
                    let source = system_source(proxies, system);
                    sources.push(RouteSource {
                        exchange: key.clone(),
                        kind,
                        source: source.clone(),
                    });
                    let config = ProxyConfig::new(system.url().clone());
                    return Route::new(&config, source.clone(), vec![source]);
                };
                let owner = key.owner(entry);
                let source = source_of(origins, &owner, kind, config);
                sources.push(RouteSource {
                    exchange: key.clone(),
                    kind,
                    source: source.clone(),
                });
                let members = (0..config.members().len())
                    .map(|i| member_source(origins, &owner, kind, i))
                    .collect();
                Route::new(config, source, members)
            };
            let http = route(ConnectionKind::Http);
            let websocket = route(ConnectionKind::Websocket);
            let hosts = key
                .exchange()
                .and_then(|id| settings.exchanges().get(id))
                .map(|proxies| proxies.hosts().iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            let websocket_session = SessionReport::new(&settings.session_for(&key));
            let http_budget = BudgetReport::new(&settings.budget_for(&key));
            routes.push(ExchangeRoutes {
                exchange: key,
                http,
                websocket,
                hosts,
                websocket_session,
                http_budget,
            });
        }

        let enabled_var = format!("{}ENABLED", env_prefix.to_ascii_uppercase());
        let mut warnings: Vec<String> = settings.inert_warning(&enabled_var).into_iter().collect();
        if let Some(origins) = origins {
            warnings.extend(ProxySettings::file_warnings(origins));
        }
        for r in &routes {
            for kind in ConnectionKind::ALL {
                let Some(route) = r.get(kind) else { continue };
                warnings.extend(route.warnings(&r.exchange, kind));
            }
        }
        let enabled_source = match origins {
            Some(origins) => origins
                .at(&ProxySettings::enabled_path())
                .map(ToString::to_string),
            None => Some(IN_CODE.to_owned()),
        };
        Report {
            enabled: settings.enabled(),
            enabled_source,
            routes,
            sources,
            shared: SharedReport::new(settings.shared()),
            warnings,
        }
    }
}

/// Where the route of `owner`'s own entry for `kind` was set: its URL's origin (a pool's:
/// its first member's), and its timeout's when that came from elsewhere.
fn source_of(
    origins: Option<&Origins>,
    owner: &RouteKey,
    kind: ConnectionKind,
    config: &ProxyConfig,
) -> String {
    let Some(origins) = origins else {
        return IN_CODE.to_owned();
    };
    let first = if config.is_pool() {
        RouteField::Member(0)
    } else {
        RouteField::Url
    };
    let url = origins.at(&owner.path(kind, first));
    let mut source = url.map_or_else(|| "unknown".to_owned(), Origin::to_string);
    let timeout = origins.at(&owner.path(kind, RouteField::Timeout));
    if let Some(timeout) = timeout.filter(|t| !same_source(url, t)) {
        source.push_str(&format!("; timeout_seconds: {timeout}"));
    }
    source
}

/// Where a route the system's proxy variables give was set: the variable of `shown`, the
/// targets it serves, the other scheme's variable when that one differs, and `NO_PROXY`
/// when it exempts hosts.
fn system_source(proxies: &SystemProxies, shown: &SystemProxy) -> String {
    let scope = |proxy: Option<&SystemProxy>| {
        let https = proxies.https().is_some_and(|p| Some(p) == proxy);
        let http = proxies.http().is_some_and(|p| Some(p) == proxy);
        match (https, http) {
            (true, true) => "every target",
            (true, false) => "https:// and wss:// targets",
            _ => "http:// and ws:// targets",
        }
    };
    let mut text = format!(
        "`{}` (environment, the system's proxy variable, for {}",
        shown.var(),
        scope(Some(shown))
    );
    let other = [proxies.https(), proxies.http()]
        .into_iter()
        .flatten()
        .find(|p| *p != shown);
    if let Some(other) = other {
        let _ = write!(
            text,
            "; {} take `{}`={}",
            scope(Some(other)),
            other.var(),
            other.url()
        );
    }
    if let Some((var, list)) = proxies.no_proxy() {
        let _ = write!(text, "; {var}={list} goes direct");
    }
    text.push(')');
    text
}

/// Where member `i` of the pool of `owner`'s own entry for `kind` was set.
fn member_source(
    origins: Option<&Origins>,
    owner: &RouteKey,
    kind: ConnectionKind,
    i: usize,
) -> String {
    let Some(origins) = origins else {
        return IN_CODE.to_owned();
    };
    origins
        .at(&owner.path(kind, RouteField::Member(i)))
        .map_or_else(|| "unknown".to_owned(), Origin::to_string)
}

/// Whether two values were set by the same variable or file.
fn same_source(a: Option<&Origin>, b: &Origin) -> bool {
    match (a, b) {
        (Some(Origin::Env { var: x, .. }), Origin::Env { var: y, .. }) => x == y,
        (Some(Origin::Yaml { file: x, .. }), Origin::Yaml { file: y, .. }) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::load::Loader;

    /// Settings from `yaml` (none when empty) and `vars`.
    fn load(yaml: &str, vars: &[(&str, &str)]) -> (ProxySettings, Origins) {
        let mut loader = Loader::new().env_vars(vars.iter().copied());
        if !yaml.is_empty() {
            loader = loader.yaml_str("config.yaml", yaml);
        }
        loader.load_with_origins().unwrap()
    }

    fn json(report: &Report) -> serde_json::Value {
        serde_json::from_str(&render::json(report)).unwrap()
    }

    #[test]
    fn default_and_exchanges_with_ipv6_host_unbracketed() {
        let (s, origins) = load(
            "",
            &[
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                (
                    "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                    "socks5h://u:canary@[::1]:1080",
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
                    "direct://",
                ),
            ],
        );
        let report = Report::new(
            &s,
            Some(&origins),
            &[ExchangeId::new("kraken").unwrap()],
            "CRYPTOFEED_PROXY_",
        );
        let json = json(&report);
        let http = &json["routes"]["*"]["http"];
        assert_eq!(http["host"], "::1");
        assert_eq!(http["url"], "socks5h://u:***@[::1]:1080");
        assert_eq!(http["username"], "u");
        assert_eq!(http["timeout_seconds"], 30);
        assert_eq!(
            http["source"],
            "`CRYPTOFEED_PROXY_DEFAULT__HTTP__URL` (environment)"
        );
        assert_eq!(json["routes"]["binance"]["http"]["scheme"], "socks5h");
        assert!(json["routes"]["binance"]["websocket"].is_null());
        assert_eq!(json["routes"]["kraken"]["http"]["port"], 1080);
        assert!(report.warnings.is_empty());
        let table = render::report_table(&report);
        assert!(table.contains("* (default)"));
        assert!(!table.contains("canary") && !json.to_string().contains("canary"));
    }

    #[test]
    fn every_route_says_where_it_was_set() {
        let yaml = "proxy:\n  enabled: true\n  default:\n    http:\n      url: socks5h://file:1080\n      timeout_seconds: 9\n  exchanges:\n    okx:\n      websocket:\n        url: direct://\n";
        let (s, origins) = load(
            yaml,
            &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://env:1080")],
        );
        let report = Report::new(&s, Some(&origins), &[], "CRYPTOFEED_PROXY_");
        let json = json(&report);
        // The URL from the variable, the timeout from the file: both are named.
        assert_eq!(
            json["routes"]["okx"]["http"]["source"],
            "`CRYPTOFEED_PROXY_DEFAULT__HTTP__URL` (environment); timeout_seconds: config.yaml:6: `proxy.default.http.timeout_seconds`"
        );
        assert_eq!(
            report.enabled_source.as_deref(),
            Some("config.yaml:2: `proxy.enabled`")
        );
        let direct = report
            .sources
            .iter()
            .find(|r| r.exchange.as_str() == "okx" && r.kind == ConnectionKind::Websocket)
            .unwrap();
        assert!(
            report
                .routes
                .iter()
                .any(|r| r.exchange.as_str() == "okx" && r.websocket.is_none())
        );
        assert_eq!(
            direct.source,
            "config.yaml:10: `proxy.exchanges.okx.websocket.url`"
        );
        let table = render::report_table(&report);
        assert!(
            table.contains("proxies: enabled (set by config.yaml:2: `proxy.enabled`)"),
            "{table}"
        );
        assert!(table.contains("where each route is set:"), "{table}");
        assert!(
            table.contains("config.yaml:10: `proxy.exchanges.okx.websocket.url`"),
            "{table}"
        );

        // Settings built in code say so.
        let in_code = Report::new(&s, None, &[], "CRYPTOFEED_PROXY_");
        assert_eq!(
            self::json(&in_code)["routes"]["*"]["http"]["source"],
            "settings given in code"
        );
    }

    #[test]
    fn warnings_for_disabled_routes_and_local_dns() {
        let (s, _) = load(
            "",
            &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5://p:1")],
        );
        let report = Report::new(&s, None, &[], "CRYPTOFEED_PROXY_");
        assert!(report.routes.iter().all(|r| r.http.is_none()));
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].contains("CRYPTOFEED_PROXY_ENABLED"));

        let (s, _) = load(
            "",
            &[
                ("CRYPTOFEED_PROXY_ENABLED", "on"),
                ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", "socks4://p:1"),
            ],
        );
        let report = Report::new(&s, None, &[], "CRYPTOFEED_PROXY_");
        assert_eq!(report.warnings.len(), 1);
        assert!(
            report.warnings[0].contains("socks4a://"),
            "{:?}",
            report.warnings
        );
    }
}
