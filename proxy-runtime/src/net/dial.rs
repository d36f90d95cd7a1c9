//! The one dialer: direct, or through a proxy (HTTP CONNECT over TCP or TLS to the proxy,
//! SOCKS4/4a/5/5h). The HTTP client and WebSockets both open their connections here.
//!
//! Owns the phases of establishing a connection, their shared deadline, and the DNS rule
//! of each scheme; the protocols themselves are in [`super::proxy`]. It must never fall
//! back to a direct connection when a proxy is configured, never resolve a target name
//! locally for `socks4a`/`socks5h`/HTTP proxies, and never put a password in a log line.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::{Phase, ProxyError, ProxyErrorKind as K, Via};
use super::proxy::{http_connect, socks};
use super::stream::{Io, ProxyStream};
use super::target::{Resolve, Target};
use crate::{Host, ProxyEndpoint, ProxyScheme};

/// Opens connections for one route: an exchange's HTTP or WebSocket traffic, direct or
/// through one proxy, within one timeout.
#[derive(Clone)]
pub struct Dialer {
    exchange: Option<String>,
    state: State,
}

/// What a dialer does with every connection.
#[derive(Clone)]
enum State {
    /// Fails it with this error (fail closed: settings that did not load, an invalid
    /// exchange id, TLS that could not be configured).
    Failing(ProxyError),
    /// Connects straight to the target.
    Direct(Link),
    /// Connects through this proxy.
    Proxied(Link, Arc<Proxy>),
}

/// What every open connection needs.
#[derive(Clone)]
struct Link {
    timeout: Duration,
    resolver: Arc<dyn Resolve>,
    tls: Arc<ClientConfig>,
}

struct Proxy {
    endpoint: ProxyEndpoint,
    /// The endpoint, redacted, as errors and logs show it.
    shown: String,
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("exchange", &self.exchange)
            .field("route", &self.route())
            .field("timeout", &self.timeout())
            .finish_non_exhaustive()
    }
}

impl Dialer {
    pub(crate) fn new(
        exchange: Option<String>,
        proxy: Option<ProxyEndpoint>,
        timeout: Duration,
        resolver: Arc<dyn Resolve>,
        tls: Arc<ClientConfig>,
    ) -> Self {
        let link = Link {
            timeout,
            resolver,
            tls,
        };
        let state = match proxy {
            None => State::Direct(link),
            Some(endpoint) => {
                let shown = endpoint.to_string();
                State::Proxied(link, Arc::new(Proxy { endpoint, shown }))
            }
        };
        Self { exchange, state }
    }

    /// A dialer whose every connection fails with `error` (fail closed).
    pub(crate) fn failing(exchange: Option<String>, error: ProxyError) -> Self {
        Self {
            exchange,
            state: State::Failing(error),
        }
    }

    /// The exchange this dialer serves.
    pub fn exchange(&self) -> Option<&str> {
        self.exchange.as_deref()
    }

    /// The proxy, redacted; `None` when connections go direct (or always fail).
    pub fn proxy(&self) -> Option<&str> {
        match &self.state {
            State::Proxied(_, proxy) => Some(&proxy.shown),
            State::Failing(_) | State::Direct(_) => None,
        }
    }

    /// The time allowed to establish one connection (zero for a failing dialer).
    pub fn timeout(&self) -> Duration {
        match &self.state {
            State::Direct(link) | State::Proxied(link, _) => link.timeout,
            State::Failing(_) => Duration::ZERO,
        }
    }

    /// The error every connection fails with, when the route is unusable: the settings
    /// could not be loaded, the exchange id is invalid, or TLS could not be configured.
    pub fn failure(&self) -> Option<&ProxyError> {
        match &self.state {
            State::Failing(error) => Some(error),
            State::Direct(_) | State::Proxied(..) => None,
        }
    }

    /// The route in words, redacted: `direct`, `via socks5h://...`, or `fails (...)`.
    pub fn route(&self) -> String {
        match &self.state {
            State::Failing(error) => format!("fails ({})", error.kind()),
            State::Direct(_) => "direct".to_owned(),
            State::Proxied(_, proxy) => format!("via {}", proxy.shown),
        }
    }

    /// Connects to `target` (with TLS to it when `tls`), within the route's timeout.
    pub async fn connect(&self, target: &Target, tls: bool) -> Result<ProxyStream, ProxyError> {
        let deadline = Instant::now() + self.timeout();
        self.connect_by(target, tls, deadline).await
    }

    /// Like [`connect`](Self::connect), with a deadline shared with a later phase (the
    /// WebSocket upgrade). Every error leaves here naming the exchange, proxy and target.
    pub(crate) async fn connect_by(
        &self,
        target: &Target,
        tls: bool,
        deadline: Instant,
    ) -> Result<ProxyStream, ProxyError> {
        let shown_target = target.to_string();
        let result = match &self.state {
            State::Failing(error) => Err(error.clone()),
            State::Direct(link) => direct(link, target, tls, deadline).await,
            State::Proxied(link, proxy) => proxied(link, proxy, target, tls, deadline).await,
        };
        match result {
            Ok(io) => {
                let description = match self.proxy() {
                    Some(p) => format!("via {p} to {shown_target}"),
                    None => format!("direct to {shown_target}"),
                };
                tracing::debug!(exchange = ?self.exchange, route = %description, "connected");
                Ok(ProxyStream::new(io, description))
            }
            Err(e) => {
                let e = self.attach(e, Some(&shown_target));
                tracing::debug!(error = %e, "connection failed");
                Err(e)
            }
        }
    }

    /// `error` naming this route (exchange and redacted proxy) and `target`: the one way
    /// context is attached, once per connection and once per request or stream.
    pub(crate) fn attach(&self, error: ProxyError, target: Option<&str>) -> ProxyError {
        let via = match &self.state {
            State::Failing(_) => Via::Unknown,
            State::Direct(_) => Via::Direct,
            State::Proxied(_, proxy) => Via::Proxy(proxy.shown.clone()),
        };
        error.at(self.exchange(), via, target)
    }
}

async fn direct(
    link: &Link,
    target: &Target,
    tls: bool,
    deadline: Instant,
) -> Result<Box<dyn Io>, ProxyError> {
    let addrs = resolve(link, target.host(), target.port(), deadline)
        .await
        .map_err(Resolution::of_target)?;
    let tcp = connect_any(&addrs, deadline)
        .await
        .map_err(|e| connect_failure(K::TargetUnreachable(None), e))?;
    with_target_tls(link, Box::new(tcp), target, tls, deadline).await
}

async fn proxied(
    link: &Link,
    proxy: &Proxy,
    target: &Target,
    tls: bool,
    deadline: Instant,
) -> Result<Box<dyn Io>, ProxyError> {
    let endpoint = &proxy.endpoint;
    let scheme = endpoint.scheme();
    // The DNS rule: the target's name is looked up here only for socks4:// and socks5://,
    // and before the proxy sees anything (a failure is the target's, not the proxy's).
    // Every other scheme hands the name to the proxy.
    let socks_address = match scheme {
        ProxyScheme::Http | ProxyScheme::Https => None,
        _ => {
            let resolved = if scheme.resolves_locally() {
                let addrs = resolve(link, target.host(), target.port(), deadline)
                    .await
                    .map_err(Resolution::of_target)?;
                Some(addrs)
            } else {
                None
            };
            // What the protocol cannot carry is refused before any connection is opened.
            Some(socks::address(endpoint, target, resolved.as_deref())?)
        }
    };
    let addrs = resolve(link, endpoint.host(), endpoint.port(), deadline)
        .await
        .map_err(Resolution::of_proxy)?;
    let tcp = connect_any(&addrs, deadline)
        .await
        .map_err(|e| connect_failure(K::ProxyUnreachable, e))?;
    let io: Box<dyn Io> = if scheme == ProxyScheme::Https {
        let name = server_name(&endpoint.host().bare())?;
        Box::new(
            within(
                deadline,
                Phase::ProxyTls,
                tls_handshake(&link.tls, name, tcp),
            )
            .await??,
        )
    } else {
        Box::new(tcp)
    };
    let tunnel = within(deadline, Phase::ProxyHandshake, async {
        match &socks_address {
            Some(address) => socks::handshake(io, endpoint, address).await,
            None => http_connect::handshake(io, endpoint, target).await,
        }
    })
    .await??;
    with_target_tls(link, tunnel, target, tls, deadline).await
}

async fn with_target_tls(
    link: &Link,
    io: Box<dyn Io>,
    target: &Target,
    tls: bool,
    deadline: Instant,
) -> Result<Box<dyn Io>, ProxyError> {
    if !tls {
        return Ok(io);
    }
    let name = server_name(&target.host().bare())?;
    let tls = within(deadline, Phase::Tls, tls_handshake(&link.tls, name, io)).await??;
    Ok(Box::new(tls))
}

/// Why a host has no addresses to connect to.
enum Resolution {
    /// The resolver failed.
    Failed(std::io::Error),
    /// The resolver answered with no address.
    Empty,
    /// The deadline passed.
    Timeout,
}

impl Resolution {
    /// A failure to resolve the target: the target's problem, never the proxy's.
    fn of_target(self) -> ProxyError {
        match self {
            Resolution::Failed(e) => ProxyError::new(K::TargetResolution).source(e),
            Resolution::Empty => ProxyError::new(K::TargetResolution).detail("no addresses"),
            Resolution::Timeout => ProxyError::new(K::Timeout(Phase::Resolve)),
        }
    }

    /// A failure to resolve the proxy's host: the proxy is unreachable.
    fn of_proxy(self) -> ProxyError {
        match self {
            Resolution::Failed(e) => ProxyError::new(K::ProxyUnreachable)
                .detail("cannot resolve the proxy's host name")
                .source(e),
            Resolution::Empty => ProxyError::new(K::ProxyUnreachable)
                .detail("the proxy's host name has no addresses"),
            Resolution::Timeout => ProxyError::new(K::Timeout(Phase::Resolve)),
        }
    }
}

/// The addresses of `host` at `port`: an address as given, a name through the resolver.
async fn resolve(
    link: &Link,
    host: &Host,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Resolution> {
    let name = match host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Domain(name) => name,
    };
    let addrs = tokio::time::timeout_at(deadline, link.resolver.resolve(name, port))
        .await
        .map_err(|_| Resolution::Timeout)?
        .map_err(Resolution::Failed)?;
    if addrs.is_empty() {
        return Err(Resolution::Empty);
    }
    Ok(addrs)
}

/// Runs one phase against the shared deadline.
async fn within<T>(
    deadline: Instant,
    phase: Phase,
    fut: impl Future<Output = T>,
) -> Result<T, ProxyError> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| ProxyError::new(K::Timeout(phase)))
}

/// Connects to the first address that accepts, in order. The error is that of the last
/// attempt, or a timeout naming the connect phase.
async fn connect_any(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(ConnectError::Timeout),
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    Err(ConnectError::Io(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to")
    })))
}

enum ConnectError {
    Io(std::io::Error),
    Timeout,
}

/// A failed connect as an error of `kind`, or as a timeout of the connect phase.
fn connect_failure(kind: K, e: ConnectError) -> ProxyError {
    match e {
        ConnectError::Timeout => ProxyError::new(K::Timeout(Phase::Connect)),
        ConnectError::Io(io) => ProxyError::new(kind).source(io),
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, ProxyError> {
    ServerName::try_from(host.to_owned()).map_err(|e| {
        ProxyError::new(K::InvalidTarget)
            .detail("not a valid TLS server name")
            .source(e)
    })
}

async fn tls_handshake<S: Io + 'static>(
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    io: S,
) -> Result<tokio_rustls::client::TlsStream<S>, ProxyError> {
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, io)
        .await
        .map_err(|e| ProxyError::new(K::Tls).source(e))
}
