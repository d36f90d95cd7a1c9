//! Names to addresses, and addresses to one TCP connection: resolution through the
//! [`Resolve`] hook (only where the scheme says names are resolved here), and Happy
//! Eyeballs (RFC 8305) over every address a name has.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::socket::no_delay;
use super::target::Resolve;
use super::trace::Steps;
use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::model::host::Host;
use crate::model::member::PoolMember;

/// Where a member's sockets leave this host: a local address, a network interface, or
/// (the default) wherever the system routes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bind<'a> {
    pub(crate) address: Option<IpAddr>,
    pub(crate) interface: Option<&'a str>,
}

impl<'a> Bind<'a> {
    /// The binding of `member`'s sockets.
    pub(crate) fn of(member: &'a PoolMember) -> Self {
        Self {
            address: member.source(),
            interface: member.interface(),
        }
    }

    /// Whether a socket bound so can connect to `addr` (a bound address admits only its
    /// own family).
    fn admits(&self, addr: &SocketAddr) -> bool {
        self.address.is_none_or(|ip| ip.is_ipv4() == addr.is_ipv4())
    }

    /// Connects to `addr` from a socket bound as said: a failure to bind is told apart
    /// from a failure to connect.
    async fn connect(self, addr: SocketAddr) -> Result<TcpStream, Failed> {
        if self == Bind::default() {
            return TcpStream::connect(addr).await.map_err(Failed::Connect);
        }
        let socket = self.socket(addr)?;
        socket.connect(addr).await.map_err(|e| match e.kind() {
            // The system refused the bound address for this destination (a loopback
            // source to an outside address, a source that left the host): the member's
            // fault, not the target's.
            std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::InvalidInput => {
                Failed::Bind(e)
            }
            _ => Failed::Connect(e),
        })
    }

    /// A socket for a connection to `addr`, bound as said. A socket bound to an address
    /// gets its port at connect, for that destination (`IP_BIND_ADDRESS_NO_PORT`, on
    /// Linux): a source address is then not limited to one ephemeral range for all its
    /// destinations together.
    fn socket(self, addr: SocketAddr) -> Result<TcpSocket, Failed> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(Failed::Connect)?;
        if let Some(interface) = self.interface {
            bind_device(&socket, interface).map_err(Failed::Bind)?;
        }
        if let Some(address) = self.address {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::IpBindAddressNoPort,
                &true,
            )
            .map_err(|e| Failed::Bind(e.into()))?;
            socket
                .bind(SocketAddr::new(address, 0))
                .map_err(Failed::Bind)?;
        }
        Ok(socket)
    }

    /// The member's binding, for messages.
    fn describe(&self) -> String {
        match (self.address, self.interface) {
            (Some(address), Some(interface)) => {
                format!("the source address {address} on {interface}")
            }
            (Some(address), None) => format!("the source address {address}"),
            (None, Some(interface)) => format!("the interface {interface}"),
            (None, None) => "the default source".to_owned(),
        }
    }
}

/// Binds `socket` to the network interface `interface` (`SO_BINDTODEVICE`). Members bound
/// to an interface are refused when settings are loaded on other systems; were one made
/// there anyway, its connections fail.
fn bind_device(socket: &TcpSocket, interface: &str) -> std::io::Result<()> {
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    return socket.bind_device(Some(interface.as_bytes()));
    #[cfg(not(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))]
    {
        let _ = (socket, interface);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "binding to an interface needs Linux",
        ))
    }
}

/// How one connection attempt failed.
enum Failed {
    /// The socket could not be bound to the member's source.
    Bind(std::io::Error),
    /// The connection failed.
    Connect(std::io::Error),
}

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
///
/// With a source address, only the addresses of its family are tried (none: a
/// [`ConnectError::Source`]); a socket that cannot be bound fails as
/// [`ConnectError::Source`] too, and the race goes on with the other addresses.
pub(crate) async fn connect_any(
    addrs: &[SocketAddr],
    bind: Bind<'_>,
    steps: Steps<'_>,
) -> Result<TcpStream, ConnectError> {
    let order: Vec<SocketAddr> = match bind.address {
        // One family: the resolver's order of its addresses, nothing to interleave.
        Some(_) => addrs.iter().copied().filter(|a| bind.admits(a)).collect(),
        None => interleaved(addrs),
    };
    if order.is_empty() && !addrs.is_empty() {
        let family = if addrs[0].is_ipv4() { "IPv4" } else { "IPv6" };
        return Err(ConnectError::Family(format!(
            "{} cannot reach {family} addresses only",
            bind.describe()
        )));
    }
    let attempts = race(order, bind);
    match steps.phase(Phase::Connect, attempts).await {
        Err(_) => Err(ConnectError::Timeout),
        Ok(Err(Failed::Connect(e))) => Err(ConnectError::Io(e)),
        Ok(Err(Failed::Bind(e))) => Err(ConnectError::Source(
            format!("cannot bind to {}", bind.describe()),
            e,
        )),
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
async fn race(addrs: Vec<SocketAddr>, bind: Bind<'_>) -> Result<TcpStream, Failed> {
    use futures_util::stream::{FuturesUnordered, StreamExt};

    let mut queue = addrs.into_iter();
    let mut running = FuturesUnordered::new();
    let mut last = None;
    // Each turn starts the next address: the first at once, then each when an attempt
    // failed or when the stagger since the last start ran out, whichever came first.
    loop {
        match queue.next() {
            Some(addr) => running.push(bind.connect(addr)),
            None if running.is_empty() => {
                return Err(last.unwrap_or_else(|| {
                    Failed::Connect(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no address to connect to",
                    ))
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
    /// The member's source cannot be used: why, and the system's error.
    Source(String, std::io::Error),
    /// The member's source address is of another family than every address to reach.
    Family(String),
}

/// A failed connect as an error of `kind`, as a timeout of the connect phase, or as the
/// member's source being unusable: in the connect phase when the system refused it, and
/// in no phase when no address fits its family (nothing was tried: the member cannot
/// carry this connection, see `route::pool::cannot_carry`).
pub(crate) fn connect_failure(kind: K, e: ConnectError) -> ProxyError {
    match e {
        ConnectError::Timeout => ProxyError::new(K::Timeout(Phase::Connect)),
        ConnectError::Io(io) => ProxyError::new(kind).source(io).in_phase(Phase::Connect),
        ConnectError::Source(why, io) => ProxyError::new(K::SourceUnavailable)
            .detail(why)
            .source(io)
            .in_phase(Phase::Connect),
        ConnectError::Family(why) => ProxyError::new(K::SourceUnavailable).detail(why),
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

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn a_socket_bound_to_a_source_takes_its_port_at_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bind = super::Bind {
            address: Some("127.0.0.1".parse().unwrap()),
            interface: None,
        };
        let Ok(socket) = bind.socket(addr) else {
            panic!("bound");
        };
        // Bound to the address, with no port reserved yet.
        assert_eq!(socket.local_addr().unwrap().port(), 0);
        assert_eq!(socket.local_addr().unwrap().ip(), bind.address.unwrap());
        let tcp = socket.connect(addr).await.unwrap();
        assert_ne!(tcp.local_addr().unwrap().port(), 0);
    }

    #[tokio::test]
    async fn connections_are_made_with_nagle_off() {
        // A listener on loopback: the one socket a test of this file opens.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let Ok(tcp) = race(vec![addr], super::Bind::default()).await else {
            panic!("connects");
        };
        assert!(tcp.nodelay().unwrap(), "TCP_NODELAY is set");
    }
}
