//! Proxy URLs: parsed and validated once, when settings are loaded.
//!
//! This module owns the grammar of a proxy URL and nothing else. It is deliberately stricter
//! than the WHATWG URL parser of the `url` crate, which strips tabs and newlines, drops a
//! port equal to the scheme's default and treats the host of an unknown scheme as opaque
//! text: a proxy URL that is not exactly what the operator meant must be an error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::host::Host;
use crate::redact::{MASK, Password};
use crate::settings::schema::{Scalar, SettingsLeaf, deserialize_leaf};

/// How to talk to a proxy, from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// `http://`: HTTP CONNECT over plain TCP.
    Http,
    /// `https://`: HTTP CONNECT over TLS to the proxy.
    Https,
    /// `socks4://`: the target's name is resolved locally and sent as an IPv4 address.
    Socks4,
    /// `socks4a://`: the proxy resolves the target's name.
    Socks4a,
    /// `socks5://`: the target's name is resolved locally and sent as an address.
    Socks5,
    /// `socks5h://`: the proxy resolves the target's name.
    Socks5h,
}

impl ProxyScheme {
    /// Every scheme, in the order error messages list them.
    pub const ALL: [ProxyScheme; 6] = [
        ProxyScheme::Http,
        ProxyScheme::Https,
        ProxyScheme::Socks4,
        ProxyScheme::Socks4a,
        ProxyScheme::Socks5,
        ProxyScheme::Socks5h,
    ];

    /// The scheme as written in a URL, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks4 => "socks4",
            ProxyScheme::Socks4a => "socks4a",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    /// Whether the target's host name is resolved on this machine (`socks4`, `socks5`)
    /// rather than by the proxy. Local resolution shows the target to local DNS.
    pub fn resolves_locally(self) -> bool {
        matches!(self, ProxyScheme::Socks4 | ProxyScheme::Socks5)
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for ProxyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A proxy server: scheme, host, port and optional credentials.
///
/// `Debug` and `Display` never show the password; [`Password::expose`] is the only way to it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyEndpoint {
    scheme: ProxyScheme,
    host: Host,
    port: u16,
    username: Option<String>,
    password: Option<Password>,
}

impl ProxyEndpoint {
    /// The scheme.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }
    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }
    /// The port (always given explicitly in the URL).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The user name, percent-decoded.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
    /// The password, percent-decoded and wrapped so it cannot be printed by accident.
    pub fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }
}

impl fmt::Display for ProxyEndpoint {
    /// The URL with the password replaced by `***` (user name kept, percent-encoded).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if let Some(user) = &self.username {
            write_encoded(f, user)?;
            if self.password.is_some() {
                write!(f, ":{MASK}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ProxyEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyEndpoint({self})")
    }
}

/// A validated proxy URL, or `direct://`, the explicit "no proxy here" (`direct://ADDRESS`:
/// no proxy, from that local address).
///
/// Parse it with [`ProxyUrl::parse`] or [`str::parse`]; settings loaders do that for you.
/// `Display` and `Debug` show the password as `***`.
///
/// ```
/// use proxy_runtime::{ProxyUrl, ProxyScheme};
/// let url: ProxyUrl = "socks5h://trader:p%40ss@proxy.example.com:1080".parse()?;
/// let proxy = url.endpoint().expect("not direct");
/// assert_eq!(proxy.scheme(), ProxyScheme::Socks5h);
/// assert_eq!(proxy.username(), Some("trader"));
/// assert_eq!(proxy.password().map(|p| p.expose()), Some("p@ss"));
/// assert_eq!(url.to_string(), "socks5h://trader:***@proxy.example.com:1080");
/// assert!("direct://".parse::<ProxyUrl>()?.is_direct());
/// let source: ProxyUrl = "direct://[2001:db8::10]".parse()?;
/// assert_eq!(source.to_string(), "direct://[2001:db8::10]");
/// # Ok::<(), proxy_runtime::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyUrl {
    /// `direct://`: connect without a proxy, and do not fall back to the default route.
    Direct,
    /// `direct://192.0.2.10` or `direct://[2001:db8::10]`: connect without a proxy, from
    /// this local address (a socket that cannot be bound to it fails; it never connects
    /// from another address).
    DirectFrom(IpAddr),
    /// A proxy server.
    Proxy(ProxyEndpoint),
}

/// Why a proxy URL was rejected. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UrlError {
    message: String,
}

impl UrlError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

const SCHEMES_HELP: &str = "http, https, socks4, socks4a, socks5, socks5h, or direct://";

impl ProxyUrl {
    /// Parses and validates a proxy URL.
    ///
    /// Accepted: `SCHEME://[USER[:PASSWORD]@]HOST:PORT[/]` with a scheme of
    /// [`ProxyScheme`], a DNS name, IPv4 address or bracketed IPv6 address, an explicit port
    /// in 1..=65535, and user and password percent-decoded exactly once; or `direct://`.
    /// Rejected: whitespace or control characters anywhere, a path, query or fragment,
    /// invalid percent escapes, more than one `@`, a password on a SOCKS4 URL (SOCKS4 has
    /// only a user id), and SOCKS5 credentials that the protocol cannot carry (an empty user
    /// name, or a user name or password over 255 bytes).
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        if input.is_empty() {
            return Err(UrlError::new("empty proxy URL"));
        }
        if let Some((i, c)) = input
            .char_indices()
            .find(|(_, c)| c.is_whitespace() || c.is_control())
        {
            return Err(UrlError::new(format!(
                "proxy URL contains {} at byte {i}; remove it (it is never stripped silently)",
                describe_char(c)
            )));
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(UrlError::new(format!(
                "Proxy URL must include scheme ({SCHEMES_HELP})"
            )));
        };
        if scheme.eq_ignore_ascii_case("direct") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            return if rest.is_empty() {
                Ok(ProxyUrl::Direct)
            } else {
                parse_source(rest).map(ProxyUrl::DirectFrom)
            };
        }
        if scheme.is_empty() {
            return Err(UrlError::new(format!(
                "Proxy URL must include scheme ({SCHEMES_HELP})"
            )));
        }
        let Some(scheme) = ProxyScheme::parse(scheme) else {
            // Echo only what looks like a scheme: text before `://` may be credentials.
            let looks_like_scheme = scheme.len() <= 32
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            return Err(UrlError::new(if looks_like_scheme {
                format!("Unsupported proxy scheme: {scheme} (expected {SCHEMES_HELP})")
            } else {
                format!("Proxy URL must start with a scheme ({SCHEMES_HELP})")
            }));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if !(tail.is_empty() || tail == "/") {
            return Err(UrlError::new(
                "proxy URL must not have a path, query or fragment",
            ));
        }
        let (userinfo, hostport) = match authority.rfind('@') {
            None => (None, authority),
            Some(at) => {
                if authority[..at].contains('@') {
                    return Err(UrlError::new(
                        "proxy URL has more than one `@`; percent-encode `@` in the user name or password as %40",
                    ));
                }
                (Some(&authority[..at]), &authority[at + 1..])
            }
        };
        let (host, port) = parse_host_port(hostport)?;
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = percent_decode(user, "user name")?;
                if user.is_empty() {
                    return Err(UrlError::new(
                        "the user name is empty: write USER:PASSWORD@ before the host, or nothing",
                    ));
                }
                let pass = pass.map(|p| percent_decode(p, "password")).transpose()?;
                (Some(user), pass.map(Password::new))
            }
        };
        check_credentials(scheme, username.as_deref(), password.as_ref())?;
        Ok(ProxyUrl::Proxy(ProxyEndpoint {
            scheme,
            host,
            port,
            username,
            password,
        }))
    }

    /// Whether this is `direct://` (from the default address: not `direct://ADDRESS`).
    pub fn is_direct(&self) -> bool {
        matches!(self, ProxyUrl::Direct)
    }

    /// The proxy server, or `None` for `direct://` and `direct://ADDRESS`.
    pub fn endpoint(&self) -> Option<&ProxyEndpoint> {
        match self {
            ProxyUrl::Direct | ProxyUrl::DirectFrom(_) => None,
            ProxyUrl::Proxy(p) => Some(p),
        }
    }

    /// The URL as it must be written to be parsed back, password included. For the settings
    /// loader only: never print it.
    pub(crate) fn to_unredacted_string(&self) -> String {
        match self {
            ProxyUrl::Direct | ProxyUrl::DirectFrom(_) => self.to_string(),
            ProxyUrl::Proxy(p) => {
                let mut s = format!("{}://", p.scheme);
                if let Some(user) = &p.username {
                    s.push_str(&encode(user));
                    if let Some(pass) = &p.password {
                        s.push(':');
                        s.push_str(&encode(pass.expose()));
                    }
                    s.push('@');
                }
                s.push_str(&format!("{}:{}", p.host, p.port));
                s
            }
        }
    }
}

impl FromStr for ProxyUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The URL with the password replaced by `***`.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyUrl::Direct => f.write_str("direct://"),
            ProxyUrl::DirectFrom(IpAddr::V4(ip)) => write!(f, "direct://{ip}"),
            ProxyUrl::DirectFrom(IpAddr::V6(ip)) => write!(f, "direct://[{ip}]"),
            ProxyUrl::Proxy(p) => fmt::Display::fmt(p, f),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// Read from text, as settings give it.
impl SettingsLeaf for ProxyUrl {
    const EXPECTED: &'static str = "a proxy URL (SCHEME://[USER:PASSWORD@]HOST:PORT with scheme http, https, socks4, socks4a, socks5 or socks5h), direct://, or direct://ADDRESS";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Text(t) => ProxyUrl::parse(t).map_err(|e| e.to_string()),
            other => Err(format!("expected a proxy URL, found {}", other.kind_name())),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.to_unredacted_string())
    }
}

impl<'de> serde::Deserialize<'de> for ProxyUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

/// The local address of `direct://ADDRESS`: an IPv4 address, or an IPv6 one in brackets;
/// no name (it would be resolved at each connection) and no port (the system picks it).
fn parse_source(rest: &str) -> Result<IpAddr, UrlError> {
    const FORM: &str = "after direct:// comes nothing, or a local address: direct://192.0.2.10 or direct://[2001:db8::10]";
    if let Some(inside) = rest.strip_prefix('[') {
        return match inside.strip_suffix(']').map(Ipv6Addr::from_str) {
            Some(Ok(ip)) => check_source(IpAddr::V6(ip)).map_err(UrlError::new),
            _ => Err(UrlError::new(format!(
                "invalid IPv6 source address; {FORM}"
            ))),
        };
    }
    if rest.contains(['@', '?', '#', '/']) {
        return Err(UrlError::new(format!(
            "direct:// has no user, path, query or fragment; {FORM}"
        )));
    }
    if rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let ip = Ipv4Addr::from_str(rest)
            .map_err(|_| UrlError::new(format!("invalid IPv4 source address; {FORM}")))?;
        return check_source(IpAddr::V4(ip)).map_err(UrlError::new);
    }
    if rest.contains(':') {
        return Err(UrlError::new(format!(
            "a source address takes no port (the system picks it), and an IPv6 one goes in brackets; {FORM}"
        )));
    }
    Err(UrlError::new(format!(
        "a source is an address, not a name; {FORM}"
    )))
}

/// A local address a socket can be bound to so that it leaves from it, and only from
/// it: not the unspecified address (binding to it lets the system pick any), not a
/// multicast or broadcast address, not a link-local IPv6 address (it needs a scope: bind
/// the member to its `interface` instead). An IPv4 address written as IPv6
/// (`::ffff:192.0.2.10`) is taken as the IPv4 address.
pub(crate) fn check_source(ip: IpAddr) -> Result<IpAddr, String> {
    let ip = ip.to_canonical();
    let refused = match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => {
            Some("the unspecified address lets the system pick any address")
        }
        IpAddr::V6(v6) if v6.is_unspecified() => {
            Some("the unspecified address lets the system pick any address")
        }
        IpAddr::V4(v4) if v4.is_broadcast() => Some("a broadcast address"),
        ip if ip.is_multicast() => Some("a multicast address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            Some("a link-local address needs a scope: bind the member to its `interface` instead")
        }
        _ => None,
    };
    match refused {
        Some(why) => Err(format!(
            "{ip} cannot be a source address ({why}): give an address of this host"
        )),
        None => Ok(ip),
    }
}

fn describe_char(c: char) -> String {
    match c {
        '\r' => "a carriage return".into(),
        '\n' => "a line feed".into(),
        '\t' => "a tab".into(),
        '\0' => "a NUL character".into(),
        ' ' => "a space".into(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("the white space character U+{:04X}", c as u32),
    }
}

fn parse_host_port(hostport: &str) -> Result<(Host, u16), UrlError> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(UrlError::new("IPv6 host has no closing `]`"));
        };
        let addr = Ipv6Addr::from_str(inside)
            .map_err(|_| UrlError::new("invalid IPv6 address in brackets"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => return Err(UrlError::new("Proxy URL must include port")),
            None => return Err(UrlError::new("unexpected text after the IPv6 address")),
        };
        (Host::Ip(IpAddr::V6(addr)), port)
    } else {
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err(UrlError::new("Proxy URL must include hostname"));
        }
        let Some(port) = port else {
            return Err(UrlError::new("Proxy URL must include port"));
        };
        (parse_host(host)?, port)
    };
    if port.is_empty() {
        return Err(UrlError::new("Proxy URL must include port"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::new("proxy port must be a number from 1 to 65535"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host, p)),
        _ => Err(UrlError::new("proxy port must be a number from 1 to 65535")),
    }
}

fn parse_host(host: &str) -> Result<Host, UrlError> {
    if host.contains(':') {
        return Err(UrlError::new(
            "an IPv6 proxy address must be in brackets: [addr]:port",
        ));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ipv4Addr::from_str(host)
            .map(|a| Host::Ip(IpAddr::V4(a)))
            .map_err(|_| UrlError::new("invalid IPv4 address"));
    }
    if host.len() > 253 {
        return Err(UrlError::new("proxy host name is longer than 253 bytes"));
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if !trimmed.split('.').all(valid_label) {
        return Err(UrlError::new(
            "invalid proxy host name (letters, digits, `-`, `_` and dots; non-ASCII names must be written in punycode)",
        ));
    }
    Ok(Host::Domain(host.to_ascii_lowercase()))
}

fn percent_decode(s: &str, what: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err(UrlError::new(format!(
                    "invalid percent escape in the {what}: `%` must be followed by two hex digits (write `%` itself as %25)"
                )));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| UrlError::new(format!("the {what} is not UTF-8 once percent-decoded")))
}

/// Percent-encodes everything but unreserved characters, so that the result parses back
/// to the same string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn write_encoded(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str(&encode(s))
}

fn check_credentials(
    scheme: ProxyScheme,
    user: Option<&str>,
    pass: Option<&Password>,
) -> Result<(), UrlError> {
    match scheme {
        ProxyScheme::Socks4 | ProxyScheme::Socks4a => {
            if pass.is_some() {
                return Err(UrlError::new(
                    "SOCKS4 has a user id but no password: remove `:password` or use socks5",
                ));
            }
            if user.is_some_and(|u| u.contains('\0')) {
                return Err(UrlError::new("SOCKS4 user id must not contain NUL"));
            }
            if user.is_some_and(|u| u.len() > 255) {
                return Err(UrlError::new("SOCKS4 user id is longer than 255 bytes"));
            }
        }
        ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
            if let Some(user) = user {
                if user.len() > 255 {
                    return Err(UrlError::new("SOCKS5 user name is longer than 255 bytes"));
                }
                match pass.map(|p| p.expose().len()) {
                    None | Some(0) => {
                        return Err(UrlError::new(
                            "SOCKS5 authentication needs a password of 1 to 255 bytes",
                        ));
                    }
                    Some(n) if n > 255 => {
                        return Err(UrlError::new("SOCKS5 password is longer than 255 bytes"));
                    }
                    Some(_) => {}
                }
            }
        }
        ProxyScheme::Http | ProxyScheme::Https => {
            if user.is_some_and(|u| u.contains(':')) {
                return Err(UrlError::new(
                    "HTTP proxy user name must not contain `:` (Basic authentication cannot carry it)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        ProxyUrl::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn seed_valid_url() {
        let url = ProxyUrl::parse("socks5://user:pass@proxy:1080").unwrap();
        let p = url.endpoint().unwrap();
        assert_eq!(p.scheme(), ProxyScheme::Socks5);
        assert_eq!(p.host(), &Host::Domain("proxy".into()));
        assert_eq!(p.port(), 1080);
        assert_eq!(p.username(), Some("user"));
        assert_eq!(p.password().unwrap().expose(), "pass");
    }

    #[test]
    fn seed_invalid_urls() {
        assert!(err("invalid-url").contains("must include scheme"));
        assert!(err("ftp://proxy:21").contains("Unsupported proxy scheme: ftp"));
        assert!(err("socks6://proxy:1").contains("Unsupported proxy scheme: socks6"));
        assert!(err("socks5://:1080").contains("hostname"));
        assert!(err("socks5://proxy").contains("port"));
        assert!(err("http://proxy").contains("port"));
        assert!(err("://proxy:1").contains("scheme"));
    }

    #[test]
    fn ports() {
        assert!(err("socks5://p:0").contains("1 to 65535"));
        assert!(err("socks5://p:99999").contains("1 to 65535"));
        assert!(err("socks5://p:http").contains("1 to 65535"));
        assert!(err("socks5://p:").contains("port"));
        assert!(err("socks5://p:+80").contains("1 to 65535"));
        // An explicit default port is kept (the WHATWG parser would drop it).
        let url = ProxyUrl::parse("http://p:80").unwrap();
        assert_eq!(url.endpoint().unwrap().port(), 80);
    }

    #[test]
    fn control_characters_and_whitespace_are_errors() {
        for bad in [
            "socks5://p:1080\r",
            "socks5://p:10\n80",
            "socks5://p\t:1080",
            "socks5://p:1080\0",
            "socks5://u:pa ss@p:1080",
            " socks5://p:1080",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn credentials_are_decoded_once() {
        let url = ProxyUrl::parse("http://user:p%40ss%3Aw0rd@p:8080").unwrap();
        assert_eq!(
            url.endpoint().unwrap().password().unwrap().expose(),
            "p@ss:w0rd"
        );
        let url = ProxyUrl::parse("http://u:a%2Fb%2525@p:8080").unwrap();
        assert_eq!(
            url.endpoint().unwrap().password().unwrap().expose(),
            "a/b%25"
        );
        assert!(err("http://u:%ZZ@p:1").contains("percent escape"));
        assert!(err("http://u:abc%@p:1").contains("percent escape"));
        assert!(err("http://u:p@ss@p:1").contains("more than one `@`"));
    }

    #[test]
    fn round_trip_through_unredacted_form() {
        for s in [
            "socks5h://u%20x:p%40ss%3A%2F%25@Proxy.Example.com:1080",
            "http://[::1]:3128",
            "socks4a://uid@10.0.0.1:1080/",
            "direct://",
            "direct://192.0.2.10",
            "direct://[2001:db8::10]/",
        ] {
            let url = ProxyUrl::parse(s).unwrap();
            let again = ProxyUrl::parse(&url.to_unredacted_string()).unwrap();
            assert_eq!(url, again, "{s}");
        }
    }

    #[test]
    fn hosts() {
        let url = ProxyUrl::parse("socks5://[2001:db8::1]:1080").unwrap();
        let p = url.endpoint().unwrap();
        assert_eq!(p.host().to_string(), "[2001:db8::1]");
        assert_eq!(p.host().bare(), "2001:db8::1");
        assert!(err("socks5://2001:db8::1:1080").contains("brackets"));
        assert!(err("socks5://[2001:db8::1]").contains("port"));
        assert!(err("socks5://[zz]:1").contains("IPv6"));
        assert!(err("socks5://999.1.1.1:1").contains("IPv4"));
        assert!(err("socks5://bad%host:1").contains("host name"));
        assert!(err("socks5://prøxy:1").contains("punycode"));
        assert_eq!(
            ProxyUrl::parse("SOCKS5H://PROXY:1").unwrap().to_string(),
            "socks5h://proxy:1"
        );
    }

    #[test]
    fn path_query_fragment_are_errors() {
        assert!(err("http://p:1/x").contains("path"));
        assert!(err("http://p:1?x").contains("query"));
        assert!(err("http://p:1#x").contains("fragment"));
        assert!(err("direct://x").contains("not a name"));
        assert!(err("direct://1.2.3.4:80").contains("no port"));
        assert!(err("direct://::1").contains("brackets"));
        assert!(err("direct://[::1]:80").contains("IPv6"));
        assert!(err("direct://[zz]").contains("IPv6"));
        assert!(err("direct://1.2.3").contains("IPv4"));
        assert!(err("direct://u@1.2.3.4").contains("no user"));
        assert!(err("direct://1.2.3.4/x").contains("no user, path"));
        assert!(err("direct://1.2.3.4?x").contains("query"));
    }

    #[test]
    fn scheme_specific_credentials() {
        assert!(err("socks4://u:p@h:1").contains("no password"));
        assert!(err("socks5://:p@h:1").contains("empty"));
        let long = "a".repeat(256);
        assert!(err(&format!("socks5://{long}:p@h:1")).contains("255"));
        assert!(err(&format!("socks5://u:{long}@h:1")).contains("255"));
        let ok = "a".repeat(255);
        assert!(ProxyUrl::parse(&format!("socks5://{ok}:{ok}@h:1")).is_ok());
        // A SOCKS4 user id has the same bound.
        for scheme in ["socks4", "socks4a"] {
            assert!(ProxyUrl::parse(&format!("{scheme}://{ok}@h:1")).is_ok());
            assert!(err(&format!("{scheme}://{long}@h:1")).contains("longer than 255 bytes"));
        }
    }

    #[test]
    fn which_schemes_resolve_the_target_here() {
        let local: Vec<_> = ProxyScheme::ALL
            .into_iter()
            .filter(|s| s.resolves_locally())
            .collect();
        assert_eq!(local, [ProxyScheme::Socks4, ProxyScheme::Socks5]);
    }

    #[test]
    fn unexpected_characters_are_named() {
        assert!(err("socks5://p:10\u{7}80").contains("the control character U+0007"));
        assert!(err("socks5://p:10\u{a0}80").contains("the white space character U+00A0"));
        assert!(err("socks5://[::1]x:1").contains("unexpected text after the IPv6 address"));
        assert!(err("socks5://[::1]").contains("must include port"));
    }

    #[test]
    fn host_names_up_to_253_bytes() {
        // Labels of 63 bytes (the most a label may have), joined by dots.
        let name = |len: usize| {
            let mut s = String::new();
            while s.len() < len {
                if !s.is_empty() {
                    s.push('.');
                }
                let label = (len - s.len()).min(63);
                s.push_str(&"a".repeat(label));
            }
            s
        };
        let longest = name(253);
        assert_eq!(longest.len(), 253);
        let url = ProxyUrl::parse(&format!("socks5h://{longest}:1080")).unwrap();
        assert_eq!(url.endpoint().unwrap().host().to_string(), longest);
        assert!(err(&format!("socks5h://{}:1080", name(254))).contains("longer than 253 bytes"));
    }

    #[test]
    fn display_and_debug_redact() {
        let url = ProxyUrl::parse("socks5://user:canary@h:1").unwrap();
        for shown in [format!("{url}"), format!("{url:?}"), format!("{url:#?}")] {
            assert!(!shown.contains("canary"), "{shown}");
            assert!(shown.contains("user:***@h:1"), "{shown}");
        }
        assert_eq!(
            format!("{:?}", url.endpoint().unwrap()),
            "ProxyEndpoint(socks5://user:***@h:1)"
        );
        assert_eq!(format!("{url:?}"), "ProxyUrl(socks5://user:***@h:1)");
    }
}
