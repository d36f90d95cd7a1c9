//! The one dialer: direct, HTTP CONNECT (over TCP or TLS to the proxy), SOCKS4/4a/5/5h.
//! The HTTP client and WebSockets both open their connections here.
//!
//! Owns the phases of establishing a connection and their deadline, the DNS rule of each
//! scheme, and the translation of every failure into a [`ProxyError`]. It must never fall
//! back to a direct connection when a proxy is configured, never resolve a target name
//! locally for `socks4a`/`socks5h`/HTTP proxies, and never put a password in a log line.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::BytesMut;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_socks::TargetAddr;
use tokio_socks::tcp::{Socks4Stream, Socks5Stream};

use super::error::{Phase, ProxyError, ProxyErrorKind as K, Refusal};
use super::stream::{Io, Prefixed, ProxyStream};
use super::target::{Resolve, Target, TargetHost};
use crate::{ProxyEndpoint, ProxyHost, ProxyScheme};

/// Longest CONNECT reply head accepted.
const MAX_REPLY_HEAD: usize = 16 * 1024;
/// Most headers accepted in a CONNECT reply.
const MAX_REPLY_HEADERS: usize = 64;
/// Longest host name SOCKS can carry (its length is one byte).
const MAX_SOCKS_NAME: usize = 255;
/// tokio-socks builds its requests in a 513-byte buffer.
const SOCKS4_BUFFER: usize = 513;

/// Opens connections for one route: an exchange's HTTP or WebSocket traffic, direct or
/// through one proxy, within one timeout.
#[derive(Clone)]
pub struct Dialer {
    exchange: Option<String>,
    proxy: Option<ProxyEndpoint>,
    proxy_shown: Option<String>,
    timeout: Duration,
    resolver: Arc<dyn Resolve>,
    tls: Option<Arc<ClientConfig>>,
    failure: Option<ProxyError>,
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("exchange", &self.exchange)
            .field("proxy", &self.proxy_shown)
            .field("timeout", &self.timeout)
            .field("failure", &self.failure)
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
        let proxy_shown = proxy.as_ref().map(ToString::to_string);
        Self {
            exchange,
            proxy,
            proxy_shown,
            timeout,
            resolver,
            tls: Some(tls),
            failure: None,
        }
    }

    /// A dialer whose every connection fails with `error` (fail closed).
    pub(crate) fn failing(exchange: Option<String>, error: ProxyError) -> Self {
        Self {
            exchange,
            proxy: None,
            proxy_shown: None,
            timeout: Duration::ZERO,
            resolver: Arc::new(super::target::SystemResolver),
            tls: None,
            failure: Some(error),
        }
    }

    /// The exchange this dialer serves.
    pub fn exchange(&self) -> Option<&str> {
        self.exchange.as_deref()
    }

    /// The proxy, redacted; `None` when connections go direct.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy_shown.as_deref()
    }

    /// The time allowed to establish one connection.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether every connection fails (the settings could not be loaded, or the exchange id
    /// is invalid).
    pub fn is_failing(&self) -> bool {
        self.failure.is_some()
    }

    /// Connects to `target` (with TLS to it when `tls`), within the route's timeout.
    pub async fn connect(&self, target: &Target, tls: bool) -> Result<ProxyStream, ProxyError> {
        let deadline = Instant::now() + self.timeout;
        self.connect_by(target, tls, deadline).await
    }

    /// Like [`connect`](Self::connect), with a deadline shared with a later phase (the
    /// WebSocket upgrade).
    pub(crate) async fn connect_by(
        &self,
        target: &Target,
        tls: bool,
        deadline: Instant,
    ) -> Result<ProxyStream, ProxyError> {
        let shown_target = target.to_string();
        let result = match (&self.failure, &self.tls) {
            (Some(error), _) => Err(error.clone()),
            (None, Some(config)) => self.establish(config, target, tls, deadline).await,
            (None, None) => Err(ProxyError::new(K::Tls).detail("TLS is not configured")),
        };
        match result {
            Ok(io) => {
                let description = match &self.proxy_shown {
                    Some(p) => format!("via {p} to {shown_target}"),
                    None => format!("direct to {shown_target}"),
                };
                tracing::debug!(exchange = ?self.exchange, route = %description, "connected");
                Ok(ProxyStream::new(io, description))
            }
            Err(e) => {
                let e = e.context(
                    self.exchange.as_deref(),
                    self.proxy_shown.as_deref(),
                    Some(&shown_target),
                );
                tracing::debug!(error = %e, "connection failed");
                Err(e)
            }
        }
    }

    async fn establish(
        &self,
        config: &Arc<ClientConfig>,
        target: &Target,
        tls: bool,
        deadline: Instant,
    ) -> Result<Box<dyn Io>, ProxyError> {
        let io: Box<dyn Io> = match &self.proxy {
            None => {
                let addrs = self.resolve_target(target, deadline).await?;
                let tcp = connect_any(&addrs, deadline)
                    .await
                    .map_err(|e| connect_failure(K::TargetUnreachable(None), e))?;
                Box::new(tcp)
            }
            Some(proxy) => {
                // Local DNS only for socks4:// and socks5://, and before the proxy sees
                // anything: a failure here is the target's, not the proxy's.
                let resolved = if proxy.scheme().resolves_locally() {
                    Some(self.resolve_target(target, deadline).await?)
                } else {
                    None
                };
                // What the proxy protocol cannot carry is refused before any connection.
                check_carriable(proxy, target, resolved.as_deref())?;
                let tcp = self.connect_proxy(proxy, deadline).await?;
                let io: Box<dyn Io> = if proxy.scheme() == ProxyScheme::Https {
                    let name = server_name(&proxy.host().to_bare_string())?;
                    let tls = within(deadline, Phase::ProxyTls, tls_handshake(config, name, tcp))
                        .await??;
                    Box::new(tls)
                } else {
                    Box::new(tcp)
                };
                within(
                    deadline,
                    Phase::ProxyHandshake,
                    handshake(io, proxy, target, resolved.as_deref()),
                )
                .await??
            }
        };
        if !tls {
            return Ok(io);
        }
        let name = server_name(&target.host_str())?;
        let tls = within(deadline, Phase::Tls, tls_handshake(config, name, io)).await??;
        Ok(Box::new(tls))
    }

    async fn resolve_target(
        &self,
        target: &Target,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, ProxyError> {
        match target.host() {
            TargetHost::Ip(ip) => Ok(vec![SocketAddr::new(*ip, target.port())]),
            TargetHost::Domain(name) => {
                let addrs = within(
                    deadline,
                    Phase::Resolve,
                    self.resolver.resolve(name, target.port()),
                )
                .await?
                .map_err(|e| ProxyError::new(K::TargetResolution).source(e))?;
                if addrs.is_empty() {
                    return Err(ProxyError::new(K::TargetResolution).detail("no addresses"));
                }
                Ok(addrs)
            }
        }
    }

    async fn connect_proxy(
        &self,
        proxy: &ProxyEndpoint,
        deadline: Instant,
    ) -> Result<TcpStream, ProxyError> {
        let addrs = match proxy.host() {
            ProxyHost::Ipv4(a) => vec![SocketAddr::new(IpAddr::V4(*a), proxy.port())],
            ProxyHost::Ipv6(a) => vec![SocketAddr::new(IpAddr::V6(*a), proxy.port())],
            ProxyHost::Domain(name) => {
                let addrs = within(
                    deadline,
                    Phase::Resolve,
                    self.resolver.resolve(name, proxy.port()),
                )
                .await?
                .map_err(|e| {
                    ProxyError::new(K::ProxyUnreachable)
                        .detail("cannot resolve the proxy's host name")
                        .source(e)
                })?;
                if addrs.is_empty() {
                    return Err(ProxyError::new(K::ProxyUnreachable)
                        .detail("the proxy's host name has no addresses"));
                }
                addrs
            }
        };
        connect_any(&addrs, deadline)
            .await
            .map_err(|e| connect_failure(K::ProxyUnreachable, e))
    }
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

#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("timed out")]
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

/// Refuses targets the proxy's protocol cannot carry: names over 255 bytes for SOCKS,
/// IPv6 for SOCKS4, and SOCKS4 requests too long for tokio-socks' buffer.
fn check_carriable(
    proxy: &ProxyEndpoint,
    target: &Target,
    resolved: Option<&[SocketAddr]>,
) -> Result<(), ProxyError> {
    let socks4 = matches!(proxy.scheme(), ProxyScheme::Socks4 | ProxyScheme::Socks4a);
    let socks = socks4 || matches!(proxy.scheme(), ProxyScheme::Socks5 | ProxyScheme::Socks5h);
    let name_len = match (resolved, target.host()) {
        (None, TargetHost::Domain(name)) => name.len(),
        _ => 0,
    };
    if socks && name_len > MAX_SOCKS_NAME {
        return Err(too_long_name());
    }
    if socks4 {
        let v6 = match resolved {
            Some(addrs) => !addrs.iter().any(SocketAddr::is_ipv4),
            None => matches!(target.host(), TargetHost::Ip(IpAddr::V6(_))),
        };
        if v6 {
            return Err(
                ProxyError::new(K::InvalidTarget).detail("SOCKS4 carries only IPv4 addresses")
            );
        }
        let user_id = proxy.username().map_or(0, str::len);
        if 10 + user_id + name_len > SOCKS4_BUFFER {
            return Err(ProxyError::new(K::InvalidTarget)
                .detail("the SOCKS4 user id and host name are too long together"));
        }
    }
    Ok(())
}

/// The proxy's handshake, by scheme. `resolved` holds the target's addresses for the
/// local-DNS schemes.
async fn handshake(
    io: Box<dyn Io>,
    proxy: &ProxyEndpoint,
    target: &Target,
    resolved: Option<&[SocketAddr]>,
) -> Result<Box<dyn Io>, ProxyError> {
    match proxy.scheme() {
        ProxyScheme::Http | ProxyScheme::Https => {
            Ok(Box::new(http_connect(io, proxy, target).await?))
        }
        ProxyScheme::Socks5 | ProxyScheme::Socks5h => socks5(io, proxy, target, resolved).await,
        ProxyScheme::Socks4 | ProxyScheme::Socks4a => socks4(io, proxy, target, resolved).await,
    }
}

/// HTTP CONNECT. Credentials, if any, go in `Proxy-Authorization`; nothing of the
/// exchange's own requests is ever sent to the proxy.
async fn http_connect(
    mut io: Box<dyn Io>,
    proxy: &ProxyEndpoint,
    target: &Target,
) -> Result<Prefixed<Box<dyn Io>>, ProxyError> {
    let authority = target.to_string();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    let sent_credentials = proxy.username().is_some();
    if let Some(user) = proxy.username() {
        let password = proxy.password().map(|p| p.expose()).unwrap_or_default();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let written = async {
        io.write_all(request.as_bytes()).await?;
        io.flush().await
    }
    .await;
    drop(request);
    written.map_err(|e| {
        ProxyError::new(K::Protocol)
            .detail("the proxy closed the connection before the CONNECT request was sent")
            .source(e)
    })?;

    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let n = io.read_buf(&mut buf).await.map_err(|e| {
            ProxyError::new(K::Protocol)
                .detail("reading the CONNECT reply failed")
                .source(e)
        })?;
        if n == 0 {
            return Err(ProxyError::new(K::Protocol)
                .detail("the proxy closed the connection before the end of its CONNECT reply"));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_REPLY_HEADERS];
        let mut reply = httparse::Response::new(&mut headers);
        match reply.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = reply.code.unwrap_or_default();
                let reason = short_reason(reply.reason.unwrap_or_default());
                let rest = buf.split_off(head_len).freeze();
                return match status {
                    200..=299 => Ok(Prefixed::new(rest, io)),
                    407 | 401 if sent_credentials => Err(ProxyError::new(K::AuthFailed)
                        .detail(format!("CONNECT answered {status} {reason}"))),
                    407 | 401 => Err(ProxyError::new(K::AuthRequired)
                        .detail(format!("CONNECT answered {status} {reason}"))),
                    status => Err(ProxyError::new(K::Refused(Refusal::Http {
                        status,
                        reason,
                    }))),
                };
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_REPLY_HEAD => {
                return Err(ProxyError::new(K::Protocol)
                    .detail("the CONNECT reply head is longer than 16 KiB"));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ProxyError::new(K::Protocol).detail(format!(
                    "the CONNECT reply has more than {MAX_REPLY_HEADERS} headers"
                )));
            }
            Err(e) => {
                return Err(
                    ProxyError::new(K::Protocol).detail(format!("malformed CONNECT reply ({e})"))
                );
            }
        }
    }
}

/// The start of a reason phrase, printable ASCII only.
fn short_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn too_long_name() -> ProxyError {
    ProxyError::new(K::InvalidTarget).detail(format!(
        "SOCKS carries host names of at most {MAX_SOCKS_NAME} bytes"
    ))
}

async fn socks5(
    io: Box<dyn Io>,
    proxy: &ProxyEndpoint,
    target: &Target,
    resolved: Option<&[SocketAddr]>,
) -> Result<Box<dyn Io>, ProxyError> {
    let addr: TargetAddr<'_> = match (resolved, target.host()) {
        (Some(addrs), _) => TargetAddr::Ip(addrs[0]),
        (None, TargetHost::Ip(ip)) => TargetAddr::Ip(SocketAddr::new(*ip, target.port())),
        (None, TargetHost::Domain(name)) => {
            if name.len() > MAX_SOCKS_NAME {
                return Err(too_long_name());
            }
            TargetAddr::Domain(name.as_str().into(), target.port())
        }
    };
    let with_credentials = proxy.username().is_some();
    let result = match proxy.username() {
        Some(user) => {
            let password = proxy.password().map(|p| p.expose()).unwrap_or_default();
            Socks5Stream::connect_with_password_and_socket(io, addr, user, password).await
        }
        None => Socks5Stream::connect_with_socket(io, addr).await,
    };
    result
        .map(|s| Box::new(s.into_inner()) as Box<dyn Io>)
        .map_err(|e| socks_error(e, with_credentials, false))
}

async fn socks4(
    io: Box<dyn Io>,
    proxy: &ProxyEndpoint,
    target: &Target,
    resolved: Option<&[SocketAddr]>,
) -> Result<Box<dyn Io>, ProxyError> {
    let ipv6 = || ProxyError::new(K::InvalidTarget).detail("SOCKS4 carries only IPv4 addresses");
    let addr: TargetAddr<'_> = match (resolved, target.host()) {
        (Some(addrs), _) => {
            let v4 = addrs.iter().find(|a| a.is_ipv4()).ok_or_else(ipv6)?;
            TargetAddr::Ip(*v4)
        }
        (None, TargetHost::Ip(IpAddr::V4(ip))) => {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V4(*ip), target.port()))
        }
        (None, TargetHost::Ip(IpAddr::V6(_))) => return Err(ipv6()),
        (None, TargetHost::Domain(name)) => {
            if name.len() > MAX_SOCKS_NAME {
                return Err(too_long_name());
            }
            TargetAddr::Domain(name.as_str().into(), target.port())
        }
    };
    let user_id = proxy.username().unwrap_or_default();
    let result = if user_id.is_empty() {
        Socks4Stream::connect_with_socket(io, addr).await
    } else {
        Socks4Stream::connect_with_userid_and_socket(io, addr, user_id).await
    };
    result
        .map(|s| Box::new(s.into_inner()) as Box<dyn Io>)
        .map_err(|e| socks_error(e, !user_id.is_empty(), true))
}

/// Maps tokio-socks' errors onto ours.
fn socks_error(e: tokio_socks::Error, with_credentials: bool, socks4: bool) -> ProxyError {
    use tokio_socks::Error as E;
    let protocol = |what: &str| ProxyError::new(K::Protocol).detail(what.to_owned());
    match e {
        E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            protocol("the proxy closed the connection during the SOCKS handshake")
        }
        E::Io(io) => protocol("the SOCKS handshake failed").source(io),
        E::ProxyServerUnreachable => ProxyError::new(K::ProxyUnreachable),
        E::InvalidResponseVersion => protocol("the SOCKS reply has the wrong version"),
        E::InvalidReservedByte => protocol("the SOCKS reply has a nonzero reserved byte"),
        E::UnknownAddressType => protocol("the SOCKS reply has an unknown address type"),
        E::InvalidTargetAddress(_) => protocol("the SOCKS reply has an invalid address"),
        E::UnknownAuthMethod => protocol("the SOCKS reply has an unknown method or reply code"),
        E::UnknownError => protocol("the SOCKS4 reply has an unknown code"),
        E::NoAcceptableAuthMethods if with_credentials => ProxyError::new(K::AuthFailed)
            .detail("the proxy accepts none of the offered authentication methods"),
        E::NoAcceptableAuthMethods => ProxyError::new(K::AuthRequired)
            .detail("the proxy accepts none of the offered authentication methods"),
        E::AuthorizationRequired => {
            ProxyError::new(K::AuthRequired).detail("the proxy asks for user name and password")
        }
        E::PasswordAuthFailure(code) => {
            ProxyError::new(K::AuthFailed).detail(format!("SOCKS5 authentication status {code}"))
        }
        E::InvalidAuthValues(_) => {
            ProxyError::new(K::InvalidTarget).detail("the credentials cannot be sent over SOCKS")
        }
        E::GeneralSocksServerFailure if socks4 => ProxyError::new(K::Refused(Refusal::Socks4(91))),
        E::GeneralSocksServerFailure => ProxyError::new(K::Refused(Refusal::Socks5(1))),
        E::ConnectionNotAllowedByRuleset => ProxyError::new(K::Refused(Refusal::Socks5(2))),
        E::NetworkUnreachable => ProxyError::new(K::TargetUnreachable(Some(Refusal::Socks5(3)))),
        E::HostUnreachable => ProxyError::new(K::TargetUnreachable(Some(Refusal::Socks5(4)))),
        E::ConnectionRefused => ProxyError::new(K::TargetUnreachable(Some(Refusal::Socks5(5)))),
        E::TtlExpired => ProxyError::new(K::TargetUnreachable(Some(Refusal::Socks5(6)))),
        E::CommandNotSupported => ProxyError::new(K::Refused(Refusal::Socks5(7))),
        E::AddressTypeNotSupported => ProxyError::new(K::Refused(Refusal::Socks5(8))),
        E::IdentdAuthFailure => ProxyError::new(K::Refused(Refusal::Socks4(92))),
        E::InvalidUserIdAuthFailure => {
            ProxyError::new(K::AuthFailed).detail("SOCKS4 reply 93: the user id was rejected")
        }
        other => protocol("SOCKS handshake failed").source(other),
    }
}
