//! The route report that `proxy-check` prints: where each exchange's HTTP and WebSocket
//! traffic goes, with warnings an operator should see before deploying.
//!
//! Builds the report from loaded settings and renders it as a table or as JSON. Shows
//! URLs redacted only; it performs no I/O of its own.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::{ConnectionKind, ExchangeId, ProxyConfig, ProxySettings};

/// The key of the default route in a report: what an exchange without its own entry gets.
pub const DEFAULT_KEY: &str = "*";

/// Where one kind of traffic goes through a proxy (a direct connection has no `Route`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The proxy URL with the password shown as `***`.
    pub url: String,
    /// The scheme, like `socks5h`.
    pub scheme: &'static str,
    /// The proxy's host; an IPv6 address without brackets.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// The user name, if the URL has credentials.
    pub username: Option<String>,
    /// The connection timeout in seconds.
    pub timeout_seconds: u16,
}

impl Route {
    fn from_config(config: &ProxyConfig) -> Option<Self> {
        let endpoint = config.url().endpoint()?;
        Some(Route {
            url: config.url().to_string(),
            scheme: endpoint.scheme().as_str(),
            host: endpoint.host().bare().into_owned(),
            port: endpoint.port(),
            username: endpoint.username().map(str::to_owned),
            timeout_seconds: config.timeout().get(),
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "url": self.url,
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "timeout_seconds": self.timeout_seconds,
        })
    }
}

/// The routes of one exchange (or of [`DEFAULT_KEY`]); `None` is a direct connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRoutes {
    /// The exchange id, or `*` for exchanges without an entry of their own.
    pub exchange: String,
    /// Where HTTP requests go.
    pub http: Option<Route>,
    /// Where WebSocket streams go.
    pub websocket: Option<Route>,
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

/// What `proxy-check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Whether proxies are enabled.
    pub enabled: bool,
    /// The default first, then every exchange configured or asked about, by id.
    pub routes: Vec<ExchangeRoutes>,
    /// Things an operator should know before deploying.
    pub warnings: Vec<String>,
}

impl Report {
    /// Builds the report for every configured exchange, the exchanges in `extra`, and the
    /// default. `env_prefix` is used to name variables in warnings.
    pub fn new(settings: &ProxySettings, extra: &[ExchangeId], env_prefix: &str) -> Self {
        let mut ids: Vec<&str> = settings
            .exchanges()
            .keys()
            .map(ExchangeId::as_str)
            .collect();
        ids.extend(extra.iter().map(ExchangeId::as_str));
        ids.sort_unstable();
        ids.dedup();

        let resolve = |id: Option<&str>, kind| {
            let config = match id {
                Some(id) => settings.get_proxy(id, kind),
                None => settings.default_route(kind),
            };
            config.and_then(Route::from_config)
        };
        let mut routes = Vec::with_capacity(ids.len() + 1);
        for id in std::iter::once(None).chain(ids.into_iter().map(Some)) {
            routes.push(ExchangeRoutes {
                exchange: id.unwrap_or(DEFAULT_KEY).to_owned(),
                http: resolve(id, ConnectionKind::Http),
                websocket: resolve(id, ConnectionKind::Websocket),
            });
        }

        let mut warnings = Vec::new();
        if !settings.enabled() && settings.has_routes() {
            warnings.push(format!(
                "proxy routes are configured but proxies are disabled (`{}ENABLED` is not true): every connection goes direct",
                env_prefix.to_ascii_uppercase()
            ));
        }
        for r in &routes {
            for kind in ConnectionKind::ALL {
                let Some(route) = r.get(kind) else { continue };
                let better = match route.scheme {
                    "socks5" => "socks5h",
                    "socks4" => "socks4a",
                    _ => continue,
                };
                warnings.push(format!(
                    "{} {kind}: {}:// resolves the target's name locally, so local DNS sees which exchange is used; use {better}:// to let the proxy resolve it",
                    r.exchange, route.scheme
                ));
            }
        }
        Report {
            enabled: settings.enabled(),
            routes,
            warnings,
        }
    }

    /// The report as the JSON object `proxy-check --json` prints.
    pub fn to_json(&self) -> Value {
        let routes: serde_json::Map<String, Value> = self
            .routes
            .iter()
            .map(|r| {
                let route = |k| r.get(k).map_or(Value::Null, Route::to_json);
                (
                    r.exchange.clone(),
                    json!({
                        "http": route(ConnectionKind::Http),
                        "websocket": route(ConnectionKind::Websocket),
                    }),
                )
            })
            .collect();
        json!({
            "enabled": self.enabled,
            "routes": routes,
            "warnings": self.warnings,
        })
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let cell = |r: Option<&Route>| match r {
            Some(r) => format!("{} (timeout {}s)", r.url, r.timeout_seconds),
            None => "direct".to_owned(),
        };
        let rows: Vec<[String; 3]> = self
            .routes
            .iter()
            .map(|r| {
                let name = if r.exchange == DEFAULT_KEY {
                    "* (default)".to_owned()
                } else {
                    r.exchange.clone()
                };
                [name, cell(r.http.as_ref()), cell(r.websocket.as_ref())]
            })
            .collect();
        let header = ["EXCHANGE", "HTTP", "WEBSOCKET"].map(str::to_owned);
        let width = |i: usize| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let (w0, w1) = (width(0), width(1));
        let mut out = format!(
            "proxies: {}\n\n",
            if self.enabled { "enabled" } else { "disabled" }
        );
        for row in std::iter::once(&header).chain(&rows) {
            let _ = writeln!(out, "{:w0$}  {:w1$}  {}", row[0], row[1], row[2]);
        }
        if !self.warnings.is_empty() {
            out.push_str("\nwarnings:\n");
            for w in &self.warnings {
                let _ = writeln!(out, "  - {w}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> ProxySettings {
        ProxySettings::loader()
            .env_vars(vars.iter().copied())
            .load()
            .unwrap()
    }

    #[test]
    fn default_and_exchanges_with_ipv6_host_unbracketed() {
        let s = settings(&[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5h://u:canary@[::1]:1080",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
                "direct://",
            ),
        ]);
        let report = Report::new(
            &s,
            &[ExchangeId::new("kraken").unwrap()],
            "CRYPTOFEED_PROXY_",
        );
        let json = report.to_json();
        let http = &json["routes"]["*"]["http"];
        assert_eq!(http["host"], "::1");
        assert_eq!(http["url"], "socks5h://u:***@[::1]:1080");
        assert_eq!(http["username"], "u");
        assert_eq!(http["timeout_seconds"], 30);
        assert_eq!(json["routes"]["binance"]["http"]["scheme"], "socks5h");
        assert!(json["routes"]["binance"]["websocket"].is_null());
        assert_eq!(json["routes"]["kraken"]["http"]["port"], 1080);
        assert!(report.warnings.is_empty());
        let table = report.to_table();
        assert!(table.contains("* (default)"));
        assert!(!table.contains("canary") && !json.to_string().contains("canary"));
    }

    #[test]
    fn warnings_for_disabled_routes_and_local_dns() {
        let s = settings(&[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5://p:1")]);
        let report = Report::new(&s, &[], "CRYPTOFEED_PROXY_");
        assert!(report.routes.iter().all(|r| r.http.is_none()));
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].contains("CRYPTOFEED_PROXY_ENABLED"));

        let s = settings(&[
            ("CRYPTOFEED_PROXY_ENABLED", "on"),
            ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", "socks4://p:1"),
        ]);
        let report = Report::new(&s, &[], "CRYPTOFEED_PROXY_");
        assert_eq!(report.warnings.len(), 1);
        assert!(
            report.warnings[0].contains("socks4a://"),
            "{:?}",
            report.warnings
        );
    }
}
