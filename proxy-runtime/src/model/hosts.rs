//! Routing by target host: the `hosts` an exchange's settings list (exact names and
//! `*.suffix` patterns), and the index that says which exchange a URL's host belongs to.
//!
//! A pattern is parsed by `url`'s host parser, the one parser of request targets, so a
//! pattern and a request's host are compared in the same form (lowercase, international
//! names in punycode, IPv6 in brackets). Resolution, most specific first: an exact name;
//! then the longest `*.suffix` the host ends with; else no exchange (the default route).
//! Two exchanges listing the same pattern is a settings error: no order of listing decides
//! where a request goes.

use std::collections::HashMap;
use std::fmt;

use super::exchange::ExchangeId;
use crate::settings::schema::{Scalar, SettingsLeaf, deserialize_leaf};

/// One entry of an exchange's `hosts`: a host name or IP address matched exactly, or
/// `*.suffix`, which matches every name that ends with `.suffix` (at any depth, not
/// `suffix` itself: list it too when it is used).
///
/// ```
/// use proxy_runtime::HostPattern;
/// let any: HostPattern = "*.Binance.com".parse()?;
/// assert!(any.matches("api.binance.com"));
/// assert!(any.matches("a.b.binance.com"));
/// assert!(!any.matches("binance.com"));
/// assert!(!any.matches("notbinance.com"));
/// assert!("api.binance.com/v3".parse::<HostPattern>().is_err());
/// # Ok::<(), proxy_runtime::HostPatternError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPattern {
    /// The host (or, for a wildcard, the suffix) as `url` writes it.
    host: String,
    wildcard: bool,
}

/// Why a text is not a host pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HostPatternError(String);

impl HostPattern {
    /// Parses a pattern: a host name, an IPv4 address, an IPv6 address in brackets, or
    /// `*.` followed by a host name. Letter case and a trailing dot do not matter.
    pub fn new(text: &str) -> Result<Self, HostPatternError> {
        let trimmed = text.trim();
        if trimmed != text {
            return Err(HostPatternError(
                "a host pattern has no surrounding whitespace".into(),
            ));
        }
        let (wildcard, host) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() {
            return Err(HostPatternError(
                "a host pattern names a host, like `api.binance.com` or `*.binance.com`".into(),
            ));
        }
        if host.contains('%') {
            return Err(HostPatternError(
                "a host pattern is written plainly, without percent-encoding".into(),
            ));
        }
        if host.contains('*') {
            return Err(HostPatternError(
                "`*` is allowed only as a whole first label, as in `*.binance.com`".into(),
            ));
        }
        let parsed = url::Host::parse(host).map_err(|e| {
            HostPatternError(format!(
                "not a host name or IP address ({e}); a pattern is a bare host, without scheme, port or path"
            ))
        })?;
        match (&parsed, wildcard) {
            (url::Host::Domain(name), _) if name.split('.').any(str::is_empty) => {
                return Err(HostPatternError(
                    "a host name has no empty label (`..`, or a dot first or last but one)".into(),
                ));
            }
            (url::Host::Domain(_), _) | (_, false) => {}
            _ => {
                return Err(HostPatternError(
                    "`*.` goes before a host name, not an IP address".into(),
                ));
            }
        }
        Ok(Self {
            host: parsed.to_string(),
            wildcard,
        })
    }

    /// Whether the pattern is `*.suffix`.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Whether `host` (as `url` writes a URL's host: lowercase, IPv6 in brackets) is one
    /// the pattern matches. A trailing dot on `host` is ignored.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        if !self.wildcard {
            return host.eq_ignore_ascii_case(&self.host);
        }
        host.len() > self.host.len() + 1 && host.is_char_boundary(host.len() - self.host.len()) && {
            let (head, tail) = host.split_at(host.len() - self.host.len());
            head.ends_with('.') && tail.eq_ignore_ascii_case(&self.host)
        }
    }
}

impl std::str::FromStr for HostPattern {
    type Err = HostPatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl SettingsLeaf for HostPattern {
    const EXPECTED: &'static str = "a host name, an IP address, or `*.` and a host name";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        HostPattern::new(&value.to_text()).map_err(|e| e.to_string())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

/// `host` (as an `http::Uri` or a user writes it) in the form `url` gives a URL's host,
/// which the index compares: lowercase, IPv4 numbers and IPv6 addresses canonical
/// (`127.1` is `127.0.0.1`, `[0:0::1]` is `[::1]`). `None` when it is no host.
pub(crate) fn url_form(host: &str) -> Option<String> {
    url::Host::parse(host).ok().map(|h| h.to_string())
}

/// Which exchange claims each host: the index of every exchange's `hosts`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostIndex {
    exact: HashMap<String, ExchangeId>,
    suffixes: HashMap<String, ExchangeId>,
}

/// A pattern two exchanges list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// The pattern.
    pub(crate) pattern: HostPattern,
    /// The exchange that listed it first, in id order.
    pub(crate) first: ExchangeId,
    /// The exchange that lists it too.
    pub(crate) second: ExchangeId,
    /// Where in the second's list it is.
    pub(crate) index: usize,
}

impl HostIndex {
    /// The index of `exchanges`' patterns, taken in id order; a pattern already claimed by
    /// another exchange stays with the first and is reported.
    pub(crate) fn new<'a>(
        exchanges: impl IntoIterator<Item = (&'a ExchangeId, &'a [HostPattern])>,
    ) -> (Self, Vec<Claimed>) {
        let mut index = Self::default();
        let mut claimed = Vec::new();
        for (id, patterns) in exchanges {
            for (i, pattern) in patterns.iter().enumerate() {
                let map = if pattern.wildcard {
                    &mut index.suffixes
                } else {
                    &mut index.exact
                };
                match map.get(&pattern.host) {
                    Some(first) if first != id => claimed.push(Claimed {
                        pattern: pattern.clone(),
                        first: first.clone(),
                        second: id.clone(),
                        index: i,
                    }),
                    Some(_) => {}
                    None => {
                        map.insert(pattern.host.clone(), id.clone());
                    }
                }
            }
        }
        (index, claimed)
    }

    /// Whether no exchange lists a host.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty()
    }

    /// The exchange that claims `host` (as `url` writes it), most specific pattern first;
    /// `None` when none does.
    pub(crate) fn exchange_for(&self, host: &str) -> Option<&ExchangeId> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        if let Some(id) = self.exact.get(host) {
            return Some(id);
        }
        if self.suffixes.is_empty() {
            return None;
        }
        // Each suffix after a dot with a label before it, longest first.
        host.match_indices('.')
            .filter(|(at, _)| *at > 0)
            .find_map(|(at, _)| self.suffixes.get(&host[at + 1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::new(s).unwrap()
    }

    fn id(s: &str) -> ExchangeId {
        ExchangeId::new(s).unwrap()
    }

    #[test]
    fn patterns_are_kept_in_url_s_form() {
        assert_eq!(p("API.Binance.COM").to_string(), "api.binance.com");
        assert_eq!(p("api.binance.com.").to_string(), "api.binance.com");
        assert_eq!(p("*.Binance.com").to_string(), "*.binance.com");
        assert_eq!(p("[2001:DB8::1]").to_string(), "[2001:db8::1]");
        assert_eq!(p("127.0.0.1").to_string(), "127.0.0.1");
        assert_eq!(p("bücher.example").to_string(), "xn--bcher-kva.example");
        assert!(p("*.x.com").is_wildcard());
        assert!(!p("x.com").is_wildcard());
        assert_eq!(format!("{:?}", p("*.x.com")), "\"*.x.com\"");
    }

    #[test]
    fn what_is_not_a_bare_host_is_an_error_that_says_what_is() {
        for (bad, says) in [
            ("", "names a host"),
            ("*.", "names a host"),
            (".", "names a host"),
            (" api.x.com", "whitespace"),
            ("api.x.com ", "whitespace"),
            ("*", "whole first label"),
            ("*x.com", "whole first label"),
            ("a.*.com", "whole first label"),
            ("*.*.com", "whole first label"),
            ("https://api.x.com", "without scheme"),
            ("api.x.com:443", "without scheme"),
            ("api.x.com/v3", "without scheme"),
            ("a b.com", "without scheme"),
            ("2001:db8::1", "without scheme"),
            ("*.127.0.0.1", "not an IP address"),
            ("*.[::1]", "not an IP address"),
            ("a..com", "empty label"),
            ("a%2a.com", "percent-encoding"),
            ("*.%2a.com", "percent-encoding"),
            (".a.com", "empty label"),
            ("a.com..", "empty label"),
            ("*.kxo..", "empty label"),
        ] {
            let e = HostPattern::new(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_wildcard_matches_names_below_its_suffix_and_nothing_else() {
        let any = p("*.binance.com");
        for yes in [
            "api.binance.com",
            "a.b.binance.com",
            "API.Binance.com",
            "x.binance.com.",
        ] {
            assert!(any.matches(yes), "{yes}");
        }
        for no in [
            "binance.com",
            ".binance.com",
            "notbinance.com",
            "binance.com.evil",
            "com",
        ] {
            assert!(!any.matches(no), "{no}");
        }
        let exact = p("api.binance.com");
        assert!(exact.matches("api.binance.com"));
        assert!(exact.matches("API.binance.com."));
        assert!(!exact.matches("x.api.binance.com"));
        assert!(!exact.matches("binance.com"));
        // Multi-byte text never splits inside a character, and is matched where whole.
        assert!(!any.matches("é.binance.co"));
        assert!(any.matches("éa.binance.com"));
        assert!(!p("*.é.com").matches("ab.xn--9ca.com.x"));
    }

    #[test]
    fn the_most_specific_pattern_decides_and_unclaimed_hosts_have_no_exchange() {
        let wide = [p("*.example.com")];
        let narrow = [p("*.eu.example.com"), p("api.example.com")];
        let exact = [p("ws.eu.example.com")];
        let (a, b, c) = (id("a"), id("b"), id("c"));
        let (index, claimed) =
            HostIndex::new([(&a, &wide[..]), (&b, &narrow[..]), (&c, &exact[..])]);
        assert!(claimed.is_empty());
        assert!(!index.is_empty());
        let of = |h: &str| index.exchange_for(h).map(ExchangeId::as_str);
        assert_eq!(of("rest.example.com"), Some("a"));
        assert_eq!(of("x.y.example.com"), Some("a"));
        assert_eq!(of("api.example.com"), Some("b"));
        assert_eq!(of("API.Example.com."), Some("b"));
        assert_eq!(of("x.eu.example.com"), Some("b"));
        assert_eq!(of("ws.eu.example.com"), Some("c"));
        assert_eq!(of("example.com"), None);
        assert_eq!(of(".example.com"), None, "no label before the suffix");
        assert_eq!(of("example.org"), None);
        assert_eq!(of(""), None);
        assert!(HostIndex::default().is_empty());
        for one in [p("x.com"), p("*.x.com")] {
            let (index, _) = HostIndex::new([(&a, std::slice::from_ref(&one))]);
            assert!(!index.is_empty(), "{one}");
        }
        assert_eq!(HostIndex::default().exchange_for("api.example.com"), None);
    }

    #[test]
    fn hosts_are_compared_in_the_form_url_writes_them() {
        assert_eq!(url_form("127.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(url_form("[0:0::1]").as_deref(), Some("[::1]"));
        assert_eq!(
            url_form("API.Example.COM").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            url_form("bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(url_form("a b"), None);
        assert_eq!(url_form(""), None);
    }

    #[test]
    fn a_pattern_two_exchanges_list_stays_with_the_first_and_is_reported() {
        let (a, b) = (id("a"), id("b"));
        let first = [p("api.x.com"), p("*.x.com"), p("api.x.com")];
        let second = [p("API.x.com"), p("*.x.com"), p("b.x.com")];
        let (index, claimed) = HostIndex::new([(&a, &first[..]), (&b, &second[..])]);
        assert_eq!(
            claimed,
            [
                Claimed {
                    pattern: p("api.x.com"),
                    first: a.clone(),
                    second: b.clone(),
                    index: 0,
                },
                Claimed {
                    pattern: p("*.x.com"),
                    first: a.clone(),
                    second: b.clone(),
                    index: 1,
                },
            ],
            "listed twice by one exchange is no conflict"
        );
        assert_eq!(index.exchange_for("api.x.com"), Some(&a));
        assert_eq!(index.exchange_for("b.x.com"), Some(&b));
        assert_eq!(index.exchange_for("c.x.com"), Some(&a));
    }
}
