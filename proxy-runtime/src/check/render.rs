//! The one place where reports become text: tables for people, JSON (through serde) for
//! tools. Everything shown is already redacted by the types it comes from.

use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::SerializeMap;

use super::probe::{ProbeReport, Timings};
use super::shared::SharedState;
use super::{ExchangeRoutes, Report, Route};
use crate::model::key::RouteKey;
use crate::settings::load::VarInfo;

/// Writes `value` as one line of JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing these types cannot fail: they hold strings, numbers and booleans only.
    let mut out = serde_json::to_string(value).unwrap_or_default();
    out.push('\n');
    out
}

/// The routes as a JSON object keyed by exchange id.
pub(crate) fn routes_by_exchange<S: serde::Serializer>(
    routes: &[ExchangeRoutes],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(routes.len()))?;
    for r in routes {
        map.serialize_entry(r.exchange.as_str(), r)?;
    }
    map.end()
}

/// A route key as its id (`default` for the default).
pub(crate) fn route_key<S: serde::Serializer>(key: &RouteKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(key.as_str())
}

/// The route report as a table: where each exchange's traffic goes, where each route was
/// set, and the warnings.
pub fn report_table(report: &Report) -> String {
    let cell = |r: Option<&Route>| match r {
        Some(Route {
            members: Some(members),
            strategy,
            timeout_seconds,
            ..
        }) => {
            let urls: Vec<&str> = members.iter().map(|m| m.shown.as_str()).collect();
            format!(
                "[{}] {} (timeout {timeout_seconds}s)",
                urls.join(", "),
                strategy.unwrap_or_default()
            )
        }
        Some(r) => format!("{} (timeout {}s)", r.url, r.timeout_seconds),
        None => "direct".to_owned(),
    };
    let rows: Vec<[String; 3]> = report
        .routes
        .iter()
        .map(|r| {
            [
                shown_exchange(&r.exchange),
                cell(r.http.as_ref()),
                cell(r.websocket.as_ref()),
            ]
        })
        .collect();
    let mut out = format!(
        "proxies: {}",
        if report.enabled {
            "enabled"
        } else {
            "disabled"
        }
    );
    match &report.enabled_source {
        Some(source) => {
            let _ = write!(out, " (set by {source})");
        }
        None => out.push_str(" (the default)"),
    }
    out.push_str("\n\n");
    out.push_str(&columns(Some(["EXCHANGE", "HTTP", "WEBSOCKET"]), &rows));
    let claims: Vec<[String; 3]> = report
        .routes
        .iter()
        .filter(|r| !r.hosts.is_empty())
        .map(|r| {
            [
                format!("  {}", shown_exchange(&r.exchange)),
                r.hosts.join(" "),
                String::new(),
            ]
        })
        .collect();
    if !claims.is_empty() {
        out.push_str(
            "
hosts routed by host (the default route takes every other):
",
        );
        out.push_str(&columns(None, &claims));
    }
    out.push_str("\nwebsocket sessions (ms; 0: off):\n");
    let sessions: Vec<[String; 3]> = report
        .routes
        .iter()
        .map(|r| {
            let s = &r.websocket_session;
            [
                format!("  {}", shown_exchange(&r.exchange)),
                format!(
                    "ping {} dead {} idle {} backoff {}..{} attempts {} stable {}",
                    s.ping_interval_ms,
                    s.dead_after_ms,
                    s.idle_after_ms,
                    s.backoff_initial_ms,
                    s.backoff_max_ms,
                    s.max_attempts,
                    s.stable_after_ms
                ),
                format!(
                    "budget {} per {} lifetime {} overlap {}",
                    s.connects, s.window_ms, s.max_lifetime_ms, s.overlap_wait_ms
                ),
            ]
        })
        .collect();
    out.push_str(&columns(None, &sessions));
    let budgets: Vec<[String; 3]> = report
        .routes
        .iter()
        .filter(|r| r.http_budget.weight > 0 || r.http_budget.used_weight_header.is_some())
        .map(|r| {
            let b = &r.http_budget;
            [
                format!("  {}", shown_exchange(&r.exchange)),
                format!("weight {} per {} ms per exit", b.weight, b.window_ms),
                b.used_weight_header
                    .as_ref()
                    .map_or_else(|| "no header".to_owned(), |h| format!("header {h}")),
            ]
        })
        .collect();
    if !budgets.is_empty() {
        out.push_str("\nhttp weight budgets (weight 0: none):\n");
        out.push_str(&columns(None, &budgets));
    }
    match &report.shared.url {
        Some(url) => {
            let _ = writeln!(
                out,
                "\nshared state: {url}, prefix {}, {} processes expected per exit, {} ms per call",
                report.shared.prefix, report.shared.processes, report.shared.timeout_ms
            );
        }
        None => {
            out.push_str("\nshared state: none (each process keeps its own budgets and cooling)\n")
        }
    }
    if !report.sources.is_empty() {
        out.push_str("\nwhere each route is set:\n");
        let rows: Vec<[String; 3]> = report
            .sources
            .iter()
            .map(|s| {
                [
                    format!("  {}", shown_exchange(&s.exchange)),
                    s.kind.as_str().to_owned(),
                    s.source.clone(),
                ]
            })
            .collect();
        out.push_str(&columns(None, &rows));
    }
    if !report.warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        for w in &report.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}

/// The shared store's state as lines under the report: whether it answered (and how
/// fast), then one line per exit: `binance 127.0.0.2:1080 weight 120 of 6000 held, 5880
/// left; cooling 41000 ms; 3 connection places`.
pub fn shared_table(state: &SharedState) -> String {
    let mut out = format!("\nshared store {}:\n", state.store);
    match &state.answered {
        Ok(ms) => {
            let _ = writeln!(out, "  ok  answered in {ms} ms");
        }
        Err(e) => {
            let _ = writeln!(out, "  FAILED  {e}");
        }
    }
    let rows: Vec<[String; 3]> = state
        .exits
        .iter()
        .map(|e| {
            let weight = match (e.weight_budget, e.weight_held) {
                (Some(budget), Some(held)) => format!(
                    "weight {held} of {budget} held, {} left",
                    budget.saturating_sub(held)
                ),
                (Some(budget), None) => format!("weight budget {budget}"),
                (None, _) => "no weight budget".to_owned(),
            };
            let cooling = match (e.cooling_ms, &state.answered) {
                (_, Err(_)) => "state unknown".to_owned(),
                (Some(ms), Ok(_)) => format!("cooling {ms} ms"),
                (None, Ok(_)) => "not cooling".to_owned(),
            };
            let places = e
                .connect_places
                .map_or_else(String::new, |n| format!("; {n} connection places"));
            [
                format!("  {}", shown_exchange(&e.exchange)),
                e.exit.clone(),
                format!("{weight}; {cooling}{places}"),
            ]
        })
        .collect();
    out.push_str(&columns(None, &rows));
    out
}

/// The probe results as lines under the report, one per route:
/// `ok  HTTP/2 200 in 48 ms (tcp 1, proxy 3, tls 12, first byte 31)`, or `FAILED` with the
/// status and its reason, or the error.
pub fn probe_table(probe: &ProbeReport) -> String {
    let mut out = format!("\nprobe {}:\n", probe.url);
    let _ = writeln!(
        out,
        "  routed by host: {}",
        probe.by_host.as_ref().map_or(
            "the default route (no exchange claims its host)".to_owned(),
            |id| { format!("{id} (its hosts claim it)") }
        )
    );
    for warning in &probe.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    for p in &probe.results {
        let verdict = if p.is_ok() { "ok" } else { "FAILED" };
        let line = match &p.outcome {
            Ok(answer) => {
                // The reason phrase says why a failure failed; on success it adds nothing.
                let reason = match answer.reason {
                    Some(r) if !answer.is_ok() => format!(" {r}"),
                    _ => String::new(),
                };
                let used = answer
                    .used_weight
                    .map(|w| format!(", used weight {w}"))
                    .unwrap_or_default();
                format!(
                    "{verdict}  {} {}{reason} in {} ms ({}){used}",
                    answer.protocol,
                    answer.status,
                    p.total.as_millis(),
                    timings(&p.timings)
                )
            }
            Err(e) => format!("{verdict}  {e}"),
        };
        let _ = writeln!(
            out,
            "  {:12} {:9} {:40} {line}",
            shown_exchange(&p.exchange),
            p.kind.as_str(),
            p.route
        );
    }
    out
}

fn timings(t: &Timings) -> String {
    let parts: Vec<String> = [
        ("dns", t.dns_ms),
        ("tcp", t.tcp_ms),
        ("proxy", t.proxy_ms),
        ("tls", t.tls_ms),
        ("first byte", t.first_byte_ms),
        ("upgrade", t.upgrade_ms),
    ]
    .iter()
    .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {ms}")))
    .collect();
    parts.join(", ")
}

/// Every variable a settings type accepts, with type, default and doc.
pub fn vars_table(vars: &[VarInfo]) -> String {
    let mut out = String::new();
    for v in vars {
        let _ = writeln!(out, "{}\n    {}", v.name, v.expected);
        match (&v.default, v.required) {
            (Some(d), _) => {
                let _ = writeln!(out, "    default: {d}");
            }
            (None, true) => out.push_str("    required\n"),
            (None, false) => {}
        }
        if !v.doc.is_empty() {
            let _ = writeln!(out, "    {}", v.doc);
        }
    }
    out.push_str(
        "\nNames are case-insensitive; `__` separates levels; <ID> is an exchange id \
         (lowercase letters and digits, words joined by single `_`).\n",
    );
    out
}

fn shown_exchange(key: &RouteKey) -> String {
    match key {
        RouteKey::Default => format!("{key} (default)"),
        RouteKey::Exchange(id) => id.to_string(),
    }
}

/// Rows aligned in columns, under a header if there is one; the last column is not padded.
fn columns(header: Option<[&str; 3]>, rows: &[[String; 3]]) -> String {
    let header = header.map(|h| h.map(str::to_owned));
    let all = || header.iter().chain(rows);
    let width = |i: usize| all().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    let mut out = String::new();
    for row in all() {
        let _ = writeln!(out, "{:w0$}  {:w1$}  {}", row[0], row[1], row[2]);
    }
    out
}
