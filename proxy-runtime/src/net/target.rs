//! Connection targets (host and port, from a URL) and name resolution.
//!
//! Resolution goes through the [`Resolve`] trait so that tests can prove which names are
//! looked up locally and which are left to the proxy.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use super::error::{ProxyError, ProxyErrorKind};
use crate::Host;

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    host: Host,
    port: u16,
}

impl Target {
    /// A target from its parts. A host in brackets or that parses as an IP address is an
    /// address; anything else is a name.
    pub fn new(host: &str, port: u16) -> Result<Self, ProxyError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host = match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => {
                let name = bare.strip_suffix('.').unwrap_or(bare);
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
                {
                    return Err(ProxyError::new(ProxyErrorKind::InvalidTarget).detail(
                        "the target host must be an ASCII name (punycode) or an IP address",
                    ));
                }
                Host::Domain(name.to_ascii_lowercase())
            }
        };
        Ok(Self { host, port })
    }

    /// The target of a URL: its host, and its port or the scheme's default
    /// (`http`/`ws` 80, `https`/`wss` 443).
    pub fn from_url(url: &url::Url) -> Result<Self, ProxyError> {
        let host = url.host_str().ok_or_else(|| {
            ProxyError::new(ProxyErrorKind::InvalidTarget).detail("the URL has no host")
        })?;
        let port = url.port_or_known_default().ok_or_else(|| {
            ProxyError::new(ProxyErrorKind::InvalidTarget)
                .detail(format!("no default port for the `{}` scheme", url.scheme()))
        })?;
        Self::new(host, port)
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// `host:port`, with an IPv6 address in brackets (as in CONNECT and `Host:`).
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A future returned by [`Resolve::resolve`].
pub type Resolving<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Resolves host names. The default, [`SystemResolver`], asks the operating system.
pub trait Resolve: Send + Sync + fmt::Debug {
    /// The addresses of `host` (a name, never an IP literal) at `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a>;
}

/// Resolves with the operating system (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_and_brackets() {
        let t = |s: &str| {
            Target::from_url(&url::Url::parse(s).unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(t("ws://example.com/x"), "example.com:80");
        assert_eq!(t("wss://example.com/x"), "example.com:443");
        assert_eq!(t("http://example.com"), "example.com:80");
        assert_eq!(t("https://Example.COM:8443/a?b"), "example.com:8443");
        assert_eq!(t("https://[::1]/"), "[::1]:443");
        assert_eq!(t("wss://127.0.0.1:9443"), "127.0.0.1:9443");
        let v6 = Target::from_url(&url::Url::parse("https://[2001:db8::1]:8443").unwrap()).unwrap();
        assert_eq!(v6.host().bare(), "2001:db8::1");
        assert!(Target::from_url(&url::Url::parse("foo://x").unwrap()).is_err());
    }
}
