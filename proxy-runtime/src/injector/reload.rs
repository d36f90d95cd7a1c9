//! What a reload changed, route by route, as logs, metrics, `proxy-check --diff` and the
//! caller of [`ProxyInjector::reload`](crate::ProxyInjector::reload) see it: redacted, the
//! default route and each exchange's, HTTP and WebSocket apart.

use std::fmt;

use crate::model::exchange::ExchangeId;
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::proxy_settings::ProxySettings;
use crate::model::route::ProxyConfig;
use crate::settings::load::LoadError;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The injector was built from a value of settings
    /// ([`ProxyInjector::new`](crate::ProxyInjector::new)): there is no source to read
    /// again. Build it with [`ProxyInjector::from_loader`](crate::ProxyInjector::from_loader),
    /// or pass new settings to [`reload_with`](crate::ProxyInjector::reload_with).
    #[error(
        "the proxy injector was built from settings given as a value, so there is nothing to read again: build it with ProxyInjector::from_loader, or call reload_with"
    )]
    NoLoader,
    /// The settings read did not load: every error, each with its variable or file and
    /// line. The settings in force stay.
    #[error("the proxy settings did not load, and the settings in force stay: {0}")]
    Invalid(LoadError),
    /// The settings file gives no setting (it is empty, or has no `proxy:` section, as a
    /// file caught half written may): put in force, it would send every connection
    /// direct. The settings in force stay; `enabled: false` disables proxies.
    #[error(
        "the proxy settings were not reloaded, and the settings in force stay: {0}; to disable proxies, set enabled: false"
    )]
    Empty(String),
}

/// How a route changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteChangeKind {
    /// An entry of its own now sets the route (before, the default's, or none, did).
    Added,
    /// The entry of its own is gone (now the default's, or none, sets the route).
    Removed,
    /// The same entry sets it otherwise.
    Changed,
}

impl RouteChangeKind {
    /// `added`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }
}

/// One route that a reload changes: what it was and what it is, redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteChange {
    /// The exchange; `None` for the default route (what exchanges without an entry of
    /// their own take).
    pub exchange: Option<String>,
    /// HTTP or WebSocket traffic.
    pub kind: ConnectionKind,
    /// How it changed.
    pub change: RouteChangeKind,
    /// The route before, in words (`direct`, or its members, strategy and timeout, with
    /// passwords as `***`), and the knobs that changed (`websocket_session`,
    /// `http_budget`).
    pub before: String,
    /// The route after, as `before` shows it.
    pub after: String,
    /// What differs, in words: `route`, `credentials or CONNECT headers` (when both
    /// routes show alike), `websocket_session`, `http_budget`.
    pub what: Vec<&'static str>,
}

impl fmt::Display for RouteChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} ({}): {} -> {}",
            self.exchange.as_deref().unwrap_or("default"),
            self.kind,
            self.change.as_str(),
            self.what.join(", "),
            self.before,
            self.after
        )
    }
}

/// What a reload changed: each route that differs, and the other settings that do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    routes: Vec<RouteChange>,
    other: Vec<String>,
}

impl ReloadReport {
    /// What putting `after` in force changes where `before` is: the default route and
    /// every exchange either names, for HTTP and WebSockets, then `hosts`, `shared`,
    /// `system` and `reload`. This is what `proxy-check --diff` prints.
    pub fn between(before: &ProxySettings, after: &ProxySettings) -> Self {
        Self::diff(Some(before), after)
    }

    /// What putting `after` in force changes where the settings did not load (every
    /// route failed).
    pub fn after_failure(after: &ProxySettings) -> Self {
        Self::diff(None, after)
    }

    fn diff(before: Option<&ProxySettings>, after: &ProxySettings) -> Self {
        let mut keys = vec![RouteKey::Default];
        let ids = before
            .into_iter()
            .flat_map(|b| b.exchanges().keys())
            .chain(after.exchanges().keys());
        for id in ids {
            let key = RouteKey::Exchange(id.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys[1..].sort_unstable();
        let mut routes = Vec::new();
        for key in &keys {
            for kind in [ConnectionKind::Http, ConnectionKind::Websocket] {
                routes.extend(route_change(before, after, key, kind));
            }
        }
        let mut other = Vec::new();
        if let Some(before) = before {
            let ids = keys.iter().filter_map(RouteKey::exchange);
            for id in ids {
                if hosts(before, id) != hosts(after, id) {
                    other.push(format!(
                        "{id} hosts: {} -> {}",
                        hosts(before, id),
                        hosts(after, id)
                    ));
                }
            }
            if before.shared() != after.shared() {
                other.push("shared store (shared)".to_owned());
            }
            if before.system_proxies() != after.system_proxies() {
                other.push("system proxy variables (system)".to_owned());
            }
            if before.reload() != after.reload() {
                other.push(
                    "reload (read when the injector is built: the watch in force stays)".to_owned(),
                );
            }
        }
        Self { routes, other }
    }

    /// The routes that changed, the default's first, then by exchange.
    pub fn routes(&self) -> &[RouteChange] {
        &self.routes
    }

    /// The other settings that changed, in words.
    pub fn other(&self) -> &[String] {
        &self.other
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.other.is_empty()
    }

    /// Logs the reload at info level, and counts each route change in
    /// `proxy_reload_changes_total`.
    pub(crate) fn record(&self) {
        for change in &self.routes {
            metrics::counter!(
                "proxy_reload_changes_total",
                "exchange" => change.exchange.clone().unwrap_or_else(|| "default".to_owned()),
                "kind" => change.kind.as_str(),
                "change" => change.change.as_str(),
            )
            .increment(1);
        }
        tracing::info!(
            routes = self.routes.len(),
            changes = %self,
            "proxy settings reloaded"
        );
    }
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no change");
        }
        let lines = self
            .routes
            .iter()
            .map(ToString::to_string)
            .chain(self.other.iter().cloned());
        for (i, line) in lines.enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&line)?;
        }
        Ok(())
    }
}

/// `key`'s route of `kind` from `before` to `after`, if it changes.
fn route_change(
    before: Option<&ProxySettings>,
    after: &ProxySettings,
    key: &RouteKey,
    kind: ConnectionKind,
) -> Option<RouteChange> {
    let Some(before) = before else {
        return Some(RouteChange {
            exchange: key.exchange().map(|id| id.as_str().to_owned()),
            kind,
            change: RouteChangeKind::Changed,
            before: "fails (the settings did not load)".to_owned(),
            after: shown(after.route_for(key, kind).map(|(_, c)| c)),
            what: vec!["route"],
        });
    };
    let (was, is) = (
        before.route_for(key, kind).map(|(_, c)| c),
        after.route_for(key, kind).map(|(_, c)| c),
    );
    let mut what = Vec::new();
    if was != is {
        what.push(if shown(was) == shown(is) {
            "credentials or CONNECT headers"
        } else {
            "route"
        });
    }
    match kind {
        ConnectionKind::Websocket if before.session_for(key) != after.session_for(key) => {
            what.push("websocket_session");
        }
        ConnectionKind::Http if before.budget_for(key) != after.budget_for(key) => {
            what.push("http_budget");
        }
        _ => {}
    }
    if what.is_empty() {
        return None;
    }
    let change = match (own(before, key, kind), own(after, key, kind)) {
        (false, true) => RouteChangeKind::Added,
        (true, false) => RouteChangeKind::Removed,
        _ => RouteChangeKind::Changed,
    };
    Some(RouteChange {
        exchange: key.exchange().map(|id| id.as_str().to_owned()),
        kind,
        change,
        before: shown(was),
        after: shown(is),
        what,
    })
}

/// A route in words, redacted.
fn shown(route: Option<&ProxyConfig>) -> String {
    route.map_or_else(|| "direct".to_owned(), ToString::to_string)
}

/// Whether `key` has an entry of its own for `kind` in `settings` (the default's own
/// entry, for the default).
fn own(settings: &ProxySettings, key: &RouteKey, kind: ConnectionKind) -> bool {
    match key.exchange() {
        None => settings.default_route(kind).is_some(),
        Some(id) => settings
            .exchanges()
            .get(id)
            .is_some_and(|proxies| proxies.get(kind).is_some()),
    }
}

/// `id`'s hosts, in words.
fn hosts(settings: &ProxySettings, id: &ExchangeId) -> String {
    let hosts: Vec<String> = settings
        .exchanges()
        .get(id)
        .map(|proxies| proxies.hosts().iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    format!("[{}]", hosts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> ProxySettings {
        let mut all = vec![("CRYPTOFEED_PROXY_ENABLED", "true")];
        all.extend_from_slice(vars);
        ProxySettings::loader().env_vars(all).load().unwrap()
    }

    #[test]
    fn a_report_names_each_route_that_changes_and_never_a_password() {
        let before = settings(&[
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5h://proxy:1080",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                "http://trader:old-s3cret@squid:3128",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET__URL",
                "socks5h://okx:1080",
            ),
        ]);
        let after = settings(&[
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5h://proxy:1080",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                "http://trader:new-s3cret@squid:3128",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__URL",
                "socks5h://kraken:1080",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HOSTS",
                r#"["api.kraken.com"]"#,
            ),
        ]);
        let report = ReloadReport::between(&before, &after);
        let lines: Vec<String> = report.routes().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "binance http changed (credentials or CONNECT headers): http://trader:***@squid:3128 (timeout 30s) -> http://trader:***@squid:3128 (timeout 30s)",
                "kraken http added (route): socks5h://proxy:1080 (timeout 30s) -> socks5h://kraken:1080 (timeout 30s)",
                "okx websocket removed (route): socks5h://okx:1080 (timeout 30s) -> direct",
            ]
        );
        assert_eq!(report.other(), ["kraken hosts: [] -> [api.kraken.com]"]);
        assert_eq!(
            report.to_string(),
            format!(
                "{}; {}; {}; {}",
                lines[0],
                lines[1],
                lines[2],
                report.other()[0]
            ),
            "one line after another"
        );
        let shown = format!("{report} {report:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(ReloadReport::between(&after, &after).is_empty());
        assert_eq!(
            ReloadReport::between(&after, &after).to_string(),
            "no change"
        );
    }

    #[test]
    fn knobs_and_the_other_entries_are_reported_too() {
        let before = settings(&[]);
        let after = settings(&[
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
                "6000",
            ),
            ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__CONNECTS", "5"),
            ("CRYPTOFEED_PROXY_RELOAD__WATCH", "true"),
            ("CRYPTOFEED_PROXY_SYSTEM", "false"),
        ]);
        let report = ReloadReport::between(&before, &after);
        let lines: Vec<String> = report.routes().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "default websocket changed (websocket_session): direct -> direct",
                "binance http changed (http_budget): direct -> direct",
                "binance websocket changed (websocket_session): direct -> direct",
            ]
        );
        assert!(
            report.other().iter().any(|o| o.starts_with("reload")),
            "{report}"
        );
    }

    #[test]
    fn from_settings_that_failed_every_route_is_new() {
        let after = settings(&[(
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
            "socks5h://proxy:1080",
        )]);
        let report = ReloadReport::after_failure(&after);
        assert_eq!(report.routes().len(), 2);
        assert!(report.routes()[0].before.starts_with("fails"));
        assert_eq!(
            report.routes()[0].after,
            "socks5h://proxy:1080 (timeout 30s)"
        );
    }
}
