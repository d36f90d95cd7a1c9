//! The proxy protocols, one file each, each a handshake over an already-open stream to the
//! proxy: [`http_connect`] (HTTP CONNECT, over TCP or TLS to the proxy) and [`socks`]
//! (SOCKS4, 4a, 5 and 5h). Opening that stream, the deadline and the DNS rule belong to the
//! dial ([`super::dial`]); these modules only speak the protocol and say what failed.
//!
//! This file is the one dispatch over them: which protocol a scheme speaks, whether the
//! proxy is spoken to over TLS, and what a protocol must settle before the proxy is
//! dialed. A new protocol is its own file, its scheme in the URL parser
//! ([`ProxyScheme`]), and its arm here.

pub(crate) mod http_connect;
pub(crate) mod socks;

use std::net::SocketAddr;

use super::io::Io;
use super::target::Target;
use crate::error::ProxyError;
use crate::model::proxy_url::{ProxyEndpoint, ProxyScheme};

/// A handshake through one proxy, prepared before the proxy is dialed: what the protocol
/// cannot carry (a name too long for SOCKS, IPv6 over SOCKS4) is refused here, before any
/// connection is opened.
#[derive(Debug)]
pub(crate) enum Handshake<'a> {
    /// HTTP CONNECT: the target's name and port go to the proxy as written, with these
    /// headers.
    Connect(&'a [(http::HeaderName, http::HeaderValue)]),
    /// SOCKS: a request carries one of these addresses, tried in order (several when the
    /// target's name was resolved here).
    Socks(Vec<socks::Address>),
}

impl<'a> Handshake<'a> {
    /// The handshake through `proxy` to `target`. `resolved` holds the target's addresses
    /// for the schemes that resolve names here ([`ProxyScheme::resolves_locally`]), and is
    /// `None` for the others.
    pub(crate) fn prepare(
        proxy: &ProxyEndpoint,
        target: &Target,
        resolved: Option<&[SocketAddr]>,
        headers: &'a [(http::HeaderName, http::HeaderValue)],
    ) -> Result<Self, ProxyError> {
        match proxy.scheme() {
            ProxyScheme::Http | ProxyScheme::Https => Ok(Handshake::Connect(headers)),
            ProxyScheme::Socks4
            | ProxyScheme::Socks4a
            | ProxyScheme::Socks5
            | ProxyScheme::Socks5h => {
                socks::addresses(proxy, target, resolved).map(Handshake::Socks)
            }
        }
    }

    /// How many requests may be made, one per connection to the proxy: one per address
    /// of the target.
    pub(crate) fn attempts(&self) -> usize {
        match self {
            Handshake::Connect(_) => 1,
            Handshake::Socks(addresses) => addresses.len(),
        }
    }

    /// Runs the handshake (its `attempt`-th request, from 0) over `io`, the stream to the
    /// proxy: the tunnel to `target`.
    pub(crate) async fn run(
        &self,
        attempt: usize,
        io: Box<dyn Io>,
        proxy: &ProxyEndpoint,
        target: &Target,
    ) -> Result<Box<dyn Io>, ProxyError> {
        match self {
            Handshake::Connect(headers) => {
                http_connect::handshake(io, proxy, target, headers).await
            }
            Handshake::Socks(addresses) => {
                let last = addresses.len().saturating_sub(1);
                socks::handshake(io, proxy, &addresses[attempt.min(last)]).await
            }
        }
    }

    /// Whether, after `error`, the next attempt may succeed where this one failed.
    pub(crate) fn worth_another_attempt(&self, error: &ProxyError) -> bool {
        match self {
            Handshake::Connect(_) => false,
            Handshake::Socks(_) => socks::another_address_may_do(error),
        }
    }
}

/// Whether the proxy is spoken to over TLS (`https://`).
pub(crate) fn over_tls(proxy: &ProxyEndpoint) -> bool {
    match proxy.scheme() {
        ProxyScheme::Https => true,
        ProxyScheme::Http
        | ProxyScheme::Socks4
        | ProxyScheme::Socks4a
        | ProxyScheme::Socks5
        | ProxyScheme::Socks5h => false,
    }
}
