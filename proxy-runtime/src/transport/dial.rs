//! The dial: one connection to a target, straight or through one proxy, with TLS to the
//! target when asked, every phase against one deadline.
//!
//! Owns the order of the phases and the DNS rule of each scheme; the proxy protocols are
//! in [`super::proxy`], name resolution and Happy Eyeballs in [`super::happy_eyeballs`].
//! Which member of a route to dial through is the route's choice ([`crate::route`]). It
//! must never fall back to a direct connection when given a proxy, never resolve a target
//! name locally for `socks4a`/`socks5h`/HTTP proxies, and never put a password in a log
//! line.

use super::happy_eyeballs::{Bind, Resolution, connect_any, connect_failure, resolve};
use super::io::{Conn, Io};
use super::proxy::{self, Handshake};
use super::socket::AckNow;
use super::target::{Resolve, Target};
use super::tls::{self, ExitTls};
use super::trace::Steps;
use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::model::member::PoolMember;
use crate::model::proxy_url::{ProxyEndpoint, ProxyUrl};

/// What a connection by one way needs: how names are resolved, and the TLS of that exit.
#[derive(Clone, Copy)]
pub(crate) struct Link<'a> {
    pub(crate) resolver: &'a dyn Resolve,
    pub(crate) tls: &'a ExitTls,
}

/// Which protocols TLS to the target offers (ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `http/1.1`: WebSockets and raw streams.
    Http1,
    /// What the HTTP client speaks: `h2` and `http/1.1`, unless HTTP/2 is switched off.
    Http,
}

/// An established connection to a target.
pub(crate) struct Established {
    /// The stream, with every layer below it (TCP, the proxy's TLS, the tunnel, TLS).
    pub(crate) io: Conn,
    /// Whether TLS to the target negotiated HTTP/2 (ALPN `h2`).
    pub(crate) h2: bool,
}

/// Connects to `target` by `way`: straight for `direct://`, else through that proxy, from
/// the member's source; with TLS to the target when `tls` says which protocols to offer.
pub(crate) async fn dial(
    link: Link<'_>,
    way: &PoolMember,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
) -> Result<Established, ProxyError> {
    let bind = Bind::of(way);
    match way.url() {
        ProxyUrl::Direct | ProxyUrl::DirectFrom(_) => direct(link, bind, target, tls, steps).await,
        ProxyUrl::Proxy(endpoint) => {
            let through = Through {
                endpoint,
                bind,
                headers: way.connect_headers(),
            };
            proxied(link, through, target, tls, steps).await
        }
    }
}

/// A proxy, and how to reach it and talk to it.
#[derive(Clone, Copy)]
struct Through<'a> {
    endpoint: &'a ProxyEndpoint,
    bind: Bind<'a>,
    /// Headers of the CONNECT request (HTTP proxies).
    headers: &'a [(http::HeaderName, http::HeaderValue)],
}

async fn direct(
    link: Link<'_>,
    bind: Bind<'_>,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
) -> Result<Established, ProxyError> {
    let addrs = resolve(link.resolver, target.host(), target.port(), steps)
        .await
        .map_err(Resolution::of_target)?;
    let tcp = connect_any(&addrs, bind, steps)
        .await
        .map_err(|e| connect_failure(K::TargetUnreachable(None), e))?;
    // Concrete types all the way down: nothing dispatched dynamically per read or write.
    let stream = Stream {
        plain: Conn::Tcp,
        tls: Conn::Tls,
    };
    target_tls(link, tcp, target, tls, steps, stream).await
}

async fn proxied(
    link: Link<'_>,
    through: Through<'_>,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
) -> Result<Established, ProxyError> {
    let endpoint = through.endpoint;
    // The DNS rule: the target's name is looked up here only for the schemes that say so
    // (socks4://, socks5://), and before the proxy sees anything (a failure is the
    // target's, not the proxy's). Every other scheme hands the name to the proxy.
    let resolved = if endpoint.scheme().resolves_locally() {
        let addrs = resolve(link.resolver, target.host(), target.port(), steps)
            .await
            .map_err(Resolution::of_target)?;
        Some(addrs)
    } else {
        None
    };
    // What the protocol cannot carry is refused before any connection is opened.
    let handshake = Handshake::prepare(endpoint, target, resolved.as_deref(), through.headers)
        .map_err(|e| e.in_phase(Phase::ProxyHandshake))?;
    let addrs = resolve(link.resolver, endpoint.host(), endpoint.port(), steps)
        .await
        .map_err(Resolution::of_proxy)?;
    // One connection to the proxy per attempt: a SOCKS request for an address the proxy
    // cannot reach ends its connection, and the next address of the target is asked for
    // on a new one, within the same deadline.
    let mut attempt = 0;
    let tunnel = loop {
        let io = to_proxy(link, through, &addrs, steps).await?;
        let tunnel = steps
            .run(
                Phase::ProxyHandshake,
                handshake.run(attempt, io, endpoint, target),
            )
            .await;
        match tunnel {
            Err(e) if attempt + 1 < handshake.attempts() && handshake.worth_another_attempt(&e) => {
                tracing::debug!(error = %e, "the proxy could not reach one address of the target; trying the next");
                attempt += 1;
            }
            tunnel => break tunnel?,
        }
    };
    let stream = Stream {
        plain: Conn::Layered,
        tls: |tls| Conn::Layered(tls),
    };
    target_tls(link, tunnel, target, tls, steps, stream).await
}

/// A stream to the proxy at `addrs`: TCP (quick acknowledgements on), and TLS for an
/// `https://` proxy.
async fn to_proxy(
    link: Link<'_>,
    through: Through<'_>,
    addrs: &[std::net::SocketAddr],
    steps: Steps<'_>,
) -> Result<Box<dyn Io>, ProxyError> {
    let endpoint = through.endpoint;
    let tcp = connect_any(addrs, through.bind, steps)
        .await
        .map_err(|e| connect_failure(K::ProxyUnreachable, e))?;
    // Proxies that keep Nagle on wait for our acknowledgements: see `AckNow`.
    let tcp = AckNow::new(tcp);
    if proxy::over_tls(endpoint) {
        let name = tls::server_name(&endpoint.host().bare())?;
        let handshake = tls::handshake(&link.tls.proxy, name, tcp);
        Ok(Box::new(steps.run(Phase::ProxyTls, handshake).await?))
    } else {
        Ok(Box::new(tcp))
    }
}

/// How the stream below the target's TLS becomes a connection's stream: as it is, or
/// under TLS. The TLS state (about a kilobyte) is boxed once, so that the stream handed
/// out, and every move of it, stays small.
struct Stream<S> {
    plain: fn(S) -> Conn,
    tls: fn(Box<tokio_rustls::client::TlsStream<S>>) -> Conn,
}

/// The connection over `io`, with TLS to the target when asked (and whether it negotiated
/// HTTP/2).
async fn target_tls<S: Io + 'static>(
    link: Link<'_>,
    io: S,
    target: &Target,
    tls: Option<Alpn>,
    steps: Steps<'_>,
    stream: Stream<S>,
) -> Result<Established, ProxyError> {
    let Some(alpn) = tls else {
        return Ok(Established {
            io: (stream.plain)(io),
            h2: false,
        });
    };
    let config = match alpn {
        Alpn::Http => &link.tls.http,
        Alpn::Http1 => &link.tls.http1,
    };
    let name = tls::server_name(&target.host().bare())?;
    let tls = steps
        .run(Phase::Tls, tls::handshake(config, name, io))
        .await?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok(Established {
        io: (stream.tls)(Box::new(tls)),
        h2,
    })
}
