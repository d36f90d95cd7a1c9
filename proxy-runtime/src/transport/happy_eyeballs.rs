//! Names to addresses, and addresses to one TCP connection: resolution through the
//! [`Resolve`] hook (only where the scheme says names are resolved here), and Happy
//! Eyeballs (RFC 8305) over every address a name has.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::socket::no_delay;
use super::target::Resolve;
use super::trace::Steps;
use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::model::host::Host;

/// Why a host has no addresses to connect to.
pub(crate) enum Resolution {
    /// The resolver failed.
    Failed(std::io::Error),
    /// The resolver answered with no address.
    Empty,
    /// The deadline passed.
    Timeout(ProxyError),
}

impl Resolution {
    /// A failure to resolve the target: the target's problem, never the proxy's.
    pub(crate) fn of_target(self) -> ProxyError {
        match self {
            Resolution::Failed(e) => ProxyError::new(K::TargetResolution).source(e),
            Resolution::Empty => ProxyError::new(K::TargetResolution).detail("no addresses"),
            Resolution::Timeout(e) => e,
        }
        .in_phase(Phase::Resolve)
    }

    /// A failure to resolve the proxy's host: the proxy is unreachable.
    pub(crate) fn of_proxy(self) -> ProxyError {
        match self {
            Resolution::Failed(e) => ProxyError::new(K::ProxyUnreachable)
                .detail("cannot resolve the proxy's host name")
                .source(e),
            Resolution::Empty => ProxyError::new(K::ProxyUnreachable)
                .detail("the proxy's host name has no addresses"),
            Resolution::Timeout(e) => e,
        }
        .in_phase(Phase::Resolve)
    }
}

/// The addresses of `host` at `port`: an address as given, a name through the resolver.
pub(crate) async fn resolve(
    resolver: &dyn Resolve,
    host: &Host,
    port: u16,
    steps: Steps<'_>,
) -> Result<Vec<SocketAddr>, Resolution> {
    let name = match host {
        Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Domain(name) => name,
    };
    let addrs = steps
        .phase(Phase::Resolve, resolver.resolve(name, port))
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
pub(crate) async fn connect_any(
    addrs: &[SocketAddr],
    steps: Steps<'_>,
) -> Result<TcpStream, ConnectError> {
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
                    no_delay(&tcp);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            },
            () = stagger, if more => {}
        }
    }
}

pub(crate) enum ConnectError {
    Io(std::io::Error),
    Timeout,
}

/// A failed connect as an error of `kind`, or as a timeout of the connect phase.
pub(crate) fn connect_failure(kind: K, e: ConnectError) -> ProxyError {
    match e {
        ConnectError::Timeout => ProxyError::new(K::Timeout(Phase::Connect)),
        ConnectError::Io(io) => ProxyError::new(kind).source(io).in_phase(Phase::Connect),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{interleaved, race};

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

    #[tokio::test]
    async fn connections_are_made_with_nagle_off() {
        // A listener on loopback: the one socket a test of this file opens.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = race(vec![addr]).await.unwrap();
        assert!(tcp.nodelay().unwrap(), "TCP_NODELAY is set");
    }
}
