//! SOCKS4, 4a, 5 and 5h handshakes (through tokio-socks), and the one decision of what a
//! SOCKS request carries.
//!
//! tokio-socks checks neither a host name's length (it wraps the length byte at 256 and
//! panics at about 600 bytes) nor its own 513-byte SOCKS4 buffer, so [`address`] checks
//! every limit before any byte is sent, and is the only place that does.

use std::net::SocketAddr;

use tokio_socks::TargetAddr;
use tokio_socks::tcp::{Socks4Stream, Socks5Stream};

use crate::error::{ProxyError, ProxyErrorKind as K, Refusal};
use crate::model::host::Host;
use crate::model::proxy_url::{ProxyEndpoint, ProxyScheme};
use crate::transport::io::Io;
use crate::transport::target::Target;

/// Longest host name SOCKS can carry (its length is one byte).
const MAX_NAME: usize = 255;
/// tokio-socks builds its SOCKS4 requests in a 513-byte buffer: 8 bytes of header, the user
/// id, a NUL, and for SOCKS4a the name and a NUL.
const SOCKS4_BUFFER: usize = 513;

/// What a SOCKS request names: the target's host name (the proxy resolves it), or one
/// address.
#[derive(Debug, Clone)]
pub(crate) enum Address {
    Name(String, u16),
    Ip(SocketAddr),
}

/// Decides what the SOCKS requests for `target` may carry, in the order to try them, or
/// why the protocol cannot carry it. `resolved` holds the target's addresses for the
/// local-DNS schemes (`socks4`, `socks5`): every address the protocol can carry, in the
/// resolver's order (a proxy that cannot reach one may reach the next); otherwise the
/// one name or address of the target.
pub(crate) fn addresses(
    proxy: &ProxyEndpoint,
    target: &Target,
    resolved: Option<&[SocketAddr]>,
) -> Result<Vec<Address>, ProxyError> {
    let socks4 = matches!(proxy.scheme(), ProxyScheme::Socks4 | ProxyScheme::Socks4a);
    let ipv4_only =
        || ProxyError::new(K::InvalidTarget).detail("SOCKS4 carries only IPv4 addresses");
    let address = match (resolved, target.host()) {
        (Some(addrs), _) => {
            let usable: Vec<Address> = addrs
                .iter()
                .filter(|a| !socks4 || a.is_ipv4())
                .map(|a| Address::Ip(*a))
                .collect();
            if usable.is_empty() {
                return Err(ipv4_only());
            }
            return Ok(usable);
        }
        (None, Host::Ip(ip)) => Address::Ip(SocketAddr::new(*ip, target.port())),
        (None, Host::Domain(name)) => Address::Name(name.clone(), target.port()),
    };
    match &address {
        Address::Ip(addr) if socks4 && addr.is_ipv6() => return Err(ipv4_only()),
        Address::Name(name, _) if name.len() > MAX_NAME => {
            return Err(ProxyError::new(K::InvalidTarget).detail(format!(
                "SOCKS carries host names of at most {MAX_NAME} bytes"
            )));
        }
        Address::Name(name, _) if socks4 => {
            let user_id = proxy.username().map_or(0, str::len);
            if 10 + user_id + name.len() > SOCKS4_BUFFER {
                return Err(ProxyError::new(K::InvalidTarget)
                    .detail("the SOCKS4 user id and host name are too long together"));
            }
        }
        _ => {}
    }
    Ok(vec![address])
}

/// Whether a SOCKS request for one address failed in a way another address of the same
/// target may not: the proxy could not reach it (SOCKS5 replies 3 to 6), does not carry
/// its address type (SOCKS5 reply 8), or rejected it (SOCKS4 reply 91).
pub(crate) fn another_address_may_do(error: &ProxyError) -> bool {
    matches!(
        error.kind(),
        K::TargetUnreachable(Some(_))
            | K::Refused(Refusal::Socks5(8))
            | K::Refused(Refusal::Socks4(91))
    )
}

/// The SOCKS handshake (by the proxy's scheme) for `address`, over `io`.
pub(crate) async fn handshake(
    io: Box<dyn Io>,
    proxy: &ProxyEndpoint,
    address: &Address,
) -> Result<Box<dyn Io>, ProxyError> {
    let addr = match address {
        Address::Name(name, port) => TargetAddr::Domain(name.as_str().into(), *port),
        Address::Ip(addr) => TargetAddr::Ip(*addr),
    };
    let user = proxy.username();
    if matches!(proxy.scheme(), ProxyScheme::Socks4 | ProxyScheme::Socks4a) {
        // A proxy URL never has an empty user name (its parser refuses one).
        let result = match user {
            Some(user_id) => Socks4Stream::connect_with_userid_and_socket(io, addr, user_id).await,
            None => Socks4Stream::connect_with_socket(io, addr).await,
        };
        return result
            .map(|s| Box::new(s.into_inner()) as Box<dyn Io>)
            .map_err(|e| error(e, user.is_some(), true));
    }
    let result = match user {
        Some(user) => {
            let password = proxy.password().map(|p| p.expose()).unwrap_or_default();
            Socks5Stream::connect_with_password_and_socket(io, addr, user, password).await
        }
        None => Socks5Stream::connect_with_socket(io, addr).await,
    };
    result
        .map(|s| Box::new(s.into_inner()) as Box<dyn Io>)
        .map_err(|e| error(e, user.is_some(), false))
}

/// Maps tokio-socks' errors onto ours.
fn error(e: tokio_socks::Error, with_credentials: bool, socks4: bool) -> ProxyError {
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
        // Proxy URLs with such credentials are refused when settings load; this is the
        // same problem, should one be built another way.
        E::InvalidAuthValues(_) => {
            ProxyError::new(K::Settings).detail("the credentials cannot be sent over SOCKS")
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{Address, addresses, another_address_may_do, error};
    use crate::error::ProxyErrorKind as K;
    use crate::error::{ProxyError, Refusal};
    use crate::model::proxy_url::{ProxyEndpoint, ProxyUrl};
    use crate::transport::target::Target;

    fn endpoint(url: &str) -> ProxyEndpoint {
        ProxyUrl::parse(url).unwrap().endpoint().unwrap().clone()
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// The one address for `target` through `proxy` (a test of a single-address case).
    fn address(
        proxy: &ProxyEndpoint,
        target: &Target,
        resolved: Option<&[SocketAddr]>,
    ) -> Result<Address, ProxyError> {
        let mut all = addresses(proxy, target, resolved)?;
        assert_eq!(all.len(), 1, "{all:?}");
        Ok(all.remove(0))
    }

    #[test]
    fn locally_resolved_targets_use_every_address_the_protocol_carries_in_order() {
        let target = Target::new("exchange.test", 443).unwrap();
        let resolved = addrs(&["[2001:db8::1]:443", "192.0.2.1:443", "192.0.2.2:443"]);
        let pick = |url: &str| -> Vec<String> {
            addresses(&endpoint(url), &target, Some(&resolved))
                .unwrap()
                .into_iter()
                .map(|a| match a {
                    Address::Ip(addr) => addr.to_string(),
                    other => panic!("{url}: {other:?}"),
                })
                .collect()
        };
        assert_eq!(
            pick("socks5://p:1080"),
            ["[2001:db8::1]:443", "192.0.2.1:443", "192.0.2.2:443"]
        );
        assert_eq!(pick("socks4://p:1080"), ["192.0.2.1:443", "192.0.2.2:443"]);
        let v6_only = addrs(&["[2001:db8::1]:443"]);
        let err = addresses(&endpoint("socks4://p:1080"), &target, Some(&v6_only)).unwrap_err();
        assert_eq!(err.kind(), &K::InvalidTarget);
    }

    #[test]
    fn another_address_is_tried_after_the_target_s_refusals_only() {
        let next = [
            K::TargetUnreachable(Some(Refusal::Socks5(3))),
            K::TargetUnreachable(Some(Refusal::Socks5(5))),
            K::Refused(Refusal::Socks5(8)),
            K::Refused(Refusal::Socks4(91)),
        ];
        for kind in next {
            assert!(
                another_address_may_do(&ProxyError::new(kind.clone())),
                "{kind:?}"
            );
        }
        let stop = [
            K::Refused(Refusal::Socks5(2)),
            K::Refused(Refusal::Socks5(1)),
            K::Refused(Refusal::Socks4(92)),
            K::AuthFailed,
            K::Protocol,
            K::ProxyUnreachable,
        ];
        for kind in stop {
            assert!(
                !another_address_may_do(&ProxyError::new(kind.clone())),
                "{kind:?}"
            );
        }
    }

    /// The length of a user id that, with `name`, fills tokio-socks' SOCKS4 buffer exactly.
    fn filling(name: &str) -> String {
        "u".repeat(super::SOCKS4_BUFFER - 10 - name.len())
    }

    #[test]
    fn socks4a_names_and_user_ids_fit_the_request_buffer_together() {
        let name = "n".repeat(250);
        let target = Target::new(&name, 443).unwrap();
        let fits = format!("socks4a://{}@p:1080", filling(&name));
        match address(&endpoint(&fits), &target, None) {
            Ok(Address::Name(n, 443)) => assert_eq!(n, name),
            other => panic!("{other:?}"),
        }
        let over = format!("socks4a://{}u@p:1080", filling(&name));
        let err = address(&endpoint(&over), &target, None).unwrap_err();
        assert_eq!(err.kind(), &K::InvalidTarget);
        assert!(err.to_string().contains("too long together"), "{err}");
        // SOCKS5 has no such buffer: the same lengths go.
        let socks5 = format!("socks5h://{}u:pw@p:1080", filling(&name));
        assert!(address(&endpoint(&socks5), &target, None).is_ok());
    }

    #[test]
    fn io_errors_of_the_handshake_say_whether_the_proxy_closed() {
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let e = error(tokio_socks::Error::Io(eof), false, false);
        assert_eq!(e.kind(), &K::Protocol);
        assert_eq!(
            e.to_string(),
            "proxy protocol error: the proxy closed the connection during the SOCKS handshake"
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = error(tokio_socks::Error::Io(reset), false, false);
        assert_eq!(e.kind(), &K::Protocol);
        assert_eq!(
            e.to_string(),
            "proxy protocol error: the SOCKS handshake failed: connection reset"
        );
    }
}
