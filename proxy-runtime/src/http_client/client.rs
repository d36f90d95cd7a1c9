//! The HTTP client of one exchange: hyper 1 with hyper-util's pooled client (HTTP/1.1 and,
//! by ALPN, HTTP/2), connecting through the dialer, TLS by rustls, with reqwest's shapes:
//! [`RequestBuilder`](crate::RequestBuilder) and [`Response`].
//!
//! Every target, `http://` included, is reached through a tunnel (CONNECT or SOCKS), never
//! by sending the request to an HTTP proxy in absolute form: that way the proxy sees only
//! `host:port`, and the exchange's own headers (API keys, signatures) never reach it.
//! One client holds one pool, and one client serves one route, so connections never cross
//! proxies or credentials; a reload keeps a pool's connections only for the members that
//! stay with the same settings, and retires the others' ([`Inner::next`]). The client never retries a request: trading requests are not
//! idempotent.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::HeaderMap;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::CaptureConnection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;
use url::Url;

use super::body::{self, BoundedBody};
use super::connector::{ProxyConnector, REQUEST_TRACE};
use super::request::Request;
use super::response::{Response, Sent};
use crate::error::{Phase, ProxyError, ProxyErrorKind as K, find_in_chain};
use crate::model::exchange::ExchangeId;
use crate::model::hosts::{HostIndex, url_form};
use crate::model::key::ConnectionKind;
use crate::model::member::PoolMember;
use crate::route::dialer::{Dialer, Route};
use crate::route::pool::{Lineage, MemberTag, cannot_carry, is_member_failure};
use crate::route::weight::Ticket;
use crate::transport::target::Target;
use crate::transport::trace::Trace;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The default bound on a response body, after decompression: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Client-wide options, set on the injector's builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpOptions {
    /// The default deadline of a whole request.
    pub(crate) timeout: Option<Duration>,
    /// The bound on a response body, after decompression.
    pub(crate) max_body_bytes: u64,
    /// Whether `https://` targets are offered HTTP/2.
    pub(crate) http2: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http2: true,
        }
    }
}

/// The HTTP client of one exchange. Cheap to clone; clones share the connection pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), proxy_runtime::ProxyError> {
/// let client = proxy_runtime::proxy_injector().http_client("binance");
/// let response = client
///     .get("https://api.binance.com/api/v3/depth")
///     .query(&[("symbol", "BTCUSDT"), ("limit", "5")])
///     .send()
///     .await?
///     .error_for_status()?;
/// let weight = response.headers().get("x-mbx-used-weight-1m").cloned();
/// let depth: serde_json::Value = response.json().await?;
/// # let _ = (weight, depth); Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    /// The routes in force: swapped whole when the injector that made the client
    /// reloads, read once by each request.
    routes: Arc<ArcSwap<Routes>>,
    /// Headers every request of this client carries, unless it sets them itself.
    default_headers: Option<Arc<HeaderMap>>,
    /// The injector's options: the same for every route, read without the swap.
    options: HttpOptions,
}

/// The routes of a client at one time.
struct Routes {
    /// The route of every request; for a client routed by host, the default route.
    inner: Arc<Inner>,
    /// For a client routed by host, the routes of the exchanges that claim hosts.
    by_host: Option<ByHost>,
}

/// One route of a client, with its connection pool (or pools).
pub(crate) struct Inner {
    client: Pooled,
    /// On a pool of several members with weight budgets, a client (and connection pool)
    /// per member: a request takes its member's budget before it takes a connection, so
    /// it must take that member's connection (hyper-util pools by host, not by member).
    members: Option<Box<[Pooled]>>,
    route: Route,
    /// Whether each request tells the record of its connection pool which connection it
    /// was handed ([`send`]): on a pool of several members, and on any route whose
    /// connection pool was kept from one (its connections may still be retired).
    records: bool,
}

type HyperClient = Client<ProxyConnector, Full<Bytes>>;

/// A hyper-util client (a connection pool), the dialer its connector opens connections
/// with, and the record of its connections: a reload that keeps the pool points the
/// record, then the dialer, at the new route.
#[derive(Clone)]
struct Pooled {
    hyper: HyperClient,
    via: Dialer,
    lineage: Arc<Lineage>,
}

impl Pooled {
    /// A pool of connections through `route`.
    fn new(route: Route, options: HttpOptions) -> Self {
        let lineage = Lineage::new();
        lineage.follow(route.pool());
        let via = Dialer::from(route);
        let connector =
            ProxyConnector::new(via.clone(), options.http2).recorded_by(lineage.clone());
        let hyper = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        Self {
            hyper,
            via,
            lineage,
        }
    }

    /// The same pool, its connections answering to `route`'s pool (those of members it
    /// does not have retired) and its new connections made through `route`, from now on.
    fn onto(&self, route: Route) -> Self {
        // The record first: a connection the old route makes in between is checked
        // against the new route's members.
        self.lineage.follow(route.pool());
        self.via.swap(route);
        self.clone()
    }
}

/// The exchanges' routes of a client routed by host.
struct ByHost {
    index: HostIndex,
    exchanges: HashMap<ExchangeId, Arc<Inner>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = self.routes.load();
        let mut f = f.debug_struct("HttpClient");
        f.field("dialer", &routes.inner.route);
        if let Some(by_host) = &routes.by_host {
            let mut exchanges: Vec<&ExchangeId> = by_host.exchanges.keys().collect();
            exchanges.sort_unstable();
            f.field("by_host", &exchanges);
        }
        f.field("options", &self.options).finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client whose connections all go through the route `dialer` has in force now,
    /// with the default options (no request deadline, 64 MiB bodies, HTTP/2 offered to
    /// `https://` targets). The clients of a [`ProxyInjector`](crate::ProxyInjector)
    /// ([`http_client`](crate::ProxyInjector::http_client)) follow its reloads; this one
    /// stays on the route it was made with.
    pub fn new(dialer: Dialer) -> Self {
        Self::with_options(dialer, HttpOptions::default())
    }

    pub(crate) fn with_options(dialer: Dialer, options: HttpOptions) -> Self {
        Self::of(Inner::new(dialer.now(), options), None, options)
    }

    /// A client of `inner`'s route, and of `by_host`'s routes by host.
    fn of(inner: Arc<Inner>, by_host: Option<ByHost>, options: HttpOptions) -> Self {
        Self {
            routes: Arc::new(ArcSwap::from_pointee(Routes { inner, by_host })),
            default_headers: None,
            options,
        }
    }

    /// A client that sends each request on the route of the exchange whose hosts (in
    /// `index`) claim the request's host, from `exchanges`, or else on `default`'s.
    pub(crate) fn by_host(
        default: &HttpClient,
        index: HostIndex,
        exchanges: impl IntoIterator<Item = (ExchangeId, HttpClient)>,
    ) -> Self {
        Self::of(
            default.inner(),
            Some(ByHost::new(index, exchanges)),
            default.options,
        )
    }

    /// Puts the routes of `client` in force for this client and its copies: requests that
    /// start from now on take them; those under way keep theirs.
    pub(crate) fn follow(&self, client: &HttpClient) {
        self.routes.store(client.routes.load_full());
    }

    /// Puts `route` in force for this client (not routed by host) and its copies, keeping
    /// the pooled connections that may go on through it ([`Inner::next`]): requests that
    /// start from now on take it. Those under way keep theirs, but a connection one of
    /// them opens from now on goes through `route` when its pool is kept.
    pub(crate) fn follow_route(&self, route: Route) {
        let next = self.inner().next(route, self.options);
        self.routes.store(Arc::new(Routes {
            inner: next,
            by_host: None,
        }));
    }

    /// What a request does to find its route (for the benchmarks): the routes in force,
    /// held as a request holds them, and the route of a request to no host among them.
    #[cfg(feature = "bench-internals")]
    pub(crate) fn route_read(&self) -> usize {
        let routes = self.routes.load();
        std::ptr::from_ref(routes.route_of(None)) as usize
    }

    /// The route in force of a client that is not routed by host (for a client routed by
    /// host, its default route).
    pub(crate) fn inner(&self) -> Arc<Inner> {
        self.routes.load().inner.clone()
    }

    /// The same client (the same routes and connection pools, following the same
    /// reloads) whose every request carries `headers`, unless it sets a header of the
    /// same name itself: an API key, a `User-Agent`. A cheap copy; the client it is made
    /// from is unchanged.
    pub fn with_default_headers(&self, headers: HeaderMap) -> HttpClient {
        Self {
            routes: self.routes.clone(),
            default_headers: Some(Arc::new(headers)),
            options: self.options,
        }
    }

    /// The route this client uses now, as a dialer that stays on it; for a client routed
    /// by host
    /// ([`ProxyInjector::http_client_by_host`](crate::ProxyInjector::http_client_by_host)),
    /// the default route's, which takes the hosts no exchange claims.
    pub fn dialer(&self) -> Dialer {
        self.routes.load().inner.route.clone().into()
    }

    /// The bound on a response body, after decompression.
    pub fn max_body_bytes(&self) -> u64 {
        self.options.max_body_bytes
    }

    /// Sends a request built with hyper's types and returns hyper's response, as it came:
    /// no decompression, no body limit, no deadline. For callers who build requests
    /// themselves; [`request`](Self::request) gives all of those. On a route with a weight
    /// budget ([`HttpBudget`](crate::HttpBudget)) it takes a weight of 1, waiting for one
    /// without a deadline; [`RequestBuilder::weight`](crate::RequestBuilder::weight) sets
    /// another. As with every request, a 429 or 418 through a pool's member cools it.
    pub async fn send_request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ProxyError> {
        let (target, checked) = match Target::of_url(request.uri(), ConnectionKind::Http) {
            Ok((target, _)) => (Some(target), Ok(())),
            Err(e) => (None, Err(e)),
        };
        let routes = self.routes.load();
        let inner = routes.route_of_uri(request.uri());
        let sent_to = Sent::new(inner.route.clone(), target);
        let sent = async {
            checked?;
            let mut turn = Turn::new(inner, 1, None, request);
            loop {
                let (client, mut request) = turn.next().await?;
                let capture = inner.capture(&mut request);
                let sent = send(client, request, capture)
                    .await
                    .map_err(Failed::of_hyper);
                if let Ok(response) = &sent {
                    member_answered(response);
                }
                if let Some(done) = turn.finish(sent) {
                    return done;
                }
            }
        };
        sent_to.attach(sent.await)
    }

    /// Sends a request (made by [`RequestBuilder::build`](crate::RequestBuilder::build),
    /// or by hand), as reqwest's `Client::execute`.
    pub async fn execute(&self, request: Request) -> Result<Response, ProxyError> {
        // A deadline too far to be written as an instant (`Duration::MAX`) is none.
        let deadline = request
            .timeout()
            .copied()
            .or(self.options.timeout)
            .and_then(|t| Instant::now().checked_add(t));
        // Only a deadline needs to know the phase a new connection is in.
        let trace = deadline.map(|_| Arc::new(Trace::default()));
        self.execute_traced(request, deadline, trace).await
    }

    /// [`execute`](Self::execute), tracing the phases of the connection it opens, if it
    /// opens one, in `trace` (for a deadline's error, and `proxy-check --probe`).
    pub(crate) async fn execute_traced(
        &self,
        request: Request,
        deadline: Option<Instant>,
        trace: Option<Arc<Trace>>,
    ) -> Result<Response, ProxyError> {
        let routes = self.routes.load();
        let inner = routes.route_of(request.url().host_str());
        let weight = request.weight();
        let (request, url, target) = match self.hyper_request(request) {
            Ok(made) => made,
            Err(e) => return Err(inner.route.attach(e, None)),
        };
        let sent_to = Sent::new(inner.route.clone(), Some(target));
        let mut turn = Turn::new(inner, weight, deadline, request);
        let mut trace = trace;
        let response = loop {
            let (client, request) = match turn.next().await {
                Ok(next) => next,
                Err(e) => break Err(e),
            };
            let sent = Self::exchange(inner, client, request, deadline, trace.clone()).await;
            if let Some(done) = turn.finish(sent) {
                break done;
            }
            // Another attempt traces its own phases: a deadline that runs out in it is
            // never named after the failed connection of the one before.
            trace = trace.map(|_| Arc::new(Trace::default()));
        };
        let (head, body) = sent_to.attach(response)?.into_parts();
        let body = BoundedBody::new(body, self.options.max_body_bytes);
        Ok(Response::new(head, url, body, deadline, sent_to))
    }

    /// The request sent by `client` and its response head, the body decoded per the
    /// crate's features, within `deadline`, the connection's phases traced in `trace`.
    async fn exchange(
        inner: &Inner,
        client: &HyperClient,
        mut request: http::Request<Full<Bytes>>,
        deadline: Option<Instant>,
        trace: Option<Arc<Trace>>,
    ) -> Result<http::Response<body::ResponseBody>, Failed> {
        let capture = inner.capture(&mut request);
        let head = request.method() == http::Method::HEAD;
        let exchange = async {
            let response = send(client, request, capture)
                .await
                .map_err(Failed::of_hyper)?;
            Ok::<_, Failed>(body::decoded(response, head)?)
        };
        // Each case awaits its own future, so that the common one (no deadline, nothing
        // traced) carries nothing of the others.
        let response = match (deadline, &trace) {
            (None, None) => exchange.await,
            (None, Some(trace)) => REQUEST_TRACE.scope(trace.clone(), exchange).await,
            (Some(deadline), None) => within_deadline(deadline, None, exchange).await,
            (Some(deadline), Some(trace)) => {
                let traced = REQUEST_TRACE.scope(trace.clone(), exchange);
                within_deadline(deadline, Some(trace), traced).await
            }
        }?;
        member_answered(&response);
        Ok(response)
    }
}

/// The route's member learns how the exchange answered `response` (a 429 or 418 cools
/// it).
fn member_answered<B>(response: &http::Response<B>) {
    if let Some(tag) = response.extensions().get::<MemberTag>() {
        tag.answered(response.status(), response.headers());
    }
}

/// hyper-util's `request`, telling the record of the connection pool which connection the
/// request was handed, when `capture` is there, as soon as it is (before its answer, so
/// that a reload or a cooling from then on can retire the connection: over HTTP/2,
/// other requests may share it meanwhile).
async fn send(
    client: &HyperClient,
    request: http::Request<Full<Bytes>>,
    capture: Option<CaptureConnection>,
) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
    let Some(capture) = capture else {
        return client.request(request).await;
    };
    let mut sending = std::pin::pin!(client.request(request));
    let mut watch = capture.clone();
    let handed = std::pin::pin!(async move {
        let _ = watch.wait_for_connection_metadata().await;
    });
    let sent = match futures_util::future::select(sending.as_mut(), handed).await {
        futures_util::future::Either::Left((sent, _)) => Some(sent),
        futures_util::future::Either::Right(((), _)) => None,
    };
    let tag = capture
        .connection_metadata()
        .as_ref()
        .and_then(|connected| {
            let mut extensions = http::Extensions::new();
            connected.get_extras(&mut extensions);
            extensions.remove::<MemberTag>()
        });
    if let Some(tag) = tag {
        tag.handed(&capture);
    }
    match sent {
        Some(sent) => sent,
        None => sending.await,
    }
}

impl Routes {
    /// The route of a request to `uri`, whose host an `http::Uri` gives as written: put in
    /// `url`'s form only when a client routes by host.
    fn route_of_uri(&self, uri: &http::Uri) -> &Inner {
        if self.by_host.is_none() {
            return &self.inner;
        }
        let host = uri.host().and_then(url_form);
        self.route_of(host.as_deref())
    }

    /// The route of a request to `host` (in `url`'s form).
    fn route_of(&self, host: Option<&str>) -> &Inner {
        let by_host = match &self.by_host {
            None => return &self.inner,
            Some(by_host) => by_host,
        };
        host.and_then(|host| by_host.index.exchange_for(host))
            .and_then(|id| by_host.exchanges.get(id))
            .unwrap_or(&self.inner)
    }
}

impl ByHost {
    fn new(
        index: HostIndex,
        exchanges: impl IntoIterator<Item = (ExchangeId, HttpClient)>,
    ) -> Self {
        let exchanges = exchanges
            .into_iter()
            .map(|(id, client)| (id, client.inner()))
            .collect();
        Self { index, exchanges }
    }
}

impl Inner {
    /// `route` with its connection pool (one per member, on a pool of several with weight
    /// budgets).
    pub(crate) fn new(route: Route, options: HttpOptions) -> Arc<Self> {
        let members = Self::per_member(&route).map(|n| {
            (0..n)
                .map(|i| Pooled::new(route.pinned(i), options))
                .collect()
        });
        Arc::new(Inner {
            client: Pooled::new(route.clone(), options),
            members,
            records: route.is_pool(),
            route,
        })
    }

    /// `route`, which replaces this one's route in a reload, with the connection pools
    /// whose connections may go on through it
    /// ([`Route::keeps_connections_into`]): the route's pool, and each member's that
    /// stays (of the same settings); a route without pools per member whose first member
    /// had one (a budget turned off, or one member left) takes that member's. Their new connections are made
    /// through `route` from now on; the rest get new pools. Requests under way keep this
    /// one.
    pub(crate) fn next(&self, route: Route, options: HttpOptions) -> Arc<Self> {
        if !self.route.keeps_connections_into(&route) {
            return Self::new(route, options);
        }
        // Each member's pool goes to one member of the same settings (a route may list
        // a member twice).
        let mut left: Vec<(usize, &Pooled)> = self.members.iter().flatten().enumerate().collect();
        let mut take = |member: Option<&PoolMember>, onto: Route| {
            let same = left
                .iter()
                .position(|(i, _)| member.is_some() && self.route.member(*i) == member)?;
            Some(left.swap_remove(same).1.onto(onto))
        };
        let members: Option<Box<[Pooled]>> = Self::per_member(&route).map(|n| {
            (0..n)
                .map(|j| {
                    let pinned = route.pinned(j);
                    take(route.member(j), pinned.clone())
                        .unwrap_or_else(|| Pooled::new(pinned, options))
                })
                .collect()
        });
        // Without pools per member, the route's pool is the first member's, when it had
        // one (a budget turned off keeps its connections): it is the pool whose
        // connections go on through the route in the largest number.
        let client = match members {
            None => take(route.member(0), route.clone()),
            Some(_) => None,
        }
        .unwrap_or_else(|| self.client.onto(route.clone()));
        Arc::new(Inner {
            client,
            members,
            records: self.records || route.is_pool(),
            route,
        })
    }

    /// Which connection `request` is handed, for the record of its connection pool
    /// ([`records`](Self::records); elsewhere there is nothing to retire, and it saves
    /// the cost).
    fn capture(&self, request: &mut http::Request<Full<Bytes>>) -> Option<CaptureConnection> {
        self.records
            .then(|| hyper_util::client::legacy::connect::capture_connection(request))
    }

    /// How many members get a connection pool of their own: those of a pool of several
    /// with weight budgets.
    fn per_member(route: &Route) -> Option<usize> {
        route
            .weights()
            .filter(|_| route.is_pool())
            .map(|weights| weights.len())
    }

    /// The route it sends through.
    pub(crate) fn route(&self) -> &Route {
        &self.route
    }
}

/// One request's way through its route's budgets ([`Weights::admit`]), when the route
/// has them: the client to send it with (the admitted member's), then what the answer
/// says. A request known to be unsent (its member could not connect) gives its weight
/// back. When that was the member's failure and the member had no connection open (so
/// the request was sure to need a new one, and a copy was kept), the request is admitted
/// again, through a member it has not tried. A request to a member with connections open
/// is not copied for that: the copy (its headers) cost 1 to 2% of a request's throughput,
/// for the rare member that fails a new connection while its others live; that request
/// fails with the member's connect error, unsent, and the member is benched. Without
/// budgets, the route's client and the answer as it came.
struct Turn<'a> {
    inner: &'a Inner,
    weight: u32,
    deadline: Option<Instant>,
    /// The request, until it is sent; after, a copy when another member may be tried.
    request: Option<http::Request<Full<Bytes>>>,
    ticket: Option<Ticket>,
    /// The members tried.
    tried: Vec<usize>,
}

impl<'a> Turn<'a> {
    fn new(
        inner: &'a Inner,
        weight: u32,
        deadline: Option<Instant>,
        request: http::Request<Full<Bytes>>,
    ) -> Self {
        Self {
            inner,
            weight,
            deadline,
            request: Some(request),
            ticket: None,
            tried: Vec::new(),
        }
    }

    /// The client to send the request with, and the request; an error when no exit has
    /// room in time (`RateLimited`).
    async fn next(&mut self) -> Result<(&'a HyperClient, http::Request<Full<Bytes>>), ProxyError> {
        let inner = self.inner;
        let request = self.request.take().ok_or_else(|| {
            ProxyError::new(K::InvalidRequest).detail("the request was sent already")
        })?;
        let Some(weights) = inner.route.weights() else {
            return Ok((&inner.client.hyper, request));
        };
        let tried = &self.tried;
        let order = || {
            let mut order = inner.route.exit_order();
            order.retain(|i| !tried.contains(i));
            order
        };
        let ticket = weights.admit(self.weight, self.deadline, order).await?;
        let exit = ticket.exit();
        let client = inner
            .members
            .as_ref()
            .map_or(&inner.client.hyper, |m| &m[exit].hyper);
        self.tried.push(exit);
        if inner.members.is_some()
            && self.tried.len() < weights.len()
            && inner.route.open_connections(exit) == 0
        {
            self.request = Some(copy_request(&request));
        }
        self.ticket = Some(ticket);
        Ok((client, request))
    }

    /// What the request's exit learns from `sent`; `None` when it is to be sent again
    /// (its member failed to connect and another may be tried).
    fn finish<T>(
        &mut self,
        sent: Result<http::Response<T>, Failed>,
    ) -> Option<Result<http::Response<T>, ProxyError>> {
        let Some(ticket) = self.ticket.take() else {
            return Some(sent.map_err(|f| f.error));
        };
        match sent {
            Ok(response) => {
                ticket.answered(response.status(), response.headers());
                Some(Ok(response))
            }
            Err(Failed {
                error,
                unsent: true,
            }) => {
                ticket.give_back();
                let members_fault = is_member_failure(&error) || cannot_carry(&error);
                if members_fault && self.request.is_some() {
                    return None;
                }
                Some(Err(error))
            }
            // Sent, perhaps: the ticket dropped counts its weight.
            Err(Failed { error, .. }) => {
                drop(ticket);
                Some(Err(error))
            }
        }
    }
}

/// A copy of a request not yet sent (its extensions are empty).
fn copy_request(request: &http::Request<Full<Bytes>>) -> http::Request<Full<Bytes>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    copy
}

/// `exchange` within `deadline`; when it runs out, a timeout naming the phase `trace`
/// says the request was in (waiting for the response head when it says none).
async fn within_deadline<T, E: From<ProxyError>>(
    deadline: Instant,
    trace: Option<&Trace>,
    exchange: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => {
            let phase = trace.and_then(Trace::current);
            Err(ProxyError::new(K::Timeout(phase.unwrap_or(Phase::ResponseHead))).into())
        }
    }
}

/// A request that failed, and whether it is known that nothing of it was sent: only
/// when hyper-util says its connection could not be made (a request's deadline running
/// out while a connection is made is not known to be unsent: another connection may have
/// carried it meanwhile).
struct Failed {
    error: ProxyError,
    unsent: bool,
}

impl Failed {
    fn of_hyper(e: hyper_util::client::legacy::Error) -> Self {
        Self {
            unsent: e.is_connect(),
            error: hyper_error(e),
        }
    }
}

impl From<ProxyError> for Failed {
    fn from(error: ProxyError) -> Self {
        Self {
            error,
            unsent: false,
        }
    }
}

/// hyper-util's error as ours: the connector's own error when it is one (hyper wraps it).
fn hyper_error(e: hyper_util::client::legacy::Error) -> ProxyError {
    find_in_chain(&e).unwrap_or_else(|| ProxyError::new(K::Http).source(e))
}

impl HttpClient {
    /// The request as hyper sends it, checked: an `http(s)://` URL without user
    /// information, its target (host and port) and the URI hyper is given both taken from
    /// the `Url`; the client's default headers added where the request has none of that
    /// name, and `Accept-Encoding` (the codings this build decodes) unless it has one.
    /// With the URL (its fragment, never sent, left out) and its target, for the response
    /// and for messages.
    fn hyper_request(
        &self,
        request: Request,
    ) -> Result<(http::Request<Full<Bytes>>, Url, Target), ProxyError> {
        let (target, _) = Target::of_request_url(request.url())?;
        let uri = hyper_uri(request.url(), &target, request.method())?;
        let (method, mut url, mut headers, body, version) = request.into_sendable();
        if url.fragment().is_some() {
            url.set_fragment(None);
        }
        if let Some(defaults) = &self.default_headers {
            for (name, value) in defaults.iter() {
                if !headers.contains_key(name) {
                    headers.insert(name, value.clone());
                }
            }
        }
        if let Some(accept) = body::accept_encoding()
            && !headers.contains_key(http::header::ACCEPT_ENCODING)
        {
            headers.insert(http::header::ACCEPT_ENCODING, accept.clone());
        }
        let body = body
            .map(super::request::Body::into_bytes)
            .unwrap_or_default();
        let mut built = http::Request::new(Full::new(body));
        *built.method_mut() = method;
        *built.uri_mut() = uri;
        *built.headers_mut() = headers;
        *built.version_mut() = version;
        Ok((built, url, target))
    }
}

/// The URI hyper is given for `url`: its scheme, host, port, path and query as `url`
/// serialized them (one copy, nothing formatted), so a default port is left out, as
/// reqwest and browsers leave it out of `Host` and HTTP/2's `:authority` (and out of
/// hyper-util's pool key, so a URL with and one without `:443` share connections). Never
/// a fragment; never user information (refused before). A name with a trailing dot is
/// sent without it, as the target dialed and checked by TLS has it. A `CONNECT` request
/// names its target `host:port`, as its request line must.
fn hyper_uri(url: &Url, target: &Target, method: &http::Method) -> Result<http::Uri, ProxyError> {
    use url::Position as P;
    let sent = if method == http::Method::CONNECT {
        let path_and_query = &url[P::BeforePath..P::AfterQuery];
        http::Uri::try_from(format!("{}://{target}{path_and_query}", url.scheme()))
    } else if let Some(host) = url.host_str().and_then(|h| h.strip_suffix('.')) {
        http::Uri::try_from(format!(
            "{}{host}{}",
            &url[..P::BeforeHost],
            &url[P::AfterHost..P::AfterQuery]
        ))
    } else {
        http::Uri::try_from(&url[..P::AfterQuery])
    };
    sent.map_err(|e| {
        ProxyError::new(K::InvalidTarget)
            .detail("the URL cannot be sent as an HTTP request target")
            .source(e)
    })
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn uri(url: &str, method: Method) -> String {
        let url = Url::parse(url).unwrap();
        let (target, _) = Target::of_request_url(&url).unwrap();
        hyper_uri(&url, &target, &method).unwrap().to_string()
    }

    #[test]
    fn the_uri_is_the_url_s_own_form_without_a_trailing_dot_and_with_a_port_for_connect() {
        assert_eq!(
            uri("https://API.example.com/v3/depth?limit=5#x", Method::GET),
            "https://api.example.com/v3/depth?limit=5"
        );
        assert_eq!(
            uri("https://api.example.com:443/", Method::GET),
            "https://api.example.com/",
            "a default port, written or not, is left out"
        );
        assert_eq!(
            uri("http://[::1]:8080/a", Method::POST),
            "http://[::1]:8080/a"
        );
        assert_eq!(
            uri("https://api.example.com./v3?q=1", Method::GET),
            "https://api.example.com/v3?q=1"
        );
        assert_eq!(
            uri("https://api.example.com.:8443/v3", Method::GET),
            "https://api.example.com:8443/v3"
        );
        let connect = uri("https://api.example.com/", Method::CONNECT);
        assert_eq!(connect, "https://api.example.com:443/");
        let connect = uri("http://api.example.com./", Method::CONNECT);
        assert_eq!(connect, "http://api.example.com:80/");
    }
}
