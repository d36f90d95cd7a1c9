//! A route's members (one proxy, or a pool of them, `direct://` allowed as a member), their
//! passive health, and the choice of the member a new connection goes through.
//!
//! Owns the rules of a pool: a member that fails is benched with exponential backoff (1 s
//! doubling to 60 s, with jitter) and a success clears it; a member answered with 429 or
//! 418 cools for `Retry-After` and new connections prefer the others; when every member is
//! benched, the one whose bench ends first is tried. It never picks "no member", and never
//! invents a direct connection: `direct://` is taken only where the settings list it.
//! Counters and timings go through the `metrics` facade, to handles made once per member.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use hyper_util::client::legacy::connect::CaptureConnection;
use metrics::{Counter, Gauge, Histogram, Label};
use tokio::time::Instant;

use super::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::{ProxyEndpoint, Strategy};

/// The first bench of a failing member.
const BENCH_FIRST: Duration = Duration::from_secs(1);
/// The longest bench.
const BENCH_MAX: Duration = Duration::from_secs(60);
/// How long a member answered with 429 or 418 cools without `Retry-After`.
pub(crate) const COOL_DEFAULT: Duration = Duration::from_secs(60);

/// How a member connects.
pub(crate) enum Way {
    /// Straight to the target (a `direct://` member).
    Direct,
    /// Through this proxy.
    Proxy(ProxyEndpoint),
}

/// One member of a route.
pub(crate) struct Member {
    pub(crate) way: Way,
    /// The member as errors, logs and metrics show it: the redacted URL, or `direct`.
    pub(crate) shown: String,
    meters: Meters,
}

/// A member's metric handles, made once (with the recorder in force then).
struct Meters {
    ok: Counter,
    failed: Vec<(&'static str, Counter)>,
    phases: [(Phase, Histogram); 5],
}

/// The `error_kind` label of every failure counted.
const ERROR_KINDS: [&str; 9] = [
    "proxy_unreachable",
    "timeout",
    "auth_required",
    "auth_failed",
    "refused",
    "target_unreachable",
    "protocol",
    "tls",
    "other",
];

/// What a member's record says now.
#[derive(Default)]
struct Health {
    /// Failures since the last success.
    failures: u32,
    benched_until: Option<Instant>,
    cooling_until: Option<Instant>,
    /// Whether its authentication failure was logged (once per member).
    auth_logged: bool,
    /// The pooled HTTP connections made through it, to retire when it cools.
    connections: Vec<(Weak<()>, CaptureConnection)>,
}

/// The members of one route and their health.
pub(crate) struct Pool {
    members: Vec<Member>,
    strategy: Strategy,
    next: AtomicUsize,
    health: Mutex<Vec<Health>>,
    benched: Gauge,
    cooling: Gauge,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field(
                "members",
                &self.members.iter().map(|m| &m.shown).collect::<Vec<_>>(),
            )
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A route of `members` (never empty), for `exchange`'s traffic of `kind` (labels of
    /// its metrics).
    pub(crate) fn new(members: Vec<Way>, strategy: Strategy, exchange: &str, kind: &str) -> Self {
        let route = [
            Label::new("exchange", exchange.to_owned()),
            Label::new("kind", kind.to_owned()),
        ];
        let members: Vec<Member> = members
            .into_iter()
            .map(|way| {
                let shown = match &way {
                    Way::Direct => "direct".to_owned(),
                    Way::Proxy(endpoint) => endpoint.to_string(),
                };
                let mut labels = route.to_vec();
                labels.push(Label::new("member", shown.clone()));
                let with = |extra: &[(&'static str, &'static str)]| {
                    let mut l = labels.clone();
                    l.extend(extra.iter().map(|(k, v)| Label::new(*k, *v)));
                    l
                };
                let phase = |p: Phase| {
                    let h = metrics::histogram!(
                        "proxy_connect_phase_seconds",
                        with(&[("phase", phase_label(p))])
                    );
                    (p, h)
                };
                let failed = ERROR_KINDS
                    .iter()
                    .map(|kind| {
                        let labels = with(&[("outcome", "error"), ("error_kind", kind)]);
                        (
                            *kind,
                            metrics::counter!("proxy_connect_attempts_total", labels),
                        )
                    })
                    .collect();
                let meters = Meters {
                    ok: metrics::counter!(
                        "proxy_connect_attempts_total",
                        with(&[("outcome", "ok")])
                    ),
                    failed,
                    phases: [
                        phase(Phase::Resolve),
                        phase(Phase::Connect),
                        phase(Phase::ProxyTls),
                        phase(Phase::ProxyHandshake),
                        phase(Phase::Tls),
                    ],
                };
                Member { way, shown, meters }
            })
            .collect();
        let health = Mutex::new(members.iter().map(|_| Health::default()).collect());
        Self {
            benched: metrics::gauge!("proxy_members_benched", route.to_vec()),
            cooling: metrics::gauge!("proxy_members_cooling", route.to_vec()),
            members,
            strategy,
            next: AtomicUsize::new(0),
            health,
        }
    }

    /// The members, in the settings' order.
    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    /// Whether the route has one member (a route that behaves as a plain proxy does).
    pub(crate) fn is_single(&self) -> bool {
        self.members.len() == 1
    }

    fn health(&self) -> MutexGuard<'_, Vec<Health>> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The members to try for a new connection, best first: the healthy ones in the
    /// strategy's order, then the cooling ones (soonest cool first); none benched, unless
    /// every member is, when the one whose bench ends first is the only candidate.
    pub(crate) fn candidates(&self) -> Vec<usize> {
        if self.is_single() {
            // A route of one member (every route without `urls`) has no choice to make.
            return vec![0];
        }
        let now = Instant::now();
        let health = self.health();
        let n = self.members.len();
        let start = match self.strategy {
            Strategy::Failover => 0,
            Strategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        let order = (0..n).map(|i| (start + i) % n);
        let benched = |i: usize| health[i].benched_until.is_some_and(|t| t > now);
        let cooling = |i: usize| health[i].cooling_until.is_some_and(|t| t > now);
        let mut out: Vec<usize> = order
            .clone()
            .filter(|&i| !benched(i) && !cooling(i))
            .collect();
        let mut cool: Vec<usize> = order.filter(|&i| !benched(i) && cooling(i)).collect();
        cool.sort_by_key(|&i| health[i].cooling_until);
        out.extend(cool);
        if out.is_empty() {
            let soonest = (0..n).min_by_key(|&i| health[i].benched_until).unwrap_or(0);
            out.push(soonest);
        }
        out
    }

    /// A connection through member `i` was established.
    pub(crate) fn succeeded(&self, i: usize) {
        self.members[i].meters.ok.increment(1);
        let mut health = self.health();
        let h = &mut health[i];
        if h.failures == 0 && h.benched_until.is_none() {
            return; // healthy already: nothing changes
        }
        h.failures = 0;
        h.benched_until = None;
        self.update_gauges(&health);
    }

    /// A connection through member `i` failed with `error`: the member is benched.
    pub(crate) fn failed(&self, i: usize, error: &ProxyError) {
        let member = &self.members[i];
        let kind = error_label(error.kind());
        if let Some((_, counter)) = member.meters.failed.iter().find(|(k, _)| *k == kind) {
            counter.increment(1);
        }
        let mut health = self.health();
        let h = &mut health[i];
        h.failures = h.failures.saturating_add(1);
        let doubling = BENCH_FIRST.saturating_mul(1 << (h.failures - 1).min(6));
        let bench = doubling.min(BENCH_MAX).mul_f64(0.8 + 0.4 * fastrand::f64());
        h.benched_until = Some(Instant::now() + bench);
        let auth = matches!(error.kind(), K::AuthFailed | K::AuthRequired);
        if auth && !h.auth_logged {
            h.auth_logged = true;
            tracing::error!(member = %member.shown, error = %error, "a pool member refused the credentials: check the settings");
        }
        tracing::debug!(member = %member.shown, ?bench, "pool member benched");
        self.update_gauges(&health);
    }

    /// Member `i` was answered 429 or 418: it cools until `until`, and its pooled
    /// connections are retired (not handed out again; those in use finish).
    pub(crate) fn cool(&self, i: usize, until: Instant) {
        let mut health = self.health();
        let h = &mut health[i];
        h.cooling_until = Some(h.cooling_until.map_or(until, |t| t.max(until)));
        for (alive, capture) in h.connections.drain(..) {
            if alive.strong_count() > 0
                && let Some(connected) = capture.connection_metadata().as_ref()
            {
                connected.poison();
            }
        }
        tracing::debug!(member = %self.members[i].shown, "pool member cooling");
        self.update_gauges(&health);
    }

    /// Remembers an HTTP connection made through member `i`, so that cooling can retire
    /// it. Called once per connection (`MemberTag::tracked`).
    pub(crate) fn track(&self, i: usize, alive: &Weak<()>, capture: CaptureConnection) {
        let mut health = self.health();
        let connections = &mut health[i].connections;
        connections.retain(|(a, _)| a.strong_count() > 0);
        connections.push((alive.clone(), capture));
    }

    /// How long phase `phase` of a connection through member `i` took.
    pub(crate) fn record_phase(&self, i: usize, phase: Phase, took: Duration) {
        if let Some((_, h)) = self.members[i]
            .meters
            .phases
            .iter()
            .find(|(p, _)| *p == phase)
        {
            h.record(took.as_secs_f64());
        }
    }

    fn update_gauges(&self, health: &[Health]) {
        let now = Instant::now();
        let count = |f: &dyn Fn(&Health) -> bool| health.iter().filter(|h| f(h)).count() as f64;
        self.benched
            .set(count(&|h| h.benched_until.is_some_and(|t| t > now)));
        self.cooling
            .set(count(&|h| h.cooling_until.is_some_and(|t| t > now)));
    }
}

/// A connection's member, as its hyper connection carries it (`Connected::extra`) into
/// every response it gives.
#[derive(Clone)]
pub(crate) struct MemberTag {
    pub(crate) pool: Weak<Pool>,
    pub(crate) index: usize,
    /// Alive while the connection is.
    pub(crate) alive: Weak<()>,
    /// Whether the pool has the connection's record (see [`Pool::track`]).
    pub(crate) tracked: Arc<std::sync::atomic::AtomicBool>,
}

fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Resolve => "resolve",
        Phase::Connect => "connect",
        Phase::ProxyTls => "proxy_tls",
        Phase::ProxyHandshake => "proxy_handshake",
        Phase::Tls => "tls",
        _ => "other",
    }
}

fn error_label(kind: &K) -> &'static str {
    match kind {
        K::ProxyUnreachable => "proxy_unreachable",
        K::Timeout(_) => "timeout",
        K::AuthRequired => "auth_required",
        K::AuthFailed => "auth_failed",
        K::Refused(_) => "refused",
        K::TargetUnreachable(_) => "target_unreachable",
        K::Protocol => "protocol",
        K::Tls => "tls",
        _ => "other",
    }
}

/// The deadline of one member's attempt: an even share of what is left of the route's,
/// so that a member that never answers leaves time for the others.
pub(crate) fn member_deadline(route: Instant, members_left: usize) -> Instant {
    let now = Instant::now();
    let left = route.saturating_duration_since(now);
    now + left / u32::try_from(members_left.max(1)).unwrap_or(u32::MAX)
}

/// Whether `error` is the member's (another member may do better), rather than the
/// target's or the request's (every member would fail the same way).
pub(crate) fn is_member_failure(error: &ProxyError) -> bool {
    match error.kind() {
        K::ProxyUnreachable
        | K::AuthRequired
        | K::AuthFailed
        | K::Refused(_)
        | K::TargetUnreachable(Some(_))
        | K::Protocol => true,
        K::Timeout(phase) => matches!(
            phase,
            Phase::Resolve | Phase::Connect | Phase::ProxyTls | Phase::ProxyHandshake
        ),
        _ => false,
    }
}

/// A connection made through a member: the tag for hyper, and the token whose life is
/// the connection's.
pub(crate) fn tag(pool: &Arc<Pool>, index: usize) -> (MemberTag, Arc<()>) {
    let alive = Arc::new(());
    let tag = MemberTag {
        pool: Arc::downgrade(pool),
        index,
        alive: Arc::downgrade(&alive),
        tracked: Arc::default(),
    };
    (tag, alive)
}
