//! The system's proxy variables, honoured as reqwest and curl honour them: `HTTPS_PROXY`
//! for `https://` and `wss://` targets, `HTTP_PROXY` for `http://` and `ws://`,
//! `ALL_PROXY` for both where the other is unset, `NO_PROXY` for the hosts that go direct
//! (and the lowercase forms of each, the uppercase first). They route what the settings
//! leave unset; explicit settings, `direct://` included, always win.
//!
//! Each value is read through the loader and parsed as every proxy URL is (a value
//! without a scheme is `http://`, as curl reads it): an invalid one fails the load naming
//! the variable, never a silent direct connection. `NO_PROXY` is decided by hyper-util's
//! matcher (curl's rules). Under CGI (`REQUEST_METHOD` set) `HTTP_PROXY` is ignored: a
//! request's `Proxy:` header would otherwise set it.

use std::fmt;
use std::sync::Arc;

use hyper_util::client::proxy::matcher::Matcher;

use super::proxy_url::ProxyUrl;
use crate::redact::redact_value;
use crate::settings::load::{Environment, ErrorKind, KeyPath, Origin, Origins, SettingError};

/// A proxy named by a system variable, and the variable.
#[derive(Clone, PartialEq, Eq)]
pub struct SystemProxy {
    url: ProxyUrl,
    var: String,
}

impl SystemProxy {
    /// The proxy.
    pub fn url(&self) -> &ProxyUrl {
        &self.url
    }

    /// The variable that named it, as it is spelled (`HTTPS_PROXY`, `all_proxy`, ...).
    pub fn var(&self) -> &str {
        &self.var
    }
}

impl fmt::Debug for SystemProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.var, self.url)
    }
}

/// The system's proxy variables of a load.
#[derive(Clone)]
pub struct SystemProxies {
    http: Option<SystemProxy>,
    https: Option<SystemProxy>,
    no_proxy: Option<(String, String)>,
    /// Decides `NO_PROXY` (given stand-ins for the proxies: only whether a scheme has one
    /// matters to it).
    matcher: Arc<Matcher>,
}

/// The variables of each role, in the order they are read.
const HTTPS: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
const HTTP: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
const ALL: [&str; 2] = ["ALL_PROXY", "all_proxy"];
const NO: [&str; 2] = ["NO_PROXY", "no_proxy"];

impl SystemProxies {
    /// The variables of `env`, each checked; `None` when none names a proxy. Each value
    /// read has its origin recorded in `origins`, under `system.<variable>`.
    pub(crate) fn read(
        env: &Environment<'_>,
        origins: &mut Origins,
    ) -> Result<Option<Self>, Vec<SettingError>> {
        let mut errors = Vec::new();
        let cgi = env.var("REQUEST_METHOD").is_some();
        let first = |names: [&str; 2]| -> Option<(String, String)> {
            names.iter().find_map(|name| {
                let value = env.var(name)?;
                // An empty value is unset, as curl and reqwest read it.
                (!value.trim().is_empty()).then(|| ((*name).to_owned(), value))
            })
        };
        let all = first(ALL);
        let https = first(HTTPS).or_else(|| all.clone());
        let http = if cgi {
            None
        } else {
            first(HTTP).or_else(|| all.clone())
        };
        let no_proxy = first(NO);
        let mut parse = |found: Option<(String, String)>| {
            let (var, value) = found?;
            let text = if value.contains("://") {
                value.clone()
            } else {
                format!("http://{value}")
            };
            match ProxyUrl::parse(&text) {
                // Other tools read these variables too, and none knows a source address.
                Ok(ProxyUrl::DirectFrom(_)) => {
                    errors.push(SettingError::new(
                        Origin::env(&var),
                        ErrorKind::Invalid,
                        "a system proxy variable names a proxy: a source address (direct://ADDRESS) belongs in the proxy settings",
                    ));
                    None
                }
                Ok(url) => {
                    origins.insert(
                        KeyPath::from_keys(["system", var.as_str()]),
                        Origin::env(&var),
                    );
                    Some(SystemProxy { url, var })
                }
                Err(e) => {
                    errors.push(SettingError::new(
                        Origin::env(&var),
                        ErrorKind::Invalid,
                        format!("{e}; got `{}`", redact_value(&value)),
                    ));
                    None
                }
            }
        };
        let https = parse(https);
        let http = parse(http);
        if !errors.is_empty() {
            return Err(errors);
        }
        if https.is_none() && http.is_none() {
            return Ok(None);
        }
        if let Some((var, _)) = &no_proxy {
            origins.insert(
                KeyPath::from_keys(["system", var.as_str()]),
                Origin::env(var),
            );
        }
        let mut builder = Matcher::builder();
        if http.is_some() {
            builder = builder.http("http://system.proxy.invalid");
        }
        if https.is_some() {
            builder = builder.https("http://system.proxy.invalid");
        }
        if let Some((_, list)) = &no_proxy {
            builder = builder.no(list.clone());
        }
        Ok(Some(Self {
            http,
            https,
            no_proxy,
            matcher: Arc::new(builder.build()),
        }))
    }

    /// The proxy of `http://` and `ws://` targets (`HTTP_PROXY`, else `ALL_PROXY`).
    pub fn http(&self) -> Option<&SystemProxy> {
        self.http.as_ref()
    }

    /// The proxy of `https://` and `wss://` targets (`HTTPS_PROXY`, else `ALL_PROXY`).
    pub fn https(&self) -> Option<&SystemProxy> {
        self.https.as_ref()
    }

    /// `NO_PROXY`, as given, and the variable that gave it.
    pub fn no_proxy(&self) -> Option<(&str, &str)> {
        self.no_proxy
            .as_ref()
            .map(|(var, list)| (var.as_str(), list.as_str()))
    }

    /// The proxy a connection to `host` takes (`secure`: `https://` or `wss://`), or
    /// `None` when it goes direct: no variable for its scheme, or `NO_PROXY` names it.
    pub fn proxy_for(&self, host: &str, secure: bool) -> Option<&SystemProxy> {
        let scheme = if secure { "https" } else { "http" };
        // The host as a URI writes it (an IPv6 address in brackets), any port.
        let written = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let dst: http::Uri = format!("{scheme}://{written}/").parse().ok()?;
        self.matcher.intercept(&dst)?;
        if secure { self.https() } else { self.http() }
    }
}

impl PartialEq for SystemProxies {
    fn eq(&self, other: &Self) -> bool {
        self.http == other.http && self.https == other.https && self.no_proxy == other.no_proxy
    }
}

impl Eq for SystemProxies {}

/// The proxies (redacted) and `NO_PROXY`, never a matcher's internals.
impl fmt::Debug for SystemProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemProxies")
            .field("http", &self.http)
            .field("https", &self.https)
            .field("no_proxy", &self.no_proxy().map(|(_, list)| list))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Option<SystemProxies> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SystemProxies::read(&Environment::vars(&vars), &mut Origins::default()).unwrap()
    }

    #[test]
    fn debug_shows_each_variable_redacted_and_no_proxy() {
        let system = read(&[
            ("HTTPS_PROXY", "http://u:s3cret@corp:3128"),
            ("no_proxy", "localhost,.internal"),
        ])
        .unwrap();
        let https = system.https().unwrap();
        assert_eq!(format!("{https:?}"), "HTTPS_PROXY=http://u:***@corp:3128");
        assert_eq!(
            format!("{system:?}"),
            "SystemProxies { http: None, https: Some(HTTPS_PROXY=http://u:***@corp:3128), \
             no_proxy: Some(\"localhost,.internal\") }"
        );
        assert_eq!(system.no_proxy(), Some(("no_proxy", "localhost,.internal")));
        assert!(read(&[("NO_PROXY", "x")]).is_none(), "no proxy named: none");
    }

    #[test]
    fn no_proxy_decides_names_and_addresses_of_both_families() {
        let system = read(&[
            ("ALL_PROXY", "socks5h://all:1080"),
            ("NO_PROXY", "127.0.0.1,::1,.internal"),
        ])
        .unwrap();
        for direct in ["127.0.0.1", "::1", "db.internal"] {
            assert_eq!(system.proxy_for(direct, true), None, "{direct}");
            assert_eq!(system.proxy_for(direct, false), None, "{direct}");
        }
        for proxied in ["127.0.0.2", "::2", "api.binance.com"] {
            for secure in [true, false] {
                let via = system.proxy_for(proxied, secure).map(SystemProxy::var);
                assert_eq!(via, Some("ALL_PROXY"), "{proxied} {secure}");
            }
        }
        let https_only = read(&[("HTTPS_PROXY", "http://s:1")]).unwrap();
        assert_eq!(
            https_only.proxy_for("x.com", true).map(SystemProxy::var),
            Some("HTTPS_PROXY")
        );
        assert_eq!(https_only.proxy_for("x.com", false), None);
    }

    #[test]
    fn the_same_variables_are_equal_and_any_difference_is_not() {
        let base = [
            ("HTTPS_PROXY", "http://s:1"),
            ("HTTP_PROXY", "http://p:1"),
            ("NO_PROXY", "a"),
        ];
        assert_eq!(read(&base), read(&base));
        for (i, other) in [
            ("HTTPS_PROXY", "http://s:2"),
            ("HTTP_PROXY", "http://p:2"),
            ("NO_PROXY", "b"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut changed = base;
            changed[i] = other;
            assert_ne!(read(&base), read(&changed), "{other:?}");
        }
    }
}
