//! The proxy protocols, one file each, each a handshake over an already-open stream to the
//! proxy: [`http_connect`] (HTTP CONNECT, over TCP or TLS to the proxy) and [`socks`]
//! (SOCKS4, 4a, 5 and 5h). Opening that stream, the deadline and the DNS rule belong to the
//! dialer; these modules only speak the protocol and say what failed.

pub(crate) mod http_connect;
pub(crate) mod socks;
