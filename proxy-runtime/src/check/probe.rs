//! Real connections to a URL through each route of a [`Report`]: the HTTP routes for
//! `http(s)://` URLs, the WebSocket routes for `ws(s)://` URLs.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{DEFAULT_KEY, Report};
use crate::{ConnectionKind, Dialer, ProxyError, ProxyInjector, Target};

/// The result of probing one route.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The exchange id, or [`DEFAULT_KEY`].
    pub exchange: String,
    /// The kind of traffic.
    pub kind: ConnectionKind,
    /// The route: `direct`, or the redacted proxy URL.
    pub route: String,
    /// How long the connection took, or why it failed.
    pub outcome: Result<Duration, ProxyError>,
}

/// `{"exchange", "kind", "route", "ok", "connect_ms", "error"}`.
impl Serialize for Probe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            exchange: &'a str,
            kind: &'static str,
            route: &'a str,
            ok: bool,
            connect_ms: Option<u64>,
            error: Option<String>,
        }
        let (connect_ms, error) = match &self.outcome {
            Ok(took) => (
                Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        Shown {
            exchange: &self.exchange,
            kind: self.kind.as_str(),
            route: &self.route,
            ok: self.outcome.is_ok(),
            connect_ms,
            error,
        }
        .serialize(s)
    }
}

/// Every probe of one URL.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The URL, as given.
    pub url: String,
    /// One result per route, in the report's order.
    pub results: Vec<Probe>,
}

impl ProbeReport {
    /// Whether any route failed.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|p| p.outcome.is_err())
    }
}

/// Why a URL cannot be probed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--probe {url}: {reason}")]
pub struct ProbeError {
    url: String,
    reason: String,
}

/// Connects to `url` through every route of `report` of the kind its scheme names (TCP,
/// the proxy's handshake, TLS, and for WebSockets the upgrade), one after another.
pub async fn probe(
    injector: &ProxyInjector,
    report: &Report,
    url: &str,
) -> Result<ProbeReport, ProbeError> {
    let error = |reason: String| ProbeError {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| error(format!("not a URL ({e})")))?;
    let (kind, tls) = match parsed.scheme() {
        "http" => (ConnectionKind::Http, false),
        "https" => (ConnectionKind::Http, true),
        "ws" => (ConnectionKind::Websocket, false),
        "wss" => (ConnectionKind::Websocket, true),
        other => {
            return Err(error(format!(
                "only http, https, ws and wss URLs can be probed, not {other}://"
            )));
        }
    };
    let target = Target::from_url(&parsed).map_err(|e| error(e.to_string()))?;
    let mut results = Vec::new();
    for routes in &report.routes {
        let dialer: Dialer = if routes.exchange == DEFAULT_KEY {
            injector.default_dialer(kind)
        } else {
            injector.dialer(&routes.exchange, kind)
        };
        let route = dialer
            .proxy()
            .map_or_else(|| "direct".to_owned(), str::to_owned);
        let started = Instant::now();
        let outcome = match kind {
            ConnectionKind::Http => dialer.connect(&target, tls).await.map(drop),
            ConnectionKind::Websocket => dialer.connect_websocket(url).await.map(drop),
        };
        results.push(Probe {
            exchange: routes.exchange.clone(),
            kind,
            route,
            outcome: outcome.map(|()| started.elapsed()),
        });
    }
    Ok(ProbeReport {
        url: url.to_owned(),
        results,
    })
}
