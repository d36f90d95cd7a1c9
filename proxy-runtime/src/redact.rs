//! Redaction of secrets in text that is shown to people.
//!
//! Owns the one rule for hiding a proxy password in a URL-like value, whether the value is
//! valid or not, so that error messages can show what was given without what is secret.
//! It must never be bypassed by code that prints user-provided values. Only [`Password`]
//! is public: the crate's own types print themselves redacted, so users need no
//! redaction function of their own.

use std::borrow::Cow;
use std::fmt;

/// What a password is replaced with wherever it would be shown.
pub(crate) const MASK: &str = "***";

/// A password: its `Debug` and `Display` print `***`, so no derive can leak it.
///
/// The value is reachable only through [`Password::expose`], which proxy handshakes call.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a (percent-decoded) password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself, for the proxy handshake only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Hides the password of one URL-like value, valid or not.
///
/// The value is taken whole: everything between the first `:` after the scheme's `://`
/// (or the start, when there is no scheme) and the *last* `@` is the password. That choice
/// over-masks rather than under-masks malformed input such as an unencoded `@`, `/` or
/// space inside a password (`ftp://u:p@ss@h` is shown `ftp://u:***@h`).
pub(crate) fn redact_value(value: &str) -> Cow<'_, str> {
    // Only a real scheme (letters, digits, `+`, `-`, `.`) ends at `://`; anything else
    // before it may be credentials.
    let start = match value.find("://") {
        Some(i) if is_scheme(&value[..i]) => i + 3,
        _ => 0,
    };
    let rest = &value[start..];
    let (mask_from, mask_to) = match rest.rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => (colon + 1, at),
            None => return Cow::Borrowed(value),
        },
        None => {
            // No `@`: `host:port` is shown, but anything after a `:` that is not a port
            // may be a password whose `@host` went missing.
            // An IPv6 host's colons end at its `]` (which is no colon itself).
            let host_end = if rest.starts_with('[') {
                rest.find(']').unwrap_or(rest.len())
            } else {
                0
            };
            let Some(colon) = rest[host_end..].find(':').map(|c| c + host_end) else {
                return Cow::Borrowed(value);
            };
            let after = &rest[colon + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let tail = &after[digits..];
            if digits > 0 && (tail.is_empty() || tail.starts_with(['/', '?', '#'])) {
                return Cow::Borrowed(value);
            }
            (colon + 1, rest.len())
        }
    };
    let mut out = String::with_capacity(value.len());
    out.push_str(&value[..start + mask_from]);
    out.push_str(MASK);
    out.push_str(&rest[mask_to..]);
    Cow::Owned(out)
}

fn is_scheme(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// A target URL as it may be printed (see `check::probe::redact_url`): the user
/// information, every query value, token-like path segments and the fragment masked.
///
/// The user information ends at the last `@` of the authority, and the authority at the
/// first `/`, `?` or `#`; but a password holding one of those unencoded cuts the authority
/// short, leaving a `user:pa` that is no `host:port`: then everything up to the last `@`
/// of the URL is masked (too much, rather than a piece of the password).
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    let later_at = rest.rfind('@');
    let mask_to = match authority.rfind('@') {
        Some(at) => Some(at),
        // No host the URL could mean: a password holding `/`, `?` or `#` cut it short.
        None if !is_plausible_host(authority) => later_at,
        None => None,
    };
    let remainder = match mask_to {
        Some(at) => {
            out.push_str(MASK);
            out.push('@');
            &rest[at + 1..]
        }
        // `user:secret/...` with no `@` at all: the part after the `:` is masked.
        None if !is_host_port(authority) => {
            let colon = authority.find(':').unwrap_or(authority.len());
            out.push_str(&authority[..colon]);
            out.push(':');
            out.push_str(MASK);
            &rest[authority_end..]
        }
        None => rest,
    };
    let (before_fragment, fragment) = match remainder.split_once('#') {
        Some((before, _)) => (before, true),
        None => (remainder, false),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (before_fragment, None),
    };
    // The host (and port), then the path, segment by segment.
    let path_start = before_query.find('/').unwrap_or(before_query.len());
    out.push_str(&before_query[..path_start]);
    let path = &before_query[path_start..];
    // A segment holding `@` may end a password that a `/` split (a user name that looks
    // like a host, a password that starts with digits): what comes before its last `@`
    // is masked.
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| match segment.rfind('@') {
            Some(at) => format!("{MASK}{}", &segment[at..]),
            None if looks_like_token(segment) => MASK.to_owned(),
            None => segment.to_owned(),
        })
        .collect();
    out.push_str(&segments.join("/"));
    if let Some(query) = query {
        out.push('?');
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}={MASK}"),
                None => pair.to_owned(),
            })
            .collect();
        out.push_str(&masked.join("&"));
    }
    if fragment {
        out.push('#');
        out.push_str(MASK);
    }
    out
}

/// Whether `authority` is a host with an optional port (an IPv6 host in brackets): what a
/// `:` in it starts is digits, or nothing.
fn is_host_port(authority: &str) -> bool {
    let after_host = if authority.starts_with('[') {
        // From the `]` on (it holds no `:`).
        match authority.find(']') {
            Some(end) => &authority[end..],
            None => return false,
        }
    } else {
        authority
    };
    match after_host.split_once(':') {
        None => true,
        Some((_, port)) => port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Whether `authority` names a host a URL could mean, with an optional port: an IP
/// address, `localhost`, or a name with a dot. A user name (`trader:1234`) is not one.
fn is_plausible_host(authority: &str) -> bool {
    if !is_host_port(authority) {
        return false;
    }
    if authority.starts_with('[') {
        return true;
    }
    let host = authority.split(':').next().unwrap_or_default();
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || (host.contains('.') && !host.starts_with('.') && !host.ends_with('.'))
}

/// Whether a path segment looks like a secret token (a listen key, an API key, a session
/// id): at least 20 characters of base64url or hex alphabet, with letters and digits both.
/// Words, symbols and stream names (`btcusdt@depth20@100ms`) are not.
fn looks_like_token(segment: &str) -> bool {
    segment.len() >= 20
        && segment.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'~' | b'+')
        })
        && segment.bytes().any(|b| b.is_ascii_digit())
        && segment.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Hides passwords in free text (for example a parser's message that quotes its input):
/// every whitespace-separated word that contains `@` goes through [`redact_value`], with
/// surrounding quotes kept.
pub(crate) fn redact_text(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut word_start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_whitespace() {
            if let Some(s) = word_start.take() {
                out.push_str(&redact_word(&text[s..i]));
            }
            if i < text.len() {
                out.push(c);
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    Cow::Owned(out)
}

fn redact_word(word: &str) -> Cow<'_, str> {
    if !word.contains('@') {
        return Cow::Borrowed(word);
    }
    let quotes: &[char] = &['"', '\'', '`', '(', ')', ',', '{', '}', '[', ']'];
    let inner = word.trim_matches(quotes);
    let lead = word.len() - word.trim_start_matches(quotes).len();
    let mut out = String::with_capacity(word.len());
    out.push_str(&word[..lead]);
    out.push_str(&redact_value(inner));
    out.push_str(&word[lead + inner.len()..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_redaction_covers_malformed_urls() {
        assert_eq!(
            redact_value("socks5://u:s3cret@h:1080"),
            "socks5://u:***@h:1080"
        );
        assert_eq!(redact_value("ftp://u:p@ss@h"), "ftp://u:***@h");
        assert_eq!(redact_value("socks5://h:1080"), "socks5://h:1080");
        assert_eq!(redact_value("socks5://u:pa ss@h:1"), "socks5://u:***@h:1");
        assert_eq!(redact_value("socks5://u:pa/ss@h:1"), "socks5://u:***@h:1");
        assert_eq!(redact_value("u:secret@h:1"), "u:***@h:1");
        assert_eq!(redact_value("socks5://user@h:1"), "socks5://user@h:1");
        assert_eq!(redact_value("direct://"), "direct://");
        // No `@`: what follows a `:` is masked unless it is a port.
        assert_eq!(
            redact_value("socks5://trader:hunter2"),
            "socks5://trader:***"
        );
        assert_eq!(
            redact_value("socks5://trader:hunter2%40proxy.example.com:1080"),
            "socks5://trader:***"
        );
        assert_eq!(redact_value("socks5://p:1080"), "socks5://p:1080");
        assert_eq!(redact_value("socks5://p:1080/"), "socks5://p:1080/");
        assert_eq!(redact_value("socks5://[::1]:1080"), "socks5://[::1]:1080");
        // The colons inside brackets are the address's, even the one before `]`.
        assert_eq!(redact_value("socks5://[::]:1080"), "socks5://[::]:1080");
        assert_eq!(
            redact_value("http://[2001:db8::]:3128"),
            "http://[2001:db8::]:3128"
        );
        assert_eq!(redact_value("http://[::1]:hunter2"), "http://[::1]:***");
        assert_eq!(redact_value("http://[::1"), "http://[::1");
        // A port is digits, then the end or a path, query or fragment.
        assert_eq!(redact_value("socks5://p:1080?x"), "socks5://p:1080?x");
        assert_eq!(redact_value("socks5://p:1080#x"), "socks5://p:1080#x");
        assert_eq!(redact_value("socks5://p:1080x"), "socks5://p:***");
        assert_eq!(redact_value("socks5://p:"), "socks5://p:***");
        assert_eq!(redact_value("socks5://p"), "socks5://p");
        // A "scheme" that is not one may hold credentials.
        assert_eq!(redact_value("trader:hun://ter2@h:1"), "trader:***@h:1");
        assert_eq!(
            redact_value("trader:hunter2@h:1/x://"),
            "trader:***@h:1/x://"
        );
    }

    #[test]
    fn text_redaction_keeps_quotes_and_spacing() {
        assert_eq!(
            redact_text("bad value \"socks5://u:canary@h:1\" here"),
            "bad value \"socks5://u:***@h:1\" here"
        );
        assert_eq!(redact_text("no secrets  here"), "no secrets  here");
        assert_eq!(
            redact_text("at socks5://u:canary@h:1, or (\"http://u:c2@h:2\")"),
            "at socks5://u:***@h:1, or (\"http://u:***@h:2\")"
        );
    }

    #[test]
    fn target_urls_hide_user_information_query_values_tokens_and_fragments() {
        let cases = [
            ("https://h/p", "https://h/p"),
            ("https://h:8443/p?", "https://h:8443/p?"),
            ("https://[::1]:8443/p?a", "https://[::1]:8443/p?a"),
            (
                "https://key:secret@h/v3?symbol=BTC&signature=abc#x",
                "https://***@h/v3?symbol=***&signature=***#***",
            ),
            ("https://key@h/", "https://***@h/"),
            // A password holding `/`, `?`, `#` or `@`, unencoded.
            ("https://u:pa/ss@h/x", "https://***@h/x"),
            ("https://u:pa?ss@h/x", "https://***@h/x"),
            ("https://u:pa#ss@h/x?q=1", "https://***@h/x?q=***"),
            ("https://u:p@ss@h/x", "https://***@h/x"),
            ("https://u:pa/s/s@h/x@y", "https://***@y"),
            ("https://u:secret/x", "https://u:***/x"),
            // A password that starts with digits, split by `/`, `?` or `#`.
            ("https://u:1234/Secret@h/x", "https://***@h/x"),
            ("https://u:1234?Secret@h/x", "https://***@h/x"),
            ("https://u:1234#Secret@h/x", "https://***@h/x"),
            // A user name that looks like a host: the digits pass for a port, the rest of
            // the password is masked in its segment.
            (
                "https://first.last:1234/Secret@h/x",
                "https://first.last:1234/***@h/x",
            ),
            // `@` in the path of a good URL keeps the host, and masks what precedes it.
            (
                "wss://stream.binance.com:9443/ws/btcusdt@depth20@100ms",
                "wss://stream.binance.com:9443/ws/***@100ms",
            ),
            ("https://127.0.0.1:8443/a@b", "https://127.0.0.1:8443/***@b"),
            ("https://localhost/a@b", "https://localhost/***@b"),
            ("https://[::1]/a@b", "https://[::1]/***@b"),
            ("https://exchange.test/a@b", "https://exchange.test/***@b"),
            // A host name must be one: no leading or trailing dot.
            ("https://.x:12/a@b", "https://***@b"),
            ("https://x.:12/a@b", "https://***@b"),
            // An IPv6 host ending in `::`, with a port.
            ("https://[2001:db8::]:8443/p", "https://[2001:db8::]:8443/p"),
            ("https://[2001:db8::]:x/p", "https://[2001:***/p"),
            // A `://` that is no scheme's: the whole is read as a URL without one.
            ("u:pw@h/p://x", "***@h/p://x"),
            // Tokens in the path.
            (
                "wss://s.test/ws/pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61",
                "wss://s.test/ws/***",
            ),
            (
                "https://h/orders/3fa85f64-5717-4562-b3fc-2c963f66afa6/fills",
                "https://h/orders/***/fills",
            ),
            (
                "https://h/api/v3/depthSnapshotUpdates",
                "https://h/api/v3/depthSnapshotUpdates",
            ),
            (
                "https://h/api/v3/12345678901234567890",
                "https://h/api/v3/12345678901234567890",
            ),
            // No scheme: the same rules.
            ("u:pw@h/x", "***@h/x"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("canary");
        assert_eq!(format!("{p} {p:?} {p:#?}"), "*** *** ***");
        assert_eq!(p.expose(), "canary");
    }
}
