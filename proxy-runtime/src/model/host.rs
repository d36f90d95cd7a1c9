//! Hosts: the one type for where a proxy or a target lives, a DNS name or an IP address.
//!
//! Owns how a host is written (IPv6 in brackets in URLs, CONNECT and `Host:`; bare for
//! resolvers and TLS server names). Parsing is left to the owners of each grammar: proxy
//! URLs ([`crate::ProxyUrl`]) and targets ([`crate::Target`]).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// A proxy's or a target's host: a DNS name, or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// A DNS name in ASCII (international names in punycode), lowercase.
    Domain(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

impl Host {
    /// The host without brackets, as a resolver or a TLS server name takes it.
    ///
    /// ```
    /// use proxy_runtime::Host;
    /// let v6 = Host::Ip("2001:db8::1".parse().unwrap());
    /// assert_eq!(v6.bare(), "2001:db8::1");
    /// assert_eq!(v6.to_string(), "[2001:db8::1]");
    /// ```
    pub fn bare(&self) -> Cow<'_, str> {
        match self {
            Host::Domain(name) => Cow::Borrowed(name),
            Host::Ip(ip) => Cow::Owned(ip.to_string()),
        }
    }

    /// The name, or `None` for an address.
    pub fn domain(&self) -> Option<&str> {
        match self {
            Host::Domain(name) => Some(name),
            Host::Ip(_) => None,
        }
    }
}

/// The host as a URL writes it: an IPv6 address in brackets.
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}
