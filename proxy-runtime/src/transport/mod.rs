//! How bytes reach a target: the target and name resolution ([`target`]), TCP with Happy
//! Eyeballs ([`happy_eyeballs`]), the socket options ([`socket`]), the proxy protocols
//! ([`proxy`]), TLS ([`tls`]), the phases and their deadline ([`trace`]), and the dial that
//! puts them together for one connection ([`dial`]).
//!
//! Knows nothing of routes or pools: it is told which way to go (straight, or through one
//! proxy), and connects that way or fails.

pub(crate) mod dial;
pub(crate) mod happy_eyeballs;
pub(crate) mod io;
pub(crate) mod proxy;
pub(crate) mod socket;
pub(crate) mod target;
pub(crate) mod tls;
pub(crate) mod trace;
