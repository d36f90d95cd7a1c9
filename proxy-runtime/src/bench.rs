//! Entry points for the benchmarks in `benches/` (feature `bench-internals`): the parts of
//! a connection that cost too little to time through a real one. Not part of the API; no
//! stability promised.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Phase;
use crate::model::exchange::ExchangeId;
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::proxy_url::ProxyUrl;
use crate::model::route::Strategy;
use crate::route::pool::Pool;
use crate::transport::tls::{TlsBase, TlsRoots};

/// A route's pool of `members` SOCKS5 proxies, with its metric handles made now (from the
/// recorder installed then, if any).
#[derive(Debug)]
pub struct PoolBench(Arc<Pool>);

impl PoolBench {
    /// A pool of `members` proxies (at least one) choosing by `strategy`.
    pub fn new(members: usize, strategy: Strategy) -> Self {
        let urls = (0..members.max(1))
            .map(|i| {
                let url: ProxyUrl = format!("socks5h://user:pass@proxy-{i}.example:1080")
                    .parse()
                    .expect("a valid proxy URL");
                url.into()
            })
            .collect();
        let key = RouteKey::Exchange(ExchangeId::new("binance").expect("an exchange id"));
        let tls = TlsRoots::empty()
            .client_config()
            .map(|config| TlsBase::new(config, true))
            .expect("a TLS configuration");
        Self(Pool::new(urls, strategy, key, ConnectionKind::Http, &tls))
    }

    /// The member a new connection tries first: the selection each connection makes.
    pub fn select(&self) -> usize {
        self.0.candidates()[0]
    }

    /// What a connection through member `i` records when it is made: a success and the
    /// times of its four phases (metric calls and the health update).
    pub fn record_success(&self, i: usize) {
        self.record_phases(i);
        self.0.succeeded(i);
    }

    /// The metric calls alone of a connection through member `i`: the times of its four
    /// phases.
    pub fn record_phases(&self, i: usize) {
        for phase in [
            Phase::Connect,
            Phase::ProxyHandshake,
            Phase::Tls,
            Phase::Resolve,
        ] {
            self.0.record_phase(i, phase, Duration::from_micros(100));
        }
    }
}

/// The `Accept-Encoding` this build's client sends (the codings its features decode), so
/// that a peer in the benchmarks can send the same; `None` when it decodes none.
pub fn accept_encoding() -> Option<&'static str> {
    crate::http_client::body::accept_encoding().and_then(|v| v.to_str().ok())
}
