//! A pool member as settings give it: a URL alone, or a mapping that also says how the
//! member's sockets leave this host (a local source address, a network interface) and
//! which headers its CONNECT requests carry.
//!
//! Every combination that cannot work is refused when the member is made (from settings
//! or in code), never found at the first connection: headers on a SOCKS or direct member,
//! a source address given twice, a source of one address family for a proxy written as an
//! address of the other.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::proxy_url::{ProxyScheme, ProxyUrl, check_source};
use crate::redact::MASK;
use crate::settings::schema::{
    FieldKind, Scalar, Schema, Settings, SettingsField, SettingsKey, SettingsLeaf, SettingsOptions,
    deserialize_leaf,
};

/// The longest interface name Linux accepts (`IFNAMSIZ` less its NUL).
const INTERFACE_MAX: usize = 15;

/// Headers a CONNECT request sets itself, or that would change how it is framed.
const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "proxy-authorization",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "expect",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// Why a pool member cannot be made. The message never contains a header's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MemberError {
    message: String,
}

impl MemberError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// One member of a route: where it connects through ([`ProxyUrl`]), and optionally the
/// local address or network interface its sockets leave from and the headers its CONNECT
/// requests carry.
///
/// A source address is the local address of the member's socket: to the target for
/// `direct://` (also written `direct://192.0.2.10`), to the proxy otherwise. A socket
/// that cannot be bound to it fails the member (benched like any failure, the next member
/// tried): it never connects from the default address instead. A bound address limits
/// Happy Eyeballs to its family.
///
/// `Debug` and `Display` show passwords and header values as `***`.
///
/// ```
/// use proxy_runtime::{PoolMember, ProxyUrl};
/// let member = PoolMember::new("http://proxy.example.com:8080".parse::<ProxyUrl>()?)
///     .with_source("192.0.2.10".parse()?)?
///     .with_connect_header("x-session", "abc123")?;
/// assert_eq!(member.to_string(), "http://proxy.example.com:8080 from 192.0.2.10 (connect headers: x-session: ***)");
/// let direct: PoolMember = "direct://192.0.2.11".parse::<ProxyUrl>()?.into();
/// assert_eq!(direct.source(), Some("192.0.2.11".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PoolMember {
    url: ProxyUrl,
    source: Option<IpAddr>,
    interface: Option<String>,
    connect_headers: Vec<(HeaderName, HeaderValue)>,
    exit: Option<String>,
}

impl From<ProxyUrl> for PoolMember {
    fn from(url: ProxyUrl) -> Self {
        Self::new(url)
    }
}

impl PoolMember {
    /// The member `url`, from the default source address and without CONNECT headers.
    pub fn new(url: ProxyUrl) -> Self {
        Self {
            url,
            source: None,
            interface: None,
            connect_headers: Vec::new(),
            exit: None,
        }
    }

    /// The same member naming its exit `name` for the shared store
    /// ([`SharedSettings`](crate::SharedSettings)): every process whose member names the
    /// same exit spends one budget (machines behind one NAT gateway, a rotating provider
    /// whose many exits sit behind one host and port). Without a name, the exit is the
    /// proxy's host and port, or the source address. An error for a name that is not 1
    /// to 64 visible ASCII characters without `{` or `}`.
    pub fn with_exit(mut self, name: &str) -> Result<Self, MemberError> {
        check_exit(name)?;
        self.exit = Some(name.to_owned());
        Ok(self)
    }

    /// The exit's name given with [`with_exit`](Self::with_exit) (or `exit` in settings).
    pub fn exit(&self) -> Option<&str> {
        self.exit.as_deref()
    }

    /// The same member, its sockets bound to the local address `source` before they
    /// connect. An error when the URL already names one (`direct://ADDRESS`), or when the
    /// proxy is written as an address of the other family.
    pub fn with_source(mut self, source: IpAddr) -> Result<Self, MemberError> {
        let source = check_source(source).map_err(MemberError::new)?;
        if let ProxyUrl::DirectFrom(given) = &self.url {
            return Err(MemberError::new(format!(
                "the source address is given twice: in the URL ({given}) and as `source`; keep one"
            )));
        }
        if self
            .proxy_ip()
            .is_some_and(|proxy| proxy.is_ipv4() != source.is_ipv4())
        {
            return Err(MemberError::new(format!(
                "the source address {source} and the proxy's address are of different families: no socket can join them"
            )));
        }
        self.source = Some(source);
        Ok(self)
    }

    /// The same member, its sockets bound to the network interface `name` (Linux only:
    /// `SO_BINDTODEVICE`). An error for a name Linux cannot hold, or on another system.
    pub fn with_interface(mut self, name: &str) -> Result<Self, MemberError> {
        check_interface(name)?;
        if !cfg!(any(
            target_os = "linux",
            target_os = "android",
            target_os = "fuchsia"
        )) {
            return Err(MemberError::new(
                "binding a member to a network interface needs Linux; give its `source` address instead",
            ));
        }
        self.interface = Some(name.to_owned());
        Ok(self)
    }

    /// The same member with the header `name: value` on its CONNECT requests (an HTTP or
    /// HTTPS proxy only: SOCKS has no headers, and a direct member makes no request). The
    /// value is secret: it is never shown. An error for an invalid name or value, a
    /// header the CONNECT request sets itself (`Host`, `Proxy-Authorization`: credentials
    /// go in the URL), a name given twice, or a member that is not an HTTP proxy.
    pub fn with_connect_header(mut self, name: &str, value: &str) -> Result<Self, MemberError> {
        match self.url.endpoint().map(|e| e.scheme()) {
            Some(ProxyScheme::Http | ProxyScheme::Https) => {}
            Some(scheme) => {
                return Err(MemberError::new(format!(
                    "CONNECT headers are for http:// and https:// proxies; a {scheme}:// proxy has no headers"
                )));
            }
            None => {
                return Err(MemberError::new(
                    "CONNECT headers are for http:// and https:// proxies; a direct member sends no CONNECT request",
                ));
            }
        }
        let name = header_name(name)?;
        if self.connect_headers.iter().any(|(n, _)| *n == name) {
            return Err(MemberError::new(format!(
                "the CONNECT header `{name}` is given twice"
            )));
        }
        let mut value = header_value(value)?;
        value.set_sensitive(true);
        self.connect_headers.push((name, value));
        Ok(self)
    }

    /// Where it connects through.
    pub fn url(&self) -> &ProxyUrl {
        &self.url
    }

    /// The local address its sockets are bound to: `source`, or the address of
    /// `direct://ADDRESS`.
    pub fn source(&self) -> Option<IpAddr> {
        match &self.url {
            ProxyUrl::DirectFrom(ip) => Some(*ip),
            _ => self.source,
        }
    }

    /// The network interface its sockets are bound to.
    pub fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }

    /// The headers of its CONNECT requests (their values are marked sensitive).
    pub fn connect_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.connect_headers
    }

    /// Whether it connects straight to the target, from the default address and
    /// interface.
    pub fn is_direct(&self) -> bool {
        self.url.is_direct() && self.source.is_none() && self.interface.is_none()
    }

    /// The proxy's host when it is written as an address.
    fn proxy_ip(&self) -> Option<IpAddr> {
        match self.url.endpoint()?.host() {
            super::host::Host::Ip(ip) => Some(*ip),
            super::host::Host::Domain(_) => None,
        }
    }
}

/// The URL, then `from ADDRESS`, `on INTERFACE` and the CONNECT headers' names (values
/// `***`), in the order they are sent (by name, when read from settings).
impl fmt::Display for PoolMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)?;
        if let Some(source) = self.source {
            write!(f, " from {source}")?;
        }
        if let Some(interface) = &self.interface {
            write!(f, " on {interface}")?;
        }
        if !self.connect_headers.is_empty() {
            f.write_str(" (connect headers: ")?;
            for (i, (name, _)) in self.connect_headers.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name}: {MASK}")?;
            }
            f.write_str(")")?;
        }
        if let Some(exit) = &self.exit {
            write!(f, " as exit {exit}")?;
        }
        Ok(())
    }
}

/// `PoolMember(...)` as `Display` shows it; a member that is a URL alone shows as that
/// URL does (`ProxyUrl(...)`), as routes showed their members before members had more.
impl fmt::Debug for PoolMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source.is_none()
            && self.interface.is_none()
            && self.connect_headers.is_empty()
            && self.exit.is_none()
        {
            return fmt::Debug::fmt(&self.url, f);
        }
        write!(f, "PoolMember({self})")
    }
}

fn check_interface(name: &str) -> Result<(), MemberError> {
    if name.is_empty() || name.len() > INTERFACE_MAX {
        return Err(MemberError::new(format!(
            "an interface name has 1 to {INTERFACE_MAX} bytes"
        )));
    }
    if name == "." || name == ".." {
        return Err(MemberError::new("`.` and `..` are not interface names"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(MemberError::new(
            "an interface name has no `/`, `:`, white space or control characters",
        ));
    }
    Ok(())
}

fn check_exit(name: &str) -> Result<(), MemberError> {
    if !super::shared::is_key_part(name) {
        return Err(MemberError::new(
            "an exit name has 1 to 64 visible ASCII characters without `{` or `}`",
        ));
    }
    Ok(())
}

fn header_name(name: &str) -> Result<HeaderName, MemberError> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        MemberError::new(format!(
            "`{name}` is not a header name (letters, digits and !#$%&'*+-.^_`|~)"
        ))
    })?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) {
        return Err(MemberError::new(format!(
            "the CONNECT request sets `{parsed}` itself (credentials go in the proxy URL)"
        )));
    }
    Ok(parsed)
}

fn header_value(value: &str) -> Result<HeaderValue, MemberError> {
    if value.is_empty() {
        return Err(MemberError::new("a CONNECT header needs a value"));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(MemberError::new(
            "a CONNECT header's value must not start or end with white space",
        ));
    }
    match HeaderValue::from_str(value) {
        Ok(v) if value.is_ascii() => Ok(v),
        _ => Err(MemberError::new(
            "a CONNECT header's value holds visible ASCII and spaces only",
        )),
    }
}

/// The settings shape of a member given as a mapping.
mod fields {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::{ConnectHeaderName, ConnectHeaderValue, InterfaceName};
    use crate::model::proxy_url::ProxyUrl;
    use proxy_derive::Settings;

    #[derive(Deserialize, Settings)]
    #[serde(deny_unknown_fields)]
    #[settings(shorthand = "url")]
    pub(super) struct PoolMember {
        /// A proxy URL, `direct://`, or `direct://ADDRESS` (direct from that local address).
        pub(super) url: ProxyUrl,
        /// The local address of the member's sockets (to the proxy; to the target for `direct://`).
        #[serde(default)]
        pub(super) source: Option<std::net::IpAddr>,
        /// Linux: the network interface the member's sockets are bound to, like `eth1`.
        #[serde(default)]
        pub(super) interface: Option<InterfaceName>,
        /// Headers of the member's CONNECT requests (http/https proxies); values are secret.
        #[serde(default)]
        pub(super) connect_headers: BTreeMap<ConnectHeaderName, ConnectHeaderValue>,
        /// The exit's name in the shared store, when processes share it by another name than the proxy's host and port.
        #[serde(default)]
        pub(super) exit: Option<String>,
    }
}

/// A network interface name, checked as Linux would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceName(String);

impl SettingsLeaf for InterfaceName {
    const EXPECTED: &'static str = "a network interface name, like eth1";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        let name = value.to_text();
        check_interface(&name).map_err(|e| e.to_string())?;
        Ok(Self(name))
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.0.clone())
    }
}

impl<'de> Deserialize<'de> for InterfaceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

/// A CONNECT header's name, as a settings key: checked, in lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ConnectHeaderName(String);

impl SettingsKey for ConnectHeaderName {
    const EXPECTED: &'static str = "a header name";
    const PLACEHOLDER: &'static str = "<HEADER>";
    fn normalize_key(key: &str) -> Result<String, String> {
        header_name(key)
            .map(|n| n.as_str().to_owned())
            .map_err(|e| e.to_string())
    }
}

impl<'de> Deserialize<'de> for ConnectHeaderName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// A CONNECT header's value: secret, never shown (it has no `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConnectHeaderValue(String);

impl SettingsLeaf for ConnectHeaderValue {
    const EXPECTED: &'static str = "a header value (visible ASCII)";
    const SENSITIVE: bool = true;
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        // A number or a boolean would be sent as YAML reads it (`0123` as `123`): the
        // value must be written as text, quoted if need be.
        let Scalar::Text(text) = value else {
            return Err(format!(
                "a CONNECT header's value is text: quote it; found {}",
                value.kind_name()
            ));
        };
        header_value(text).map_err(|e| e.to_string())?;
        Ok(Self(text.clone()))
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.0.clone())
    }
}

impl<'de> Deserialize<'de> for ConnectHeaderValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

/// The schema of the settings shape: `url` (a value given alone), `source`, `interface`,
/// `connect_headers`.
impl Settings for PoolMember {
    const OPTIONS: SettingsOptions = SettingsOptions {
        env_prefix: None,
        yaml_section: None,
        config_env: None,
    };
    fn schema() -> &'static Schema {
        <fields::PoolMember as Settings>::schema()
    }
}

impl SettingsField for PoolMember {
    fn kind() -> FieldKind {
        <fields::PoolMember as SettingsField>::kind()
    }
}

/// Reads the settings shape (from the settings loader, or any serde input: a URL alone, or
/// a mapping), with the checks of the `with_*` methods (an error keeps the member's
/// origin).
impl<'de> Deserialize<'de> for PoolMember {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;

        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = fields::PoolMember;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a proxy URL, or a mapping with `url`, `source`, `interface`, `connect_headers` and `exit`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(fields::PoolMember {
                    url: ProxyUrl::parse(text).map_err(E::custom)?,
                    source: None,
                    interface: None,
                    connect_headers: BTreeMap::new(),
                    exit: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                fields::PoolMember::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        let fields = d.deserialize_any(Shape)?;
        let mut member = PoolMember::new(fields.url);
        if let Some(source) = fields.source {
            member = member.with_source(source).map_err(D::Error::custom)?;
        }
        if let Some(InterfaceName(name)) = fields.interface {
            member = member.with_interface(&name).map_err(D::Error::custom)?;
        }
        if let Some(exit) = fields.exit {
            member = member.with_exit(&exit).map_err(D::Error::custom)?;
        }
        let headers: BTreeMap<_, _> = fields.connect_headers;
        for (ConnectHeaderName(name), ConnectHeaderValue(value)) in headers {
            member = member
                .with_connect_header(&name, &value)
                .map_err(D::Error::custom)?;
        }
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(url: &str) -> PoolMember {
        PoolMember::new(url.parse().unwrap())
    }

    #[test]
    fn an_exit_name_is_1_to_64_visible_characters_without_braces_and_is_shown() {
        let m = member("socks5h://p:1080").with_exit("nat-gw-1").unwrap();
        assert_eq!(m.exit(), Some("nat-gw-1"));
        assert_eq!(m.to_string(), "socks5h://p:1080 as exit nat-gw-1");
        assert_eq!(
            format!("{m:?}"),
            "PoolMember(socks5h://p:1080 as exit nat-gw-1)"
        );
        assert_eq!(member("socks5h://p:1080").exit(), None);
        for bad in ["", "a b", "{x}", "x}", "\u{e9}", &"x".repeat(65)] {
            assert!(member("direct://").with_exit(bad).is_err(), "{bad:?}");
        }
        assert!(member("direct://").with_exit(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn interface_names_hold_one_to_fifteen_bytes_of_what_linux_accepts() {
        assert!(check_interface(&"e".repeat(15)).is_ok());
        assert!(check_interface(&"e".repeat(16)).is_err());
        assert!(check_interface("").is_err());
        for bad in [".", "..", "eth/0", "eth:0", "eth 0", "eth\u{7}"] {
            assert!(check_interface(bad).is_err(), "{bad:?}");
        }
        for good in ["lo", "eth0", "wg-exit.2", "...", ".eth"] {
            assert!(check_interface(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn header_values_are_trimmed_ascii_text() {
        for bad in [
            "",
            " x",
            "x ",
            "\tx",
            "x\t",
            "a\r\nb",
            "caf\u{e9}",
            "a\u{7f}",
        ] {
            assert!(header_value(bad).is_err(), "{bad:?}");
        }
        for good in ["x", "a b", "Bearer t0k3n==", "~!@#"] {
            assert!(header_value(good).is_ok(), "{good:?}");
        }
        assert!(header_name("x-session").is_ok());
        for reserved in RESERVED_HEADERS {
            assert!(header_name(reserved).is_err(), "{reserved}");
            assert!(
                header_name(&reserved.to_ascii_uppercase()).is_err(),
                "{reserved}"
            );
        }
    }

    #[test]
    fn only_a_member_without_a_source_or_interface_is_direct() {
        assert!(member("direct://").is_direct());
        assert!(!member("direct://127.0.0.2").is_direct());
        assert!(!member("socks5h://p:1").is_direct());
        let from = member("direct://").with_source("10.0.0.1".parse().unwrap());
        assert!(!from.unwrap().is_direct());
        assert!(
            !member("direct://")
                .with_interface("lo")
                .unwrap()
                .is_direct()
        );
    }

    #[test]
    fn display_names_the_source_the_interface_and_the_header_names() {
        let shown = member("socks5h://u:pw@p:1080")
            .with_source("10.0.0.1".parse().unwrap())
            .unwrap()
            .with_interface("eth1")
            .unwrap()
            .to_string();
        assert_eq!(shown, "socks5h://u:***@p:1080 from 10.0.0.1 on eth1");
        let headers = member("http://p:1")
            .with_connect_header("x-a", "1")
            .unwrap()
            .with_connect_header("x-b", "2")
            .unwrap();
        assert_eq!(
            headers.to_string(),
            "http://p:1 (connect headers: x-a: ***, x-b: ***)"
        );
        assert_eq!(format!("{headers:?}"), format!("PoolMember({headers})"));
        assert_eq!(
            format!("{:?}", member("http://p:1")),
            "ProxyUrl(http://p:1)"
        );
    }

    #[test]
    fn a_source_must_share_the_family_of_a_proxy_written_as_an_address() {
        let v4 = || member("http://192.0.2.1:3128");
        assert!(v4().with_source("192.0.2.9".parse().unwrap()).is_ok());
        assert!(v4().with_source("2001:db8::9".parse().unwrap()).is_err());
        // A proxy named by host name may resolve to either family.
        let named = member("http://proxy.example:3128");
        assert!(named.with_source("2001:db8::9".parse().unwrap()).is_ok());
        assert!(
            member("direct://192.0.2.2")
                .with_source("192.0.2.2".parse().unwrap())
                .unwrap_err()
                .to_string()
                .contains("given twice")
        );
    }
}
