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

/// A route's weight budgets over `members` exits, the first `spent` of them with no room
/// left: what each request of a budgeted route does before and after it is sent.
#[derive(Debug)]
pub struct WeightBench {
    pool: PoolBench,
    weights: Arc<crate::route::weight::Weights>,
    answer: http::HeaderMap,
    /// The turns that spend the first exits, held unanswered.
    spent: Vec<crate::route::weight::Ticket>,
}

impl WeightBench {
    /// `members` exits (at least one) with a budget of 4,000,000,000 per minute, the first
    /// `spent` of them spent (requests pass over them to the first with room), and an
    /// answer carrying the exchange's count.
    pub fn new(members: usize, spent: usize) -> Self {
        use crate::model::http_budget::{HttpBudget, WeightHeader};
        let pool = PoolBench::new(members, Strategy::Failover);
        let budget = HttpBudget::new()
            .with_weight(4_000_000_000, Duration::from_secs(60))
            .with_used_weight_header(WeightHeader::new("x-mbx-used-weight-1m").expect("a name"));
        let exits = (0..members.max(1))
            .map(|i| crate::route::weight::ExitName {
                shown: format!("exit-{i}"),
                id: format!("exit-{i}"),
            })
            .collect();
        let weights = crate::route::weight::Weights::new(&budget, exits, Vec::new(), None, None)
            .expect("a budget");
        let mut answer = http::HeaderMap::new();
        answer.insert("x-mbx-used-weight-1m", http::HeaderValue::from_static("12"));
        // Each of the first exits' whole budget, in flight.
        let spent = (0..spent.min(members.saturating_sub(1)))
            .map(|i| {
                Self::now(weights.admit(4_000_000_000, None, || vec![i]))
                    .expect("room: never waits")
                    .expect("admitted")
            })
            .collect();
        Self {
            pool,
            weights,
            answer,
            spent,
        }
    }

    /// Polls `future` once: admission that has room never waits.
    fn now<F: std::future::Future>(future: F) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(future).poll(&mut cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        }
    }

    /// One request's accounting: the exits in the pool's order, admission through the
    /// first with room, and the answer's count applied. The exit taken.
    pub fn request(&self) -> usize {
        let ticket = Self::now(self.weights.admit(1, None, || self.pool.0.candidates()))
            .expect("room: never waits")
            .expect("admitted");
        let exit = ticket.exit();
        ticket.answered(http::StatusCode::OK, &self.answer);
        debug_assert!(self.spent.iter().all(|t| t.exit() != exit));
        exit
    }
}

/// The `Accept-Encoding` this build's client sends (the codings its features decode), so
/// that a peer in the benchmarks can send the same; `None` when it decodes none.
pub fn accept_encoding() -> Option<&'static str> {
    crate::http_client::body::accept_encoding().and_then(|v| v.to_str().ok())
}

/// What a request of an injector's HTTP client does to find its route, now that a reload
/// may swap it: one lock-free read of the routes in force (`arc-swap`), held for the
/// request.
pub struct ReloadBench {
    client: crate::http_client::client::HttpClient,
    /// The route as a client that cannot reload held it: a field read.
    fixed: Arc<crate::http_client::client::Inner>,
}

impl ReloadBench {
    /// The HTTP client of an exchange routed through a SOCKS5 proxy.
    pub fn new() -> Self {
        let settings = crate::model::proxy_settings::ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                    "socks5h://proxy.example:1080",
                ),
            ])
            .load()
            .expect("valid settings");
        let client = crate::injector::ProxyInjector::new(settings).http_client("binance");
        let fixed = client.inner();
        Self { client, fixed }
    }

    /// The read a request makes: the routes in force, then its route among them.
    pub fn route_in_force(&self) -> usize {
        self.client.route_read()
    }

    /// The same read of a route that no reload can change (what a request did before
    /// reloads): a field's address.
    pub fn route_fixed(&self) -> usize {
        Arc::as_ptr(&self.fixed) as usize
    }
}

impl std::fmt::Debug for ReloadBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadBench").finish_non_exhaustive()
    }
}

impl Default for ReloadBench {
    fn default() -> Self {
        Self::new()
    }
}
