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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::{Phase, ProxyError, ProxyErrorKind as K, Via};
use super::pool::{self, MemberTag, Pool, Way};
use super::proxy::{http_connect, socks};
use super::stream::{AckNow, Io, ProxyStream};
use super::target::{Resolve, Target};
use super::tls::RouteTls;
use crate::{ConnectionKind, Host, ProxyConfig, ProxyEndpoint, ProxyScheme, TimeoutSeconds};

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
    /// Connects through a member of this route: one proxy, or a pool.
    Proxied(Link, Arc<Pool>, Arc<str>),
}

/// What every open connection needs.
#[derive(Clone)]
struct Link {
    timeout: Duration,
    resolver: Arc<dyn Resolve>,
    tls: RouteTls,
}

/// Which protocols TLS to the target offers (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `http/1.1`: WebSockets and raw streams.
    Http1,
    /// What the HTTP client speaks: `h2` and `http/1.1`, unless HTTP/2 is switched off.
    Http,
}

/// The phases a connection went through, each with the instant it began: for deadlines
/// that span more than the dial (a request's), and for `proxy-check --probe`'s timings.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    marks: Mutex<Vec<(Phase, Instant)>>,
}

impl Trace {
    pub(crate) fn enter(&self, phase: Phase) {
        self.lock().push((phase, Instant::now()));
    }

    /// The phase entered last.
    pub(crate) fn current(&self) -> Option<Phase> {
        self.lock().last().map(|(phase, _)| *phase)
    }

    /// Every phase entered, in order, with when it began.
    pub(crate) fn marks(&self) -> Vec<(Phase, Instant)> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Phase, Instant)>> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The deadline of one connection, where its phases are traced, and the pool member
/// whose timings they are.
#[derive(Clone, Copy)]
struct Steps<'a> {
    deadline: Instant,
    trace: Option<&'a Trace>,
    member: Option<(&'a Pool, usize)>,
}

impl Steps<'_> {
    /// Runs one phase against the shared deadline.
    async fn phase<T>(&self, phase: Phase, fut: impl Future<Output = T>) -> Result<T, ProxyError> {
        if let Some(trace) = self.trace {
            trace.enter(phase);
        }
        let started = Instant::now();
        let result = tokio::time::timeout_at(self.deadline, fut)
            .await
            .map_err(|_| ProxyError::new(K::Timeout(phase)));
        if let Some((pool, i)) = self.member {
            pool.record_phase(i, phase, started.elapsed());
        }
        result
    }
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
    /// A dialer for `route` (`None`, or `direct://` alone: direct) of `exchange`'s
    /// traffic of `kind`.
    pub(crate) fn new(
        exchange: Option<String>,
        kind: ConnectionKind,
        route: Option<&ProxyConfig>,
        resolver: Arc<dyn Resolve>,
        tls: RouteTls,
    ) -> Self {
        let timeout = route.map_or(TimeoutSeconds::DEFAULT, ProxyConfig::timeout);
        let link = Link {
            timeout: timeout.as_duration(),
            resolver,
            tls,
        };
        let state = match route.filter(|r| !r.is_direct()) {
            None => State::Direct(link),
            Some(route) => {
                let members = route
                    .members()
                    .iter()
                    .map(|url| match url.endpoint() {
                        None => Way::Direct,
                        Some(endpoint) => Way::Proxy(endpoint.clone()),
                    })
                    .collect();
                let label = exchange.as_deref().unwrap_or(crate::check::DEFAULT_KEY);
                let pool = Pool::new(members, route.strategy(), label, kind.as_str());
                let shown: Arc<str> = if route.is_pool() {
                    let members: Vec<&str> =
                        pool.members().iter().map(|m| m.shown.as_str()).collect();
                    format!("[{}] ({})", members.join(", "), route.strategy()).into()
                } else {
                    pool.members()[0].shown.as_str().into()
                };
                State::Proxied(link, Arc::new(pool), shown)
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

    /// The proxy, redacted (a pool: its members and strategy, like
    /// `[socks5h://a:1080, socks5h://b:1080] (failover)`); `None` when connections go
    /// direct (or always fail).
    pub fn proxy(&self) -> Option<&str> {
        match &self.state {
            State::Proxied(_, _, shown) => Some(shown),
            State::Failing(_) | State::Direct(_) => None,
        }
    }

    /// Whether the route is a pool of more than one member (whose connections a cooling
    /// member retires, so that traffic moves to the others).
    pub(crate) fn is_pool(&self) -> bool {
        matches!(&self.state, State::Proxied(_, pool, _) if !pool.is_single())
    }

    /// A dialer for each member of a pool alone (for `proxy-check --probe`, which tries
    /// every member): this dialer itself when the route is not a pool.
    pub(crate) fn members_alone(&self, kind: ConnectionKind) -> Vec<Dialer> {
        let State::Proxied(link, pool, _) = &self.state else {
            return vec![self.clone()];
        };
        if pool.is_single() {
            return vec![self.clone()];
        }
        pool.members()
            .iter()
            .map(|member| {
                let url = match &member.way {
                    Way::Direct => crate::ProxyUrl::Direct,
                    Way::Proxy(endpoint) => crate::ProxyUrl::Proxy(endpoint.clone()),
                };
                let timeout = TimeoutSeconds::new(link.timeout.as_secs()).unwrap_or_default();
                let config = ProxyConfig::new(url).with_timeout(timeout);
                Dialer::new(
                    self.exchange.clone(),
                    kind,
                    Some(&config),
                    link.resolver.clone(),
                    link.tls.clone(),
                )
            })
            .collect()
    }

    /// The time allowed to establish one connection (zero for a failing dialer).
    pub fn timeout(&self) -> Duration {
        match &self.state {
            State::Direct(link) | State::Proxied(link, ..) => link.timeout,
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
            State::Proxied(_, _, shown) => format!("via {shown}"),
        }
    }

    /// Connects to `target` (with TLS to it when `tls`, offering ALPN `http/1.1`), within
    /// the route's timeout.
    pub async fn connect(&self, target: &Target, tls: bool) -> Result<ProxyStream, ProxyError> {
        let deadline = Instant::now() + self.timeout();
        let alpn = tls.then_some(Alpn::Http1);
        self.connect_by(target, alpn, deadline, None).await
    }

    /// Like [`connect`](Self::connect), with TLS to the target when `tls` is given, a
    /// deadline that may be shared with a later phase (the WebSocket upgrade), and a trace
    /// of the phases. Every error leaves here naming the exchange, proxy and target.
    pub(crate) async fn connect_by(
        &self,
        target: &Target,
        tls: Option<Alpn>,
        deadline: Instant,
        trace: Option<&Trace>,
    ) -> Result<ProxyStream, ProxyError> {
        let shown_target = target.to_string();
        let result = match &self.state {
            State::Failing(error) => Err(error.clone()),
            State::Direct(link) => {
                let steps = Steps {
                    deadline,
                    trace,
                    member: None,
                };
                direct(link, target, tls, steps)
                    .await
                    .map(|(io, h2)| (io, h2, "direct".to_owned(), None))
            }
            State::Proxied(link, pool, _) => {
                self.through_pool(link, pool, target, tls, deadline, trace)
                    .await
            }
        };
        match result {
            Ok((io, h2, member, tag)) => {
                let description = match member.as_str() {
                    "direct" => format!("direct to {shown_target}"),
                    proxy => format!("via {proxy} to {shown_target}"),
                };
                tracing::debug!(exchange = ?self.exchange, route = %description, h2, "connected");
                Ok(ProxyStream::new(io, description, h2).with_member(tag))
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
            State::Proxied(_, _, shown) => Via::Proxy(shown.to_string()),
        };
        error.at(self.exchange(), via, target)
    }

    /// A connection through the best member of `pool` that works: members are tried in
    /// the pool's order of preference, each within its share of the deadline, until one
    /// connects. Nothing of a request has been sent, so moving on is safe. A failure that
    /// is not the member's (the target's name, TLS to the target) ends the attempt.
    async fn through_pool(
        &self,
        link: &Link,
        pool: &Arc<Pool>,
        target: &Target,
        tls: Option<Alpn>,
        deadline: Instant,
        trace: Option<&Trace>,
    ) -> Result<(Box<dyn Io>, bool, String, Option<(MemberTag, Arc<()>)>), ProxyError> {
        let candidates = pool.candidates();
        let mut failures = Vec::new();
        for (n, &i) in candidates.iter().enumerate() {
            let member = &pool.members()[i];
            let steps = Steps {
                deadline: pool::member_deadline(deadline, candidates.len() - n),
                trace,
                member: Some((pool, i)),
            };
            let result = match &member.way {
                Way::Direct => direct(link, target, tls, steps).await,
                Way::Proxy(endpoint) => proxied(link, endpoint, target, tls, steps).await,
            };
            match result {
                Ok((io, h2)) => {
                    pool.succeeded(i);
                    return Ok((io, h2, member.shown.clone(), Some(pool::tag(pool, i))));
                }
                Err(e) if pool::is_member_failure(&e) => {
                    pool.failed(i, &e);
                    let via = match member.way {
                        Way::Direct => Via::Direct,
                        Way::Proxy(_) => Via::Proxy(member.shown.clone()),
                    };
                    failures.push(e.at(self.exchange(), via, Some(&target.to_string())));
                }
                Err(e) => return Err(e),
            }
        }
        match failures.len() {
            1 if pool.is_single() => Err(failures.remove(0)),
            _ => Err(ProxyError::new(K::AllMembersFailed).members(failures)),
        }
    }
}

/// An established connection, and whether TLS to the target negotiated HTTP/2.
type Established = (Box<dyn Io>, bool);

async fn direct(
    link: &Link,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
) -> Result<Established, ProxyError> {
    let addrs = resolve(link, target.host(), target.port(), steps)
        .await
        .map_err(Resolution::of_target)?;
    let tcp = connect_any(&addrs, steps)
        .await
        .map_err(|e| connect_failure(K::TargetUnreachable(None), e))?;
    with_target_tls(link, Box::new(tcp), target, tls, steps).await
}

async fn proxied(
    link: &Link,
    endpoint: &ProxyEndpoint,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
) -> Result<Established, ProxyError> {
    let scheme = endpoint.scheme();
    // The DNS rule: the target's name is looked up here only for socks4:// and socks5://,
    // and before the proxy sees anything (a failure is the target's, not the proxy's).
    // Every other scheme hands the name to the proxy.
    let socks_address = match scheme {
        ProxyScheme::Http | ProxyScheme::Https => None,
        _ => {
            let resolved = if scheme.resolves_locally() {
                let addrs = resolve(link, target.host(), target.port(), steps)
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
    let addrs = resolve(link, endpoint.host(), endpoint.port(), steps)
        .await
        .map_err(Resolution::of_proxy)?;
    let tcp = connect_any(&addrs, steps)
        .await
        .map_err(|e| connect_failure(K::ProxyUnreachable, e))?;
    // Proxies that keep Nagle on wait for our acknowledgements: see `AckNow`.
    let tcp = AckNow::new(tcp);
    let io: Box<dyn Io> = if scheme == ProxyScheme::Https {
        let name = server_name(&endpoint.host().bare())?;
        let tls = tls_handshake(&link.tls.proxy, name, tcp);
        Box::new(steps.phase(Phase::ProxyTls, tls).await??)
    } else {
        Box::new(tcp)
    };
    let tunnel = steps
        .phase(Phase::ProxyHandshake, async {
            match &socks_address {
                Some(address) => socks::handshake(io, endpoint, address).await,
                None => http_connect::handshake(io, endpoint, target).await,
            }
        })
        .await??;
    with_target_tls(link, tunnel, target, tls, steps).await
}

async fn with_target_tls(
    link: &Link,
    io: Box<dyn Io>,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
) -> Result<Established, ProxyError> {
    let Some(alpn) = tls else {
        return Ok((io, false));
    };
    let config = match alpn {
        Alpn::Http => &link.tls.http,
        Alpn::Http1 => &link.tls.http1,
    };
    let name = server_name(&target.host().bare())?;
    let tls = steps
        .phase(Phase::Tls, tls_handshake(config, name, io))
        .await??;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok((Box::new(tls), h2))
}

/// Why a host has no addresses to connect to.
enum Resolution {
    /// The resolver failed.
    Failed(std::io::Error),
    /// The resolver answered with no address.
    Empty,
    /// The deadline passed.
    Timeout(ProxyError),
}

impl Resolution {
    /// A failure to resolve the target: the target's problem, never the proxy's.
    fn of_target(self) -> ProxyError {
        match self {
            Resolution::Failed(e) => ProxyError::new(K::TargetResolution).source(e),
            Resolution::Empty => ProxyError::new(K::TargetResolution).detail("no addresses"),
            Resolution::Timeout(e) => e,
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
            Resolution::Timeout(e) => e,
        }
    }
}

/// The addresses of `host` at `port`: an address as given, a name through the resolver.
async fn resolve(
    link: &Link,
    host: &Host,
    port: u16,
    steps: Steps<'_>,
) -> Result<Vec<SocketAddr>, Resolution> {
    let name = match host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Domain(name) => name,
    };
    let addrs = steps
        .phase(Phase::Resolve, link.resolver.resolve(name, port))
        .await
        .map_err(Resolution::Timeout)?
        .map_err(Resolution::Failed)?;
    if addrs.is_empty() {
        return Err(Resolution::Empty);
    }
    Ok(addrs)
}

/// The wait before the next address is tried while an attempt is still running (RFC 8305's
/// recommended "Connection Attempt Delay").
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to one of `addrs` by Happy Eyeballs (RFC 8305): the addresses, their families
/// interleaved, are tried in order, a new attempt starting when the last one failed or
/// [`ATTEMPT_DELAY`] after it started, the earlier ones still running. The first to
/// connect wins and the others are dropped (their sockets closed). An address that never
/// answers (a dropped SYN) so costs 250 ms, not the deadline. The whole race runs under
/// the connect phase of the shared deadline; the error is that of the last attempt to
/// fail, or a timeout naming the connect phase.
async fn connect_any(addrs: &[SocketAddr], steps: Steps<'_>) -> Result<TcpStream, ConnectError> {
    let attempts = race(interleaved(addrs));
    match steps.phase(Phase::Connect, attempts).await {
        Err(_) => Err(ConnectError::Timeout),
        Ok(Err(e)) => Err(ConnectError::Io(e)),
        Ok(Ok(tcp)) => Ok(tcp),
    }
}

/// `addrs` with their families alternating, the first address's family first, each
/// family's order kept (the resolver's order is the system's preference, RFC 6724).
fn interleaved(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .iter()
        .copied()
        .partition(|a| a.is_ipv6() == first.is_ipv6());
    same.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !same.is_empty() || !other.is_empty() {
        out.extend(same.pop());
        out.extend(other.pop());
    }
    out
}

/// The race of [`connect_any`], without its deadline.
async fn race(addrs: Vec<SocketAddr>) -> std::io::Result<TcpStream> {
    use futures_util::stream::{FuturesUnordered, StreamExt};

    let mut queue = addrs.into_iter();
    let mut running = FuturesUnordered::new();
    let mut last = None;
    // Each turn starts the next address: the first at once, then each when an attempt
    // failed or when the stagger since the last start ran out, whichever came first.
    loop {
        match queue.next() {
            Some(addr) => running.push(TcpStream::connect(addr)),
            None if running.is_empty() => {
                return Err(last.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to")
                }));
            }
            None => {}
        }
        let stagger = tokio::time::sleep(ATTEMPT_DELAY);
        let more = !queue.as_slice().is_empty();
        tokio::select! {
            Some(result) = running.next() => match result {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            },
            () = stagger, if more => {}
        }
    }
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::interleaved;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn families_alternate_from_the_first_address_in_each_familys_order() {
        let given = addrs(&["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"]);
        let want = addrs(&["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"]);
        assert_eq!(interleaved(&given), want);
        let given = addrs(&["10.0.0.1:1", "[::1]:1", "10.0.0.2:1", "10.0.0.3:1"]);
        let want = addrs(&["10.0.0.1:1", "[::1]:1", "10.0.0.2:1", "10.0.0.3:1"]);
        assert_eq!(interleaved(&given), want);
        let one_family = addrs(&["10.0.0.2:1", "10.0.0.1:1"]);
        assert_eq!(interleaved(&one_family), one_family);
        assert!(interleaved(&[]).is_empty());
    }
}
