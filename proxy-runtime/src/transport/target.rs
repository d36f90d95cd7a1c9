//! Connection targets (host and port, from a URL: the one table of target schemes, their
//! kinds, default ports and TLS) and name resolution.
//!
//! Resolution goes through the [`Resolve`] trait so that tests can prove which names are
//! looked up locally and which are left to the proxy.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use crate::error::{ProxyError, ProxyErrorKind};
use crate::model::host::Host;
use crate::model::key::ConnectionKind;

/// The schemes of target URLs: the kind of traffic each is for, its default port, and
/// whether it takes TLS. Matched as `http::Uri` gives them (lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetScheme {
    /// `http://`.
    Http,
    /// `https://`.
    Https,
    /// `ws://`.
    Ws,
    /// `wss://`.
    Wss,
}

impl TargetScheme {
    const ALL: [TargetScheme; 4] = [
        TargetScheme::Http,
        TargetScheme::Https,
        TargetScheme::Ws,
        TargetScheme::Wss,
    ];

    /// The scheme of `uri`, if it is one of these.
    pub(crate) fn of(uri: &http::Uri) -> Option<Self> {
        let written = uri.scheme_str()?;
        Self::ALL.into_iter().find(|s| s.as_str() == written)
    }

    fn as_str(self) -> &'static str {
        match self {
            TargetScheme::Http => "http",
            TargetScheme::Https => "https",
            TargetScheme::Ws => "ws",
            TargetScheme::Wss => "wss",
        }
    }

    /// The kind of traffic: HTTP requests, or WebSocket streams.
    pub(crate) fn kind(self) -> ConnectionKind {
        match self {
            TargetScheme::Http | TargetScheme::Https => ConnectionKind::Http,
            TargetScheme::Ws | TargetScheme::Wss => ConnectionKind::Websocket,
        }
    }

    /// The port of a URL that gives none.
    pub(crate) fn default_port(self) -> u16 {
        if self.tls() { 443 } else { 80 }
    }

    /// Whether TLS to the target is spoken.
    pub(crate) fn tls(self) -> bool {
        matches!(self, TargetScheme::Https | TargetScheme::Wss)
    }
}

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

    /// The target of a URI (the one parser of target URLs: the one hyper and tungstenite
    /// send requests by): its host, and its port or `default_port`. A URI with user
    /// information is refused: it would be read differently by different parsers, and
    /// credentials belong in headers.
    pub(crate) fn from_uri(uri: &http::Uri, default_port: u16) -> Result<Self, ProxyError> {
        let invalid =
            |what: &str| ProxyError::new(ProxyErrorKind::InvalidTarget).detail(what.to_owned());
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("the URL has no host"))?;
        let written = authority.as_str();
        if written.contains('@') {
            return Err(invalid(
                "the URL has user information; send credentials in a header (basic_auth() for HTTP)",
            ));
        }
        let has_port = written
            .rfind(':')
            .is_some_and(|i| !written[i..].contains(']'));
        if has_port && uri.port_u16().is_none() {
            return Err(invalid("the URL's port is not a number from 0 to 65535"));
        }
        Self::new(authority.host(), uri.port_u16().unwrap_or(default_port))
    }

    /// The target of a `url::Url` of any of the four schemes, and its scheme: the host
    /// and port as `url` read them (the one parser of request targets). A URL with user
    /// information is refused: credentials belong in headers.
    pub(crate) fn from_url(url: &url::Url) -> Result<(Self, TargetScheme), ProxyError> {
        let invalid =
            |what: &str| ProxyError::new(ProxyErrorKind::InvalidTarget).detail(what.to_owned());
        let Some(scheme) = TargetScheme::ALL
            .into_iter()
            .find(|s| s.as_str() == url.scheme())
        else {
            return Err(invalid("only http://, https://, ws:// and wss:// URLs"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "the URL has user information; send credentials in a header (basic_auth() for HTTP)",
            ));
        }
        let port = url.port().unwrap_or(scheme.default_port());
        // Addresses as `url` parsed them, with nothing formatted or allocated.
        let target = match url.host() {
            Some(url::Host::Domain(name)) => Self::new(name, port)?,
            Some(url::Host::Ipv4(ip)) => Self {
                host: Host::Ip(ip.into()),
                port,
            },
            Some(url::Host::Ipv6(ip)) => Self {
                host: Host::Ip(ip.into()),
                port,
            },
            None => return Err(invalid("the URL has no host")),
        };
        Ok((target, scheme))
    }

    /// The target of an HTTP request's URL (`http://` or `https://`), and whether it takes
    /// TLS.
    pub(crate) fn of_request_url(url: &url::Url) -> Result<(Self, bool), ProxyError> {
        let (target, scheme) = Self::from_url(url)?;
        if scheme.kind() != ConnectionKind::Http {
            return Err(ProxyError::new(ProxyErrorKind::InvalidTarget)
                .detail("only http:// and https:// URLs"));
        }
        Ok((target, scheme.tls()))
    }

    /// The target of a URL of `kind`'s schemes (`http://` and `https://`, or `ws://` and
    /// `wss://`), and whether it takes TLS.
    pub(crate) fn of_url(
        uri: &http::Uri,
        kind: ConnectionKind,
    ) -> Result<(Self, bool), ProxyError> {
        let Some(scheme) = TargetScheme::of(uri).filter(|s| s.kind() == kind) else {
            let only = match kind {
                ConnectionKind::Http => "only http:// and https:// URLs",
                ConnectionKind::Websocket => "only ws:// and wss:// URLs",
            };
            return Err(ProxyError::new(ProxyErrorKind::InvalidTarget).detail(only));
        };
        let target = Self::from_uri(uri, scheme.default_port())?;
        Ok((target, scheme.tls()))
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

/// Resolves with the operating system (`getaddrinfo`, on tokio's blocking threads).
///
/// At most 64 lookups are in flight in the process, those whose connection gave up on
/// them included: `getaddrinfo` cannot be stopped, so a lookup that timed out keeps its
/// thread until the system's resolver answers, and during a DNS outage many reconnecting
/// streams would otherwise fill tokio's blocking pool, which the application's own
/// blocking work shares. A lookup waits for its turn within its connection's deadline.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

/// System lookups in flight at once, in the whole process.
const MAX_LOOKUPS: usize = 64;
static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_LOOKUPS);

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolving<'a> {
        let host = host.to_owned();
        Box::pin(bounded_lookup(&LOOKUPS, move || {
            use std::net::ToSocketAddrs as _;
            (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect)
        }))
    }
}

/// Runs `lookup` on a blocking thread once `limit` gives it a permit, which it keeps until
/// it returns, even when no one waits for its answer any more.
async fn bounded_lookup(
    limit: &'static tokio::sync::Semaphore,
    lookup: impl FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
) -> io::Result<Vec<SocketAddr>> {
    let permit = limit.acquire().await.map_err(io::Error::other)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        lookup()
    })
    .await
    .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_s_scheme_gives_its_default_port_and_tls() {
        for (url, shown, tls) in [
            ("http://x.com/a", "x.com:80", false),
            ("https://x.com/a", "x.com:443", true),
            ("ws://x.com/a", "x.com:80", false),
            ("wss://x.com/a", "x.com:443", true),
            ("wss://x.com:9443/a", "x.com:9443", true),
        ] {
            let (target, scheme) = Target::from_url(&url::Url::parse(url).unwrap()).unwrap();
            assert_eq!(target.to_string(), shown, "{url}");
            assert_eq!(scheme.tls(), tls, "{url}");
            assert!(url.starts_with(scheme.as_str()), "{url}");
        }
        let ftp = url::Url::parse("ftp://x.com/").unwrap();
        assert!(Target::from_url(&ftp).is_err());
        // User information of any shape is refused: a user alone, a password alone, both.
        for url in [
            "https://user@x.com/",
            "https://:pw@x.com/",
            "https://u:pw@x.com/",
        ] {
            let e = Target::from_url(&url::Url::parse(url).unwrap()).unwrap_err();
            assert!(e.to_string().contains("user information"), "{url}: {e}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_given_up_on_keep_their_turn_until_they_return() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        static LIMIT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // Each lookup blocks until released, like getaddrinfo during a DNS outage.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let lookup = || {
            let (running, most, gate) = (running.clone(), most.clone(), gate.clone());
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = gate.lock().unwrap().recv();
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(vec![SocketAddr::from(([127, 0, 0, 1], 80))])
            }
        };
        // Two lookups take the two turns; their connections give up on them.
        for _ in 0..2 {
            let given_up =
                tokio::time::timeout(Duration::from_millis(50), bounded_lookup(&LIMIT, lookup()))
                    .await;
            assert!(given_up.is_err(), "blocked");
        }
        // A third waits for a turn: the two abandoned ones still hold theirs.
        let third = tokio::spawn(bounded_lookup(&LIMIT, lookup()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!third.is_finished(), "it waits");
        assert_eq!(running.load(Ordering::SeqCst), 2);
        // The system answers the first two; the third gets its turn and its answer.
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        let answer = tokio::time::timeout(Duration::from_secs(20), third).await;
        assert_eq!(answer.unwrap().unwrap().unwrap().len(), 1);
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "never more than the limit at once"
        );
    }

    #[test]
    fn each_scheme_has_its_kind_default_port_and_tls() {
        let of = |url: &str| {
            let uri: http::Uri = url.parse().unwrap();
            TargetScheme::of(&uri).map(|s| (s.kind(), s.default_port(), s.tls()))
        };
        let (http, ws) = (ConnectionKind::Http, ConnectionKind::Websocket);
        assert_eq!(of("http://h/"), Some((http, 80, false)));
        assert_eq!(of("https://h/"), Some((http, 443, true)));
        assert_eq!(of("ws://h/"), Some((ws, 80, false)));
        assert_eq!(of("wss://h/"), Some((ws, 443, true)));
        assert_eq!(of("ftp://h/"), None);
        assert_eq!(of("/relative"), None);
    }

    #[test]
    fn a_url_is_a_target_of_its_own_kind_only() {
        let of = |url: &str, kind| {
            Target::of_url(&url.parse().unwrap(), kind)
                .map(|(t, tls)| (t.to_string(), tls))
                .map_err(|e| e.to_string())
        };
        let (http, ws) = (ConnectionKind::Http, ConnectionKind::Websocket);
        assert_eq!(of("https://h/x", http), Ok(("h:443".to_owned(), true)));
        assert_eq!(
            of("http://h:8080/x", http),
            Ok(("h:8080".to_owned(), false))
        );
        assert_eq!(of("wss://h/x", ws), Ok(("h:443".to_owned(), true)));
        assert_eq!(of("ws://h/x", ws), Ok(("h:80".to_owned(), false)));
        assert!(
            of("wss://h/", http)
                .unwrap_err()
                .contains("only http:// and https:// URLs")
        );
        assert!(
            of("https://h/", ws)
                .unwrap_err()
                .contains("only ws:// and wss:// URLs")
        );
        assert!(
            of("https://u@h/", http)
                .unwrap_err()
                .contains("user information")
        );
    }

    #[test]
    fn default_ports_and_brackets() {
        let t = |s: &str, port| {
            Target::from_uri(&s.parse().unwrap(), port)
                .map(|t| t.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(t("ws://example.com/x", 80).unwrap(), "example.com:80");
        assert_eq!(
            t("https://Example.COM:8443/a?b", 443).unwrap(),
            "example.com:8443"
        );
        assert_eq!(t("https://[::1]/", 443).unwrap(), "[::1]:443");
        assert_eq!(t("wss://127.0.0.1:9443", 443).unwrap(), "127.0.0.1:9443");
        let v6 = Target::from_uri(&"https://[2001:db8::1]:8443".parse().unwrap(), 443).unwrap();
        assert_eq!(v6.host().bare(), "2001:db8::1");
        assert!(
            t("ws://user@a.com@b.com/", 80)
                .unwrap_err()
                .contains("user information")
        );
        assert!(
            t("https://u:p@h/", 443)
                .unwrap_err()
                .contains("user information")
        );
        assert!(t("http://h:99999/", 80).unwrap_err().contains("port"));
        assert!(t("/relative", 80).unwrap_err().contains("no host"));
    }
}
