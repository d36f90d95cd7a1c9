//! How a route is named: whose routes ([`RouteKey`]: the default, or one exchange's), for
//! which kind of traffic ([`ConnectionKind`]), and where each value of a route sits in the
//! settings ([`RouteKey::path`]), which is how its origin is found.
//!
//! The one place that spells the settings' key paths of routes, and `*`, the default
//! route's name in reports and metrics.

use std::fmt;

use super::exchange::ExchangeId;
use crate::settings::load::KeyPath;

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

/// Whose routes: the default's (what an exchange without an entry of its own gets), or one
/// exchange's.
///
/// ```
/// use proxy_runtime::{ConnectionKind, ExchangeId, RouteField, RouteKey};
/// let binance = RouteKey::from(ExchangeId::new("Binance")?);
/// assert_eq!(binance.to_string(), "binance");
/// assert_eq!(RouteKey::Default.to_string(), "*");
/// let path = binance.path(ConnectionKind::Http, RouteField::Member(1));
/// assert_eq!(path.dotted(), "exchanges.binance.http.urls.1.url");
/// # Ok::<(), proxy_runtime::ExchangeIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKey {
    /// The default routes (`default.<kind>`), named `*`.
    Default,
    /// One exchange's routes (`exchanges.<id>.<kind>`, else the default's).
    Exchange(ExchangeId),
}

impl RouteKey {
    /// How reports and metrics name the default routes.
    pub const DEFAULT_NAME: &'static str = "*";

    /// The exchange, or `None` for the default.
    pub fn exchange(&self) -> Option<&ExchangeId> {
        match self {
            RouteKey::Default => None,
            RouteKey::Exchange(id) => Some(id),
        }
    }

    /// The exchange id, or `*` for the default.
    pub fn as_str(&self) -> &str {
        match self {
            RouteKey::Default => Self::DEFAULT_NAME,
            RouteKey::Exchange(id) => id.as_str(),
        }
    }

    /// The key whose own entry `entry` is: this one, or the default (an exchange without
    /// an entry of its own for a kind takes the default's).
    pub fn owner(&self, entry: RouteEntry) -> RouteKey {
        match entry {
            RouteEntry::Exchange => self.clone(),
            RouteEntry::Default => RouteKey::Default,
        }
    }

    /// Where `field` of this key's own entry for `kind` sits in the settings:
    /// `default.http.url`, `exchanges.binance.websocket.urls.0`. The path
    /// [`Origins`](crate::load::Origins) knows a value's origin by.
    pub fn path(&self, kind: ConnectionKind, field: RouteField) -> KeyPath {
        let mut keys: Vec<String> = match self {
            RouteKey::Default => vec!["default".to_owned()],
            RouteKey::Exchange(id) => vec!["exchanges".to_owned(), id.as_str().to_owned()],
        };
        keys.push(kind.as_str().to_owned());
        match field {
            RouteField::Url => keys.push("url".to_owned()),
            RouteField::Member(i) => {
                keys.extend(["urls".to_owned(), i.to_string(), "url".to_owned()]);
            }
            RouteField::Strategy => keys.push("strategy".to_owned()),
            RouteField::Timeout => keys.push("timeout_seconds".to_owned()),
        }
        KeyPath::from_keys(keys)
    }
}

impl From<ExchangeId> for RouteKey {
    fn from(id: ExchangeId) -> Self {
        RouteKey::Exchange(id)
    }
}

/// The exchange id, or `*`.
impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value of a route, named for its place in the settings ([`RouteKey::path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteField {
    /// `url`: the one proxy of a route that is not a pool.
    Url,
    /// `urls.<i>.url`: the URL of member `i` of a pool, from 0 (given alone as `urls.<i>`,
    /// or in the member's mapping).
    Member(usize),
    /// `strategy`: how a pool chooses a member.
    Strategy,
    /// `timeout_seconds`.
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_display_as_written() {
        assert_eq!(ConnectionKind::Http.to_string(), "http");
        assert_eq!(ConnectionKind::Websocket.to_string(), "websocket");
    }

    #[test]
    fn keys_name_the_default_star_and_exchanges_by_id() {
        let okx = RouteKey::from(ExchangeId::new("OKX").unwrap());
        assert_eq!(okx.as_str(), "okx");
        assert_eq!(okx.exchange().map(ExchangeId::as_str), Some("okx"));
        assert_eq!(RouteKey::Default.as_str(), "*");
        assert_eq!(RouteKey::Default.exchange(), None);
        assert_eq!(okx.owner(RouteEntry::Exchange), okx);
        assert_eq!(okx.owner(RouteEntry::Default), RouteKey::Default);
        assert!(RouteKey::Default < okx, "the default sorts first");
    }

    #[test]
    fn every_field_has_its_path_under_its_entry() {
        let okx = RouteKey::from(ExchangeId::new("okx").unwrap());
        let ws = ConnectionKind::Websocket;
        let http = ConnectionKind::Http;
        let cases = [
            (
                RouteKey::Default.path(http, RouteField::Url),
                "default.http.url",
            ),
            (
                RouteKey::Default.path(ws, RouteField::Member(0)),
                "default.websocket.urls.0.url",
            ),
            (
                okx.path(ws, RouteField::Member(12)),
                "exchanges.okx.websocket.urls.12.url",
            ),
            (
                okx.path(http, RouteField::Strategy),
                "exchanges.okx.http.strategy",
            ),
            (
                okx.path(http, RouteField::Timeout),
                "exchanges.okx.http.timeout_seconds",
            ),
        ];
        for (path, dotted) in cases {
            assert_eq!(path.dotted(), dotted);
        }
        // Each key its own segment (what `Origins` looks up), never a dotted one.
        assert_eq!(
            okx.path(ws, RouteField::Member(1)).keys(),
            ["exchanges", "okx", "websocket", "urls", "1", "url"]
        );
    }
}
