//! Real requests to a URL through each route of a [`Report`]: a `GET` for `http(s)://`
//! URLs through the HTTP routes, the upgrade for `ws(s)://` URLs through the WebSocket
//! routes, each on a connection of its own, with the protocol, the status and where the
//! time went. A status of 400 or more is a failure: from an exchange a 403 or a 451
//! usually means the route's exit is blocked there.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::Report;
use crate::error::{Phase, ProxyError};
use crate::http_client::client::HttpClient;
use crate::injector::ProxyInjector;
use crate::model::exchange::ExchangeId;
use crate::model::key::{ConnectionKind, RouteKey};
use crate::redact;
use crate::route::dialer::Dialer;
use crate::route::weight::parse_count;
use crate::transport::target::{Target, TargetScheme};
use crate::transport::trace::Trace;

/// Where the time of one probe went, in milliseconds; a phase the connection did not go
/// through is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Resolving a name locally (the proxy's, or the target's where the scheme says so).
    pub dns_ms: Option<u64>,
    /// TCP to the proxy (or to the target, direct).
    pub tcp_ms: Option<u64>,
    /// TLS to an `https://` proxy and the proxy's handshake (CONNECT or SOCKS).
    pub proxy_ms: Option<u64>,
    /// TLS to the target.
    pub tls_ms: Option<u64>,
    /// From the request's first byte to the response head (HTTP).
    pub first_byte_ms: Option<u64>,
    /// The WebSocket upgrade.
    pub upgrade_ms: Option<u64>,
}

impl Timings {
    fn from_marks(marks: &[(Phase, Instant)], end: Instant) -> Self {
        let mut t = Timings::default();
        for (i, (phase, start)) in marks.iter().enumerate() {
            let until = marks.get(i + 1).map_or(end, |(_, next)| *next);
            let ms = until.saturating_duration_since(*start);
            let slot = match phase {
                Phase::Resolve => &mut t.dns_ms,
                Phase::Connect => &mut t.tcp_ms,
                Phase::ProxyTls | Phase::ProxyHandshake => &mut t.proxy_ms,
                Phase::Tls => &mut t.tls_ms,
                Phase::ResponseHead => &mut t.first_byte_ms,
                Phase::WebSocketUpgrade => &mut t.upgrade_ms,
                _ => continue,
            };
            *slot = Some(slot.unwrap_or(0) + millis(ms));
        }
        t
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What one route answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    /// The status (101 for a WebSocket upgrade).
    pub status: u16,
    /// Its reason phrase, when it has a standard one.
    pub reason: Option<&'static str>,
    /// The weight the exchange reports used through this route (member), from the
    /// header its `http_budget` names, when both are there.
    pub used_weight: Option<u64>,
}

impl Answer {
    /// Whether the route works: an answer below 400.
    pub fn is_ok(&self) -> bool {
        self.status < 400
    }
}

/// The result of probing one route.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The exchange, or the default.
    pub exchange: RouteKey,
    /// The kind of traffic.
    pub kind: ConnectionKind,
    /// The route: `direct`, or the redacted proxy URL.
    pub route: String,
    /// The answer, or why there was none.
    pub outcome: Result<Answer, ProxyError>,
    /// The whole probe, from the first phase to the answer or the failure.
    pub total: Duration,
    /// Where the time went.
    pub timings: Timings,
}

impl Probe {
    /// Whether the route works.
    pub fn is_ok(&self) -> bool {
        self.outcome.as_ref().is_ok_and(Answer::is_ok)
    }
}

/// The JSON of one probe: `{"exchange", "kind", "route", "ok", "protocol", "status",
/// "reason", "connect_ms", "total_ms", "timings", "error"}`; `connect_ms` is the time until
/// the connection was established (before the request or the upgrade).
impl Serialize for Probe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            exchange: &'a str,
            kind: &'static str,
            route: &'a str,
            ok: bool,
            protocol: Option<&'static str>,
            status: Option<u16>,
            reason: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            used_weight: Option<u64>,
            connect_ms: Option<u64>,
            total_ms: u64,
            timings: Timings,
            error: Option<String>,
        }
        let t = &self.timings;
        let connect_ms = self.outcome.as_ref().ok().map(|_| {
            [t.dns_ms, t.tcp_ms, t.proxy_ms, t.tls_ms]
                .iter()
                .flatten()
                .sum()
        });
        let answer = self.outcome.as_ref().ok();
        Shown {
            exchange: self.exchange.as_str(),
            kind: self.kind.as_str(),
            route: &self.route,
            ok: self.is_ok(),
            protocol: answer.map(|a| a.protocol),
            status: answer.map(|a| a.status),
            reason: answer.and_then(|a| a.reason),
            used_weight: answer.and_then(|a| a.used_weight),
            connect_ms,
            total_ms: millis(self.total),
            timings: self.timings,
            error: self.outcome.as_ref().err().map(ToString::to_string),
        }
        .serialize(s)
    }
}

/// Every probe of one URL.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The URL, with its user information and every query value shown as `***`.
    pub url: String,
    /// What to know before reading the results: that proxies are disabled, so every
    /// probe went direct.
    pub warnings: Vec<String>,
    /// The exchange whose route a client routed by host
    /// ([`http_client_by_host`](crate::ProxyInjector::http_client_by_host)) takes for the
    /// URL; `None` for the default route.
    pub by_host: Option<ExchangeId>,
    /// One result per route, in the report's order.
    pub results: Vec<Probe>,
}

impl ProbeReport {
    /// Whether any route failed.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|p| !p.is_ok())
    }
}

/// Why a URL cannot be probed. The URL is shown redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--probe {url}: {reason}")]
pub struct ProbeError {
    url: String,
    reason: String,
}

/// `url` as it may be printed: user information, every query value (signatures and API
/// keys live there), path segments that look like tokens (a listen key) and the fragment
/// replaced by `***`. A password holding an unencoded `/`, `?` or `#` is masked too.
///
/// ```
/// use proxy_runtime::check::probe::redact_url;
/// assert_eq!(
///     redact_url("https://key:secret@api.example.com/v3/order?symbol=BTC&signature=abc#x"),
///     "https://***@api.example.com/v3/order?symbol=***&signature=***#***"
/// );
/// assert_eq!(
///     redact_url("wss://stream.binance.com:9443/ws/pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a8"),
///     "wss://stream.binance.com:9443/ws/***"
/// );
/// assert_eq!(redact_url("https://u:pa/ss@h/x"), "https://***@h/x");
/// ```
pub fn redact_url(url: &str) -> String {
    redact::redact_url(url)
}

/// Probes `url` through every route of `report` of the kind its scheme names (every
/// member of a pool on its own), one after another, each on a new connection. Each probe
/// ends by the injector's request deadline
/// ([`request_timeout`](crate::ProxyInjectorBuilder::request_timeout)), or, without one,
/// by the route's `timeout_seconds`.
pub async fn probe(
    injector: &ProxyInjector,
    report: &Report,
    url: &str,
) -> Result<ProbeReport, ProbeError> {
    let shown = redact_url(url);
    let error = |reason: String| ProbeError {
        url: shown.clone(),
        reason,
    };
    let uri: http::Uri = url.parse().map_err(|e| error(format!("not a URL ({e})")))?;
    let Some(scheme) = TargetScheme::of(&uri) else {
        return Err(error(
            "only http, https, ws and wss URLs can be probed".to_owned(),
        ));
    };
    let kind = scheme.kind();
    Target::from_uri(&uri, scheme.default_port()).map_err(|e| error(e.to_string()))?;
    let mut results = Vec::new();
    for routes in &report.routes {
        let route_dialer: Dialer = injector.dialer_for(&routes.exchange, kind);
        // A pool's members are probed one by one: each must work on its own.
        for (route, dialer) in route_dialer.members_alone() {
            let trace = Arc::new(Trace::default());
            let started = Instant::now();
            let outcome = match kind {
                ConnectionKind::Http => {
                    let header = routes.http_budget.used_weight_header.as_deref();
                    get(injector, dialer, url, header, trace.clone()).await
                }
                ConnectionKind::Websocket => upgrade(&dialer, url, &trace).await,
            };
            let end = Instant::now();
            results.push(Probe {
                exchange: routes.exchange.clone(),
                kind,
                route,
                outcome,
                total: end - started,
                timings: Timings::from_marks(&trace.marks(), end),
            });
        }
    }
    // With proxies disabled, only the system's variables (read when nothing enables or
    // configures a route) can route a probe.
    let system = injector
        .settings()
        .ok()
        .is_some_and(|settings| settings.system_proxies().is_some());
    let warnings = if report.enabled || system {
        Vec::new()
    } else {
        vec![
            "proxies are disabled: every probe went direct, from this host's own address"
                .to_owned(),
        ]
    };
    let by_host = injector
        .settings()
        .ok()
        .zip(uri.host())
        .and_then(|(settings, host)| settings.exchange_for_host(host).cloned());
    Ok(ProbeReport {
        url: shown,
        warnings,
        by_host,
        results,
    })
}

/// A `GET` on a client of its own (so that its connection is new and traced).
async fn get(
    injector: &ProxyInjector,
    dialer: Dialer,
    url: &str,
    used_weight_header: Option<&str>,
    trace: Arc<Trace>,
) -> Result<Answer, ProxyError> {
    let options = injector.http_options();
    // Bounded as a WebSocket upgrade is: by the injector's request deadline, else by the
    // route's `timeout_seconds`, so that a server that never answers cannot hang a probe.
    // (A request deadline too far to be an instant, `Duration::MAX`, leaves the route's.)
    let now = Instant::now();
    let deadline = options
        .timeout
        .and_then(|t| now.checked_add(t))
        .unwrap_or(now + dialer.timeout());
    let client = HttpClient::with_options(dialer, options);
    let request = client.get(url);
    let response = client
        .execute_traced(request.build()?, Some(deadline), Some(trace))
        .await?;
    let status = response.status();
    let used_weight = used_weight_header
        .and_then(|name| response.headers().get(name))
        .and_then(|v| parse_count(v.as_bytes()));
    Ok(Answer {
        protocol: protocol(response.version()),
        status: status.as_u16(),
        reason: status.canonical_reason(),
        used_weight,
    })
}

async fn upgrade(dialer: &Dialer, url: &str, trace: &Trace) -> Result<Answer, ProxyError> {
    let (_, response) = dialer.websocket_traced(url, None, Some(trace)).await?;
    let status = response.status();
    Ok(Answer {
        protocol: protocol(response.version()),
        status: status.as_u16(),
        reason: status.canonical_reason(),
        used_weight: None,
    })
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}
