//! The proxy settings model: the validated values (hosts, proxy URLs, exchange ids,
//! timeouts), routes and pools ([`route`]), how routes are named ([`key`]), and the
//! settings with their resolution ([`proxy_settings`]).
//!
//! Built on the settings framework ([`crate::settings`]), whose traits each value
//! implements in its own file; knows nothing of connections.

pub(crate) mod exchange;
pub(crate) mod host;
pub(crate) mod hosts;
pub(crate) mod http_budget;
pub(crate) mod key;
pub(crate) mod member;
pub(crate) mod proxy_settings;
pub(crate) mod proxy_url;
pub(crate) mod reload;
pub(crate) mod route;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod system;
pub(crate) mod timeout;
