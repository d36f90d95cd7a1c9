//! Connections: the dialer, the HTTP client and WebSockets, and the proxy system that
//! hands them out per exchange.

pub(crate) mod dial;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod pool;
pub(crate) mod proxy;
pub(crate) mod stream;
pub(crate) mod system;
pub(crate) mod target;
pub(crate) mod tls;
pub(crate) mod ws;
