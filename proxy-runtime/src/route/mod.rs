//! Which exit a connection takes: a route's members (proxies, `direct://`), their health
//! and cooling ([`pool`]), their connection budgets ([`budget`]) and weight budgets
//! ([`weight`], each exit's window in [`window`]), with the rule of rate limits in
//! [`cooling`] and each member's metrics in [`member`]; the store that shares exit state
//! between processes ([`shared`]) and a process's leases of it ([`lease`]); and the
//! [`Dialer`](dialer::Dialer) every new connection asks, which hands out a
//! [`ProxyStream`](stream::ProxyStream).
//!
//! Every question about where a new connection goes is answered here, before it is dialed
//! ([`crate::transport`]); the HTTP client and WebSockets only report back (a response's
//! status, through the member's tag).

pub(crate) mod budget;
pub(crate) mod cooling;
pub(crate) mod dialer;
pub(crate) mod lease;
pub(crate) mod member;
pub(crate) mod pool;
pub(crate) mod shared;
pub(crate) mod stream;
pub(crate) mod weight;
pub(crate) mod window;
