//! The members of a route and the choice of the member a new connection goes through:
//! their passive health, cooling after rate limits, and the rules that decide both.
//!
//! Owns the rules of a pool: a member that fails is benched with exponential backoff (1 s
//! doubling to 60 s, with jitter) and a success clears it; a member answered with 429 or
//! 418 cools ([`super::cooling`]) and new connections prefer the others; when every member
//! is benched, the one whose bench ends first is tried. It never picks "no member", and
//! never invents a direct connection: `direct://` is taken only where the settings list it.
//! Counters and timings go through the `metrics` facade ([`super::member`]).
//!
//! Also the record of an HTTP client's pooled connections through a pool of several
//! ([`Lineage`]): which member each went through, so that a member that cools or leaves
//! the route in a reload has its connections retired, and a reload that keeps the
//! client's connection pool can point its connections at the new route's pool.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::Context;
use std::time::Duration;

use hyper_util::client::legacy::connect::CaptureConnection;
use metrics::Gauge;
use tokio::time::Instant;

use super::cooling;
use super::member::{Member, route_labels};
use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::member::PoolMember;
use crate::model::route::Strategy;
use crate::transport::tls::{self, TlsBase};

/// The first bench of a failing member.
const BENCH_FIRST: Duration = Duration::from_secs(1);
/// The longest bench.
const BENCH_MAX: Duration = Duration::from_secs(60);

/// What a member's record says now.
#[derive(Default)]
struct Health {
    /// Failures since the last success.
    failures: u32,
    benched_until: Option<Instant>,
    cooling_until: Option<Instant>,
    /// Whether its authentication failure was logged (once per member).
    auth_logged: bool,
}

/// The members of one route and their health.
pub(crate) struct Pool {
    /// Itself, for the timers that recount the gauges when a bench or cooling ends.
    me: Weak<Pool>,
    key: RouteKey,
    kind: ConnectionKind,
    members: Vec<Member>,
    strategy: Strategy,
    next: AtomicUsize,
    /// The connections open through each member.
    open: Vec<AtomicUsize>,
    health: Mutex<Vec<Health>>,
    /// Members benched, and cooling: made at the route's first connection.
    gauges: OnceLock<[Gauge; 2]>,
    /// The one timer that sets the gauges again when the next bench or cooling ends:
    /// when it wakes, and the task to stop when an earlier end replaces it.
    timer: Mutex<Option<(Instant, tokio::task::AbortHandle)>>,
    /// The connection pools of HTTP clients whose new connections go through this pool
    /// ([`Lineage`]): a member that cools retires its connections in each.
    lineages: Mutex<Vec<Weak<Lineage>>>,
}

/// The record of the pooled connections of one HTTP client's connection pool (one
/// hyper-util client), which outlives the routes it connects through: a reload that
/// keeps the pool points it at the new route's pool ([`follow`](Self::follow)). Each
/// connection through a pool of several members is recorded when it is made, learns
/// which connection it is to hyper-util when a request is handed it, and answers to the
/// pool in force: its member cools there, and a member that cools or leaves the route
/// has its connections retired.
pub(crate) struct Lineage {
    state: Mutex<LineageState>,
}

struct LineageState {
    /// The pool in force.
    pool: Weak<Pool>,
    /// The connections made for the client, from their making to their end.
    connections: Vec<Tracked>,
}

/// One pooled HTTP connection in a lineage's record.
struct Tracked {
    member: Arc<PoolMember>,
    /// Alive while the connection is.
    alive: Weak<()>,
    /// Which connection it is to hyper-util, from the first request handed it on: what
    /// retires it.
    capture: Option<CaptureConnection>,
    /// What closes it while no request was handed it.
    closer: Arc<Retire>,
    /// Retired before a request was handed it: retired as soon as one is.
    retired: bool,
}

impl Tracked {
    /// Not handed out again by hyper's pool; a request on it finishes. One that no
    /// request was handed yet is closed if none is in a while ([`Retire`]), and retired
    /// as soon as one is. `false` when the record has nothing more to do.
    fn retire(&mut self) -> bool {
        match &self.capture {
            Some(capture) => {
                if let Some(connected) = capture.connection_metadata().as_ref() {
                    connected.poison();
                }
                false
            }
            None => {
                self.retired = true;
                self.closer.close_when_idle();
                true
            }
        }
    }
}

impl Lineage {
    /// A record following no pool yet.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(LineageState {
                pool: Weak::new(),
                connections: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, LineageState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `pool` in force (none: the route is not through a pool), and retires the
    /// connections of the members it does not have (removed, or changed: a new password
    /// is another member). Called before the client's connector is pointed at the route
    /// of `pool`, so that a connection the old route makes after it is checked against
    /// `pool` too ([`join`](Self::join)).
    pub(crate) fn follow(self: &Arc<Self>, pool: Option<&Arc<Pool>>) {
        // Known to `pool` first, so that a member of it that cools from now on retires
        // this record's connections too.
        if let Some(pool) = pool {
            let mut lineages = pool.lineages.lock().unwrap_or_else(PoisonError::into_inner);
            lineages.retain(|l| l.strong_count() > 0);
            lineages.push(Arc::downgrade(self));
        }
        let mut state = self.state();
        state.pool = pool.map_or_else(Weak::new, Arc::downgrade);
        state.connections.retain_mut(|t| {
            if t.alive.strong_count() == 0 {
                return false;
            }
            if pool.is_some_and(|pool| pool.position(&t.member).is_some()) {
                return true;
            }
            t.retire()
        });
    }

    /// Records a connection the client's connector made, tagged `tag`, closed by
    /// `closer` while no request is handed it. When its member is not in the pool in
    /// force (a reload came while it was being made), it is retired from its birth: the
    /// request it was made for may use it, and nothing after.
    fn join(&self, tag: &MemberTag, closer: Arc<Retire>) {
        let mut state = self.state();
        let stays = state
            .pool
            .upgrade()
            .is_some_and(|pool| pool.position(&tag.member).is_some());
        if !stays {
            closer.born_retired.store(true, Ordering::Release);
        }
        state.connections.retain(|t| t.alive.strong_count() > 0);
        state.connections.push(Tracked {
            member: tag.member.clone(),
            alive: tag.alive.clone(),
            capture: None,
            closer,
            retired: !stays,
        });
    }

    /// The connection alive while `alive` was handed a request for the first time:
    /// `capture` names it to hyper-util, and retires it now if it was retired before.
    fn handed(&self, alive: &Weak<()>, capture: CaptureConnection) {
        let mut state = self.state();
        let Some(at) = state
            .connections
            .iter()
            .position(|t| Weak::ptr_eq(&t.alive, alive))
        else {
            return;
        };
        let tracked = &mut state.connections[at];
        tracked.capture = Some(capture);
        if tracked.retired {
            tracked.retire();
            state.connections.swap_remove(at);
        }
    }

    /// The pool in force and the place in it of `tag`'s member; `None` when the member
    /// has left the route (or the route is gone).
    fn in_force(&self, tag: &MemberTag) -> Option<(Arc<Pool>, usize)> {
        let pool = self.state().pool.upgrade()?;
        let i = if Weak::ptr_eq(&tag.pool, &Arc::downgrade(&pool)) {
            tag.index
        } else {
            pool.position(&tag.member)?
        };
        Some((pool, i))
    }

    /// Retires the connections through `member` of `pool`, when `pool` is in force.
    fn retire(&self, pool: &Pool, member: &PoolMember) {
        let mut state = self.state();
        if !std::ptr::eq(state.pool.as_ptr(), pool) {
            return;
        }
        state
            .connections
            .retain_mut(|t| t.alive.strong_count() > 0 && (*t.member != *member || t.retire()));
    }
}

/// How long a retired connection that no request was handed is left open: the request
/// it was made for, if any, is handed it within microseconds of its making; one
/// hyper-util finished in the background and pooled is closed after this.
const IDLE_CLOSE_AFTER: Duration = Duration::from_secs(2);

/// What ends a pooled connection that is retired before any request was handed it (one
/// hyper-util finished in the background, or whose request went elsewhere): its reader
/// sees the connection end, so hyper-util drops it. It waits until the connection is
/// [`IDLE_CLOSE_AFTER`] old: hyper reads a new connection before it writes the first
/// request, so an end seen then would fail the request the connection was made for.
/// A connection retired while it was being made is instead poisoned from its birth
/// (`born_retired`; HTTP/1.1 only): its own request may use it, and nothing after. An
/// HTTP/2 connection writes its preface at once, so it counts as used from the start:
/// it is retired when a request is handed it.
pub(crate) struct Retire {
    state: AtomicU8,
    /// Poisoned when hyper-util takes it (`Connection::connected`).
    pub(crate) born_retired: AtomicBool,
    reader: futures_util::task::AtomicWaker,
    made: Instant,
}

/// Nothing written yet.
const FRESH: u8 = 0;
/// A request was written.
const USED: u8 = 1;
/// Retired while fresh: the reader is to see the end.
const CLOSING: u8 = 2;
/// The reader saw the end.
const CLOSED: u8 = 3;

impl Retire {
    /// The closer of a connection made now.
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(FRESH),
            born_retired: AtomicBool::new(false),
            reader: futures_util::task::AtomicWaker::new(),
            made: Instant::now(),
        }
    }

    /// Closes the connection if it carried nothing yet, once it is [`IDLE_CLOSE_AFTER`]
    /// old (at once if it is; outside a Tokio runtime, only if it is).
    fn close_when_idle(self: &Arc<Self>) {
        let at = self.made + IDLE_CLOSE_AFTER;
        if Instant::now() >= at {
            self.close_if_unused();
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let me = Arc::downgrade(self);
            runtime.spawn(async move {
                tokio::time::sleep_until(at).await;
                if let Some(me) = me.upgrade() {
                    me.close_if_unused();
                }
            });
        }
    }

    /// Closes the connection if it carried nothing yet.
    fn close_if_unused(&self) {
        let closing = self
            .state
            .compare_exchange(FRESH, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if closing {
            self.reader.wake();
        }
    }

    /// A write is about to go out: the connection carries a request. (A request handed
    /// the connection as it is closed is usually not written: hyper reads first, sees
    /// the end, and hands the request back, which hyper-util sends again on another
    /// connection, as it does for any pooled connection found closed. Should the write
    /// come first, the request goes on, and the connection is retired when the record
    /// learns of it.)
    pub(crate) fn writing(&self) {
        if self.state.load(Ordering::Acquire) == USED {
            return;
        }
        for from in [FRESH, CLOSING] {
            let _ = self
                .state
                .compare_exchange(from, USED, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Whether the reader (of `cx`) is to see the connection's end now.
    pub(crate) fn at_end(&self, cx: &Context<'_>) -> bool {
        self.reader.register(cx.waker());
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            CLOSING => self
                .state
                .compare_exchange(CLOSING, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            _ => false,
        }
    }
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
    /// The route of `members` (never empty) of `key`'s traffic of `kind`, each member's
    /// TLS made from `tls`.
    pub(crate) fn new(
        members: Vec<PoolMember>,
        strategy: Strategy,
        key: RouteKey,
        kind: ConnectionKind,
        tls: &TlsBase,
    ) -> Arc<Self> {
        let shown = super::member::shown(&members);
        let members: Vec<Member> = members
            .into_iter()
            .zip(shown)
            .map(|(config, shown)| Member::new(config, shown, &key, kind, tls.exit()))
            .collect();
        let health = Mutex::new(members.iter().map(|_| Health::default()).collect());
        let open = members.iter().map(|_| AtomicUsize::new(0)).collect();
        Arc::new_cyclic(|me| Self {
            lineages: Mutex::new(Vec::new()),
            me: me.clone(),
            key,
            kind,
            members,
            strategy,
            next: AtomicUsize::new(0),
            open,
            health,
            gauges: OnceLock::new(),
            timer: Mutex::new(None),
        })
    }

    /// Makes the route's metric handles (its gauges, every member's counters and
    /// histograms), from the recorder in force now: called at every new connection, it
    /// makes them at the first.
    pub(crate) fn meter(&self) {
        self.gauges();
        for member in &self.members {
            member.meter();
        }
    }

    fn gauges(&self) -> &[Gauge; 2] {
        self.gauges.get_or_init(|| {
            let labels = route_labels(&self.key, self.kind);
            [
                metrics::gauge!("proxy_members_benched", labels.clone()),
                metrics::gauge!("proxy_members_cooling", labels),
            ]
        })
    }

    /// Whose route it is.
    pub(crate) fn key(&self) -> &RouteKey {
        &self.key
    }

    /// The kind of traffic it carries.
    pub(crate) fn kind(&self) -> ConnectionKind {
        self.kind
    }

    /// The members, in the settings' order.
    pub(crate) fn members(&self) -> &[Member] {
        &self.members
    }

    /// The place of `member` (of the same settings) among the members (the first, when
    /// the settings list it twice).
    fn position(&self, member: &PoolMember) -> Option<usize> {
        self.members.iter().position(|m| *m.config == *member)
    }

    /// Whether the route has one member (a route that behaves as a plain proxy does).
    pub(crate) fn is_single(&self) -> bool {
        self.members.len() == 1
    }

    /// How many connections are open through member `i` (counted on pools of several).
    pub(crate) fn open_connections(&self, i: usize) -> usize {
        self.open[i].load(Ordering::Relaxed)
    }

    /// Whether member `i` is benched now.
    pub(crate) fn is_benched(&self, i: usize) -> bool {
        let now = Instant::now();
        self.health()[i].benched_until.is_some_and(|t| t > now)
    }

    /// When member `i`'s cooling ends, if it cools.
    #[cfg(test)]
    pub(crate) fn cooling_until(&self, i: usize) -> Option<Instant> {
        self.health()[i].cooling_until
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
        let mut order: Vec<usize> = (0..n).collect();
        if self.strategy == Strategy::RoundRobin {
            order.rotate_left(self.next.fetch_add(1, Ordering::Relaxed) % n);
        }
        let benched = |i: usize| health[i].benched_until.is_some_and(|t| t > now);
        let cooling = |i: usize| health[i].cooling_until.is_some_and(|t| t > now);
        let (mut out, mut cool): (Vec<usize>, Vec<usize>) = order
            .into_iter()
            .filter(|&i| !benched(i))
            .partition(|&i| !cooling(i));
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
        self.members[i].count_success();
        let mut health = self.health();
        let h = &mut health[i];
        // A member is benched exactly while it has failures since its last success.
        if h.failures == 0 {
            return; // healthy already: nothing changes
        }
        h.failures = 0;
        h.benched_until = None;
        self.update_gauges(&health);
    }

    /// A connection through member `i` failed with `error`, the member's fault: the member
    /// is benched. The one member of a route is not: it is tried whatever its health.
    pub(crate) fn failed(&self, i: usize, error: &ProxyError) {
        let member = &self.members[i];
        member.count_failure(error.kind());
        let mut health = self.health();
        let h = &mut health[i];
        let auth = matches!(error.kind(), K::AuthFailed | K::AuthRequired);
        if auth && !h.auth_logged {
            h.auth_logged = true;
            tracing::error!(member = %member.shown, error = %error, "a pool member refused the credentials: check the settings");
        }
        if self.is_single() {
            return;
        }
        h.failures = h.failures.saturating_add(1);
        let doubling = BENCH_FIRST.saturating_mul(1 << (h.failures - 1).min(6));
        let bench = doubling.min(BENCH_MAX).mul_f64(0.8 + 0.4 * fastrand::f64());
        let until = Instant::now() + bench;
        h.benched_until = Some(until);
        tracing::debug!(member = %member.shown, ?bench, "pool member benched");
        self.update_gauges(&health);
        self.recount_at(until);
    }

    /// A connection attempt through member `i` failed with `error`, which is not the
    /// member's (the target's, or the request's): counted, nothing more.
    pub(crate) fn counted_failure(&self, i: usize, error: &ProxyError) {
        self.members[i].count_failure(error.kind());
    }

    /// Member `i` was answered 429 or 418: it cools until `until`, and its pooled
    /// connections are retired (not handed out again; those in use finish).
    pub(crate) fn cool(&self, i: usize, until: Instant) {
        let mut health = self.health();
        let h = &mut health[i];
        h.cooling_until = Some(h.cooling_until.map_or(until, |t| t.max(until)));
        tracing::debug!(member = %self.members[i].shown, "pool member cooling");
        self.update_gauges(&health);
        drop(health);
        let lineages: Vec<Arc<Lineage>> = self
            .lineages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for lineage in lineages {
            lineage.retire(self, &self.members[i].config);
        }
        self.recount_at(until);
    }

    /// Sets the gauges again at `when`, when a bench or a cooling ends (nothing else would
    /// change them then), and at every end after it. One timer per pool: an end after the
    /// one it waits for is left to it; an earlier one replaces it. Outside a runtime, the
    /// next change sets them.
    fn recount_at(&self, when: Instant) {
        let mut timer = self.timer.lock().unwrap_or_else(PoisonError::into_inner);
        if timer.as_ref().is_some_and(|(at, _)| *at <= when) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.me.clone();
        let task = runtime.spawn(async move {
            let mut at = when;
            loop {
                tokio::time::sleep_until(at).await;
                let Some(pool) = me.upgrade() else {
                    return;
                };
                let next = pool.recount();
                let mut timer = pool.timer.lock().unwrap_or_else(PoisonError::into_inner);
                match next {
                    Some(next) => {
                        if let Some((wakes, _)) = timer.as_mut() {
                            *wakes = next;
                        }
                        at = next;
                    }
                    None => {
                        *timer = None;
                        return;
                    }
                }
            }
        });
        if let Some((_, replaced)) = timer.replace((when, task.abort_handle())) {
            replaced.abort();
        }
    }

    /// Sets the gauges from the members' records now: when the next bench or cooling
    /// ends, if any does.
    fn recount(&self) -> Option<Instant> {
        let health = self.health();
        self.update_gauges(&health);
        let now = Instant::now();
        health
            .iter()
            .flat_map(|h| [h.benched_until, h.cooling_until])
            .flatten()
            .filter(|&end| end > now)
            .min()
    }

    /// Takes over what `before` (the pool of the route this one replaces) knew of the
    /// members that stay: one of the same settings keeps its failures, bench and cooling;
    /// one that changed but leaves by the same exit (`same_exit`) keeps its cooling.
    pub(crate) fn inherit(
        &self,
        before: &Pool,
        same_exit: impl Fn(&PoolMember, &PoolMember) -> bool,
    ) {
        let was = before.health();
        let mut health = self.health();
        for (member, now) in self.members.iter().zip(health.iter_mut()) {
            let same = before
                .members
                .iter()
                .position(|m| m.config == member.config);
            if let Some(j) = same {
                now.failures = was[j].failures;
                now.benched_until = was[j].benched_until;
                now.cooling_until = was[j].cooling_until;
                now.auth_logged = was[j].auth_logged;
            } else if let Some(j) = before
                .members
                .iter()
                .position(|m| same_exit(&m.config, &member.config))
            {
                now.cooling_until = was[j].cooling_until;
            }
        }
        drop(was);
        self.update_gauges(&health);
        let ends = health
            .iter()
            .flat_map(|h| [h.benched_until, h.cooling_until])
            .flatten()
            .min();
        drop(health);
        if let Some(end) = ends {
            self.recount_at(end);
        }
    }

    /// How long phase `phase` of a connection through member `i` took.
    pub(crate) fn record_phase(&self, i: usize, phase: Phase, took: Duration) {
        self.members[i].time_phase(phase, took);
    }

    fn update_gauges(&self, health: &[Health]) {
        let now = Instant::now();
        let count = |f: &dyn Fn(&Health) -> bool| health.iter().filter(|h| f(h)).count() as f64;
        let [benched, cooling] = self.gauges();
        benched.set(count(&|h| h.benched_until.is_some_and(|t| t > now)));
        cooling.set(count(&|h| h.cooling_until.is_some_and(|t| t > now)));
    }
}

/// A connection's member, as its hyper connection carries it (`Connected::extra`) into
/// every response it gives: only for a pool of several members, the routes that cool a
/// member or retire its connections.
#[derive(Clone)]
pub(crate) struct MemberTag {
    /// The pool it was made through, and the member's place there.
    pool: Weak<Pool>,
    index: usize,
    member: Arc<PoolMember>,
    /// The record of the HTTP client's pool that holds the connection, if it was made
    /// for one of this crate's clients: where it finds the pool in force, which may
    /// have replaced the one it was made through.
    lineage: Weak<Lineage>,
    /// Alive while the connection is.
    alive: Weak<()>,
    /// Whether its lineage knows which connection it is already (see [`handed`](Self::handed)).
    known: Arc<AtomicBool>,
}

impl MemberTag {
    /// A request was handed the connection, which `capture` names to hyper-util: at the
    /// first, the lineage learns it, so that it can retire the connection.
    pub(crate) fn handed(&self, capture: &CaptureConnection) {
        if self.known.load(Ordering::Relaxed) || self.known.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(lineage) = self.lineage.upgrade() {
            lineage.handed(&self.alive, capture.clone());
        }
    }

    /// A response came on the connection: the member cools, in the pool in force, when
    /// the status says so ([`cooling`]).
    pub(crate) fn answered(&self, status: http::StatusCode, headers: &http::HeaderMap) {
        let Some(wait) = cooling::cooling(status, headers) else {
            return;
        };
        // A member that has left the route has nothing left to cool (its connections
        // are retired).
        let in_force = match self.lineage.upgrade() {
            Some(lineage) => lineage.in_force(self),
            None => self.pool.upgrade().map(|pool| (pool, self.index)),
        };
        let Some((pool, index)) = in_force else {
            return;
        };
        let member = &pool.members()[index].shown;
        let status = status.as_u16();
        if pool.is_single() {
            // Nowhere else to go: the answer is the caller's to act on.
            tracing::debug!(status, ?wait, %member, "rate limited");
            return;
        }
        tracing::warn!(status, ?wait, %member, "rate limited: the pool member cools");
        pool.cool(index, Instant::now() + wait);
    }
}

/// The member a connection went through, held by the connection: the tag its hyper
/// connection carries, and the token whose life is the connection's.
pub(crate) struct Through {
    tag: MemberTag,
    _alive: Arc<()>,
}

impl Through {
    /// A connection made through member `index` of `pool`.
    pub(crate) fn new(pool: &Arc<Pool>, index: usize) -> Self {
        pool.open[index].fetch_add(1, Ordering::Relaxed);
        let alive = Arc::new(());
        let tag = MemberTag {
            pool: Arc::downgrade(pool),
            index,
            member: pool.members[index].config.clone(),
            lineage: Weak::new(),
            alive: Arc::downgrade(&alive),
            known: Arc::default(),
        };
        Self { tag, _alive: alive }
    }

    /// The tag.
    pub(crate) fn tag(&self) -> &MemberTag {
        &self.tag
    }

    /// The connection goes into the connection pool of `lineage`'s client: recorded
    /// there, closed by `closer` if it is retired before it carries anything.
    pub(crate) fn join(&mut self, lineage: &Arc<Lineage>, closer: Arc<Retire>) {
        self.tag.lineage = Arc::downgrade(lineage);
        lineage.join(&self.tag, closer);
    }
}

impl Drop for Through {
    fn drop(&mut self) {
        // Counted open in the pool it was made through (a pool that takes the route over
        // in a reload counts its own connections only).
        if let Some(pool) = self.tag.pool.upgrade() {
            pool.open[self.tag.index].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The least time a member is given, when the route's deadline leaves that much: under
/// it, a member that answers in a few hundred milliseconds (TLS through a proxy far away)
/// would fail for want of time, however many members are left.
const MEMBER_FLOOR: Duration = Duration::from_secs(2);

/// The deadline of one member's attempt: an even share of what is left of the route's,
/// so that a member that never answers leaves time for the others, but at least
/// [`MEMBER_FLOOR`] of it (or all that is left, when less).
pub(crate) fn member_deadline(route: Instant, members_left: usize) -> Instant {
    let now = Instant::now();
    let left = route.saturating_duration_since(now);
    let share = left / u32::try_from(members_left.max(1)).unwrap_or(u32::MAX);
    now + share.max(left.min(MEMBER_FLOOR))
}

/// Whether `error` says the member cannot carry this target (SOCKS4 and an IPv6 address, a
/// name too long for SOCKS, a source address of a family the target has no address of):
/// another member may carry it, and the member is no worse for other targets, so it is
/// passed over, not benched.
pub(crate) fn cannot_carry(error: &ProxyError) -> bool {
    match error.kind() {
        K::InvalidTarget => error.phase() == Some(Phase::ProxyHandshake),
        // Without a phase: no address fitted the source's family, nothing was tried.
        K::SourceUnavailable => error.phase().is_none(),
        _ => false,
    }
}

/// Whether `error` is the member's (another member may do better), rather than the
/// target's or the request's (every member would fail the same way). Everything that
/// fails on the way through the member is its own: reaching it, its handshake, TLS with
/// an `https://` proxy, and TLS with the target through it (a tunnel that stalls or is
/// reset, an exit filtered by name, the member's share of the deadline running out) but
/// for the target's certificate failing verification, which every exit would see.
pub(crate) fn is_member_failure(error: &ProxyError) -> bool {
    match error.kind() {
        K::ProxyUnreachable
        | K::SourceUnavailable
        | K::AuthRequired
        | K::AuthFailed
        | K::Refused(_)
        | K::TargetUnreachable(Some(_))
        | K::Protocol => true,
        K::Timeout(phase) => matches!(
            phase,
            Phase::Resolve | Phase::Connect | Phase::ProxyTls | Phase::ProxyHandshake | Phase::Tls
        ),
        K::Tls => match error.phase() {
            Some(Phase::ProxyTls) => true,
            Some(Phase::Tls) => !tls::is_certificate_failure(error),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;
    use crate::error::Refusal;
    use crate::model::exchange::ExchangeId;

    fn url(url: &str) -> PoolMember {
        crate::model::proxy_url::ProxyUrl::parse(url)
            .unwrap()
            .into()
    }

    fn binance() -> RouteKey {
        RouteKey::Exchange(ExchangeId::new("binance").unwrap())
    }

    fn tls() -> TlsBase {
        let config = crate::transport::tls::TlsRoots::empty()
            .client_config()
            .unwrap();
        TlsBase::new(config, true)
    }

    /// A pool of `n` SOCKS5 members (ports 1081, 1082, ...), its metrics recorded by a
    /// recorder of its own.
    fn new_pool(n: u16, strategy: Strategy) -> (Arc<Pool>, Snapshotter) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let members = (1..=n)
            .map(|i| url(&format!("socks5h://127.0.0.1:{}", 1080 + i)))
            .collect();
        let pool = Pool::new(members, strategy, binance(), ConnectionKind::Http, &tls());
        // The handles are made at the route's first connection: here, under the recorder.
        metrics::with_local_recorder(&recorder, || pool.meter());
        (pool, snapshotter)
    }

    /// What was recorded since the last reading (the recorder drains counters and
    /// gauges): each metric's name and labels (sorted; `exchange` and `kind`, the same on
    /// every metric of a pool, left out) with its value, a histogram's being its count.
    /// Counters at 0 and empty histograms are left out; gauges are not.
    fn readings(snapshotter: &Snapshotter) -> BTreeMap<(String, Vec<(String, String)>), f64> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| {
                let value = match value {
                    DebugValue::Counter(0) => return None,
                    DebugValue::Counter(n) => n as f64,
                    DebugValue::Gauge(g) => g.into_inner(),
                    DebugValue::Histogram(h) if h.is_empty() => return None,
                    DebugValue::Histogram(h) => h.len() as f64,
                };
                let (_, key) = key.into_parts();
                let mut labels: Vec<(String, String)> = key
                    .labels()
                    .filter(|l| !matches!(l.key(), "exchange" | "kind"))
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                labels.sort();
                Some(((key.name().to_owned(), labels), value))
            })
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        v.sort();
        v
    }

    /// The gauges of members benched and cooling, as last set. A reading takes what was
    /// recorded since the last one (the recorder drains its values).
    fn gauges(snapshotter: &Snapshotter) -> (f64, f64) {
        let now = readings(snapshotter);
        let gauge = |name: &str| now.get(&(name.to_owned(), vec![])).copied();
        (
            gauge("proxy_members_benched").expect("a benched gauge"),
            gauge("proxy_members_cooling").expect("a cooling gauge"),
        )
    }

    fn error(kind: K) -> ProxyError {
        ProxyError::new(kind)
    }

    #[test]
    fn round_robin_starts_each_new_connection_at_the_next_member() {
        let (pool, _) = new_pool(3, Strategy::RoundRobin);
        let starts: Vec<Vec<usize>> = (0..4).map(|_| pool.candidates()).collect();
        assert_eq!(
            starts,
            [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
        let (failover, _) = new_pool(3, Strategy::Failover);
        for _ in 0..3 {
            assert_eq!(failover.candidates(), [0, 1, 2]);
        }
        let (single, _) = new_pool(1, Strategy::RoundRobin);
        assert_eq!(single.candidates(), [0]);
        assert_eq!(single.candidates(), [0]);
    }

    #[tokio::test(start_paused = true)]
    async fn benched_members_are_left_out_and_cooling_ones_come_last_soonest_first() {
        let (pool, _) = new_pool(4, Strategy::Failover);
        let now = Instant::now();
        {
            let mut health = pool.health();
            health[0].cooling_until = Some(now + Duration::from_secs(20));
            health[1].benched_until = Some(now + Duration::from_secs(5));
            health[1].failures = 1;
            health[2].cooling_until = Some(now + Duration::from_secs(10));
            // Benched and cooling: benched wins, it is left out.
            health[3].benched_until = Some(now + Duration::from_secs(5));
            health[3].failures = 1;
            health[3].cooling_until = Some(now + Duration::from_secs(1));
        }
        assert_eq!(pool.candidates(), [2, 0]);
        // A bench or a cooling that ends now has ended.
        {
            let mut health = pool.health();
            health[0].cooling_until = Some(now);
            health[1].benched_until = Some(now);
        }
        assert_eq!(pool.candidates(), [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_member_is_benched_the_one_whose_bench_ends_first_is_tried() {
        let (pool, _) = new_pool(3, Strategy::RoundRobin);
        let now = Instant::now();
        {
            let mut health = pool.health();
            for (i, secs) in [(0, 30), (1, 4), (2, 9)] {
                health[i].benched_until = Some(now + Duration::from_secs(secs));
                health[i].failures = 1;
            }
        }
        assert_eq!(pool.candidates(), [1]);
        assert_eq!(pool.candidates(), [1], "whatever the round-robin turn");
    }

    /// How long member `i` is benched for, from now.
    fn bench_of(pool: &Pool, i: usize) -> Duration {
        let until = pool.health()[i].benched_until.expect("benched");
        until.duration_since(Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_member_is_benched_from_1_s_doubling_to_60_s_with_jitter() {
        let (pool, _) = new_pool(2, Strategy::Failover);
        let refused = error(K::ProxyUnreachable);
        // The bench is the doubled base times a jitter in [0.8, 1.2).
        for (failures, base) in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
            .into_iter()
            .enumerate()
        {
            pool.failed(0, &refused);
            let bench = bench_of(&pool, 0).as_secs_f64();
            assert!(
                bench >= 0.8 * base && bench < 1.2 * base,
                "after {} failures: {bench} s",
                failures + 1
            );
            assert_eq!(pool.candidates(), [1]);
        }
        // The jitter spreads the benches of members that failed together.
        let benches: Vec<u128> = (0..20)
            .map(|_| {
                pool.succeeded(1);
                pool.failed(1, &refused);
                bench_of(&pool, 1).as_millis()
            })
            .collect();
        assert!(
            benches.iter().all(|&ms| (800..1200).contains(&ms)),
            "{benches:?}"
        );
        assert!(
            benches.iter().any(|&ms| ms != benches[0]),
            "no jitter: {benches:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_bench_and_the_backoff() {
        let (pool, metrics) = new_pool(2, Strategy::Failover);
        let refused = error(K::Refused(Refusal::Socks5(5)));
        pool.failed(0, &refused);
        pool.failed(0, &refused);
        assert_eq!(pool.candidates(), [1]);
        pool.succeeded(0);
        assert_eq!(pool.candidates(), [0, 1]);
        assert_eq!(gauges(&metrics), (0.0, 0.0));
        // The backoff starts again from the first bench.
        pool.failed(0, &refused);
        assert!(bench_of(&pool, 0) < Duration::from_millis(1200));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gauges_count_members_benched_and_cooling_now() {
        let (pool, metrics) = new_pool(3, Strategy::Failover);
        let now = Instant::now();
        pool.failed(0, &error(K::Protocol));
        pool.cool(1, now + Duration::from_secs(5));
        assert_eq!(gauges(&metrics), (1.0, 1.0));
        // A bench and a cooling that end now are over.
        pool.health()[0].benched_until = Some(now);
        pool.health()[1].cooling_until = Some(now);
        pool.update_gauges(&pool.health());
        assert_eq!(gauges(&metrics), (0.0, 0.0));
        // Those that end later are not, until they do: the gauges are set at each change.
        pool.health()[0].benched_until = Some(now + Duration::from_secs(10));
        pool.update_gauges(&pool.health());
        assert_eq!(gauges(&metrics), (1.0, 0.0));
        tokio::time::advance(Duration::from_secs(20)).await;
        pool.failed(2, &error(K::Protocol));
        pool.cool(2, Instant::now() + Duration::from_secs(5));
        assert_eq!(gauges(&metrics), (1.0, 1.0));
    }

    /// Lets the pool's timers run, the clock stopped.
    async fn run_timers() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_gauges_drop_a_bench_or_a_cooling_when_it_ends() {
        let (pool, metrics) = new_pool(3, Strategy::Failover);
        pool.failed(0, &error(K::Protocol));
        pool.cool(1, Instant::now() + Duration::from_secs(5));
        assert_eq!(gauges(&metrics), (1.0, 1.0));
        // The first bench is at most 1.2 s: over by 1.3 s, with nothing else happening.
        tokio::time::advance(Duration::from_millis(1300)).await;
        run_timers().await;
        assert_eq!(gauges(&metrics), (0.0, 1.0));
        tokio::time::advance(Duration::from_secs(4)).await;
        run_timers().await;
        assert_eq!(gauges(&metrics), (0.0, 0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cooling_that_ends_exactly_now_is_over_and_the_timer_stops() {
        let (pool, metrics) = new_pool(2, Strategy::Failover);
        pool.cool(0, Instant::now() + Duration::from_secs(5));
        assert_eq!(gauges(&metrics), (0.0, 1.0));
        tokio::time::advance(Duration::from_secs(5)).await;
        run_timers().await;
        assert_eq!(gauges(&metrics), (0.0, 0.0));
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        assert_eq!(alive, 0, "the timer has nothing left to wait for");
    }

    #[tokio::test(start_paused = true)]
    async fn one_timer_per_pool_whatever_the_number_of_benches_and_coolings() {
        let (pool, metrics) = new_pool(2, Strategy::Failover);
        // A cooling of a day, renewed a thousand times: one timer waits for it.
        for _ in 0..1000 {
            pool.cool(0, Instant::now() + Duration::from_secs(86_400));
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        // A bench that ends sooner replaces the timer, which then goes on to the cooling.
        pool.failed(1, &error(K::Protocol));
        run_timers().await; // the replaced timer ends
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        assert_eq!(tasks, 1, "one timer");
        assert_eq!(gauges(&metrics), (1.0, 1.0));
        tokio::time::advance(Duration::from_millis(1300)).await;
        run_timers().await;
        assert_eq!(gauges(&metrics), (0.0, 1.0));
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            1
        );
        tokio::time::advance(Duration::from_secs(86_400)).await;
        run_timers().await;
        assert_eq!(gauges(&metrics), (0.0, 0.0));
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            0,
            "done"
        );
    }

    /// The head of a response with `status` (and `Retry-After: 30`).
    fn head(status: u16) -> http::response::Parts {
        let response = http::Response::builder()
            .status(status)
            .header("retry-after", "30")
            .body(())
            .unwrap();
        response.into_parts().0
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_or_418_cools_a_pool_s_member_for_its_retry_after() {
        let (pool, _) = new_pool(2, Strategy::Failover);
        let through = Through::new(&pool, 1);
        through.tag().answered(head(200).status, &head(200).headers);
        assert_eq!(pool.health()[1].cooling_until, None);
        through.tag().answered(head(429).status, &head(429).headers);
        let until = pool.health()[1].cooling_until.expect("cooling");
        assert_eq!(until, Instant::now() + Duration::from_secs(30));
        assert_eq!(pool.candidates(), [0, 1], "the cooling member last");
        assert_eq!(
            pool.health()[0].cooling_until,
            None,
            "the other member is not"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_one_member_of_a_route_is_neither_benched_nor_cooled() {
        let (pool, metrics) = new_pool(1, Strategy::Failover);
        pool.failed(0, &error(K::ProxyUnreachable));
        Through::new(&pool, 0)
            .tag()
            .answered(head(429).status, &head(429).headers);
        let health = pool.health();
        assert_eq!(health[0].benched_until, None);
        assert_eq!(health[0].cooling_until, None);
        drop(health);
        // Its failure is counted; the gauges were never set (nothing is benched, ever).
        let now = readings(&metrics);
        let failed = labels(&[
            ("member", "socks5h://127.0.0.1:1081"),
            ("outcome", "error"),
            ("error_kind", "proxy_unreachable"),
        ]);
        assert_eq!(
            now.get(&("proxy_connect_attempts_total".to_owned(), failed)),
            Some(&1.0)
        );
        let gauge = |name: &str| now.get(&(name.to_owned(), vec![])).copied();
        assert_eq!(gauge("proxy_members_benched"), Some(0.0));
        assert_eq!(gauge("proxy_members_cooling"), Some(0.0));
    }

    #[test]
    fn the_handles_are_made_at_the_first_connection_not_when_the_route_is() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let pool = metrics::with_local_recorder(&recorder, || {
            Pool::new(
                vec![url("socks5h://127.0.0.1:1081")],
                Strategy::Failover,
                binance(),
                ConnectionKind::Http,
                &tls(),
            )
        });
        assert!(
            snapshotter.snapshot().into_vec().is_empty(),
            "no handle yet"
        );
        metrics::with_local_recorder(&recorder, || pool.meter());
        let made = snapshotter.snapshot().into_vec().len();
        // Two gauges, the `ok` counter, one per error label, one histogram per phase.
        assert_eq!(
            made,
            2 + 1 + K::METRIC_LABELS.len() + Phase::CONNECTION.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cooling_is_extended_never_shortened() {
        let (pool, _) = new_pool(2, Strategy::Failover);
        let now = Instant::now();
        pool.cool(0, now + Duration::from_secs(30));
        pool.cool(0, now + Duration::from_secs(2));
        assert_eq!(
            pool.health()[0].cooling_until,
            Some(now + Duration::from_secs(30))
        );
        pool.cool(0, now + Duration::from_secs(40));
        assert_eq!(
            pool.health()[0].cooling_until,
            Some(now + Duration::from_secs(40))
        );
    }

    #[test]
    fn the_connections_open_through_each_member_are_counted_until_they_close() {
        let (pool, _) = new_pool(2, Strategy::Failover);
        let a = Through::new(&pool, 1);
        let b = Through::new(&pool, 1);
        assert_eq!((pool.open_connections(0), pool.open_connections(1)), (0, 2));
        drop(a);
        assert_eq!(pool.open_connections(1), 1);
        drop(b);
        assert_eq!(pool.open_connections(1), 0);
    }

    fn capture() -> CaptureConnection {
        let mut request = http::Request::new(());
        hyper_util::client::legacy::connect::capture_connection(&mut request)
    }

    /// What `lineage` records: each connection's member, by its place in `pool`, and
    /// whether it waits to be retired when a request is handed it.
    fn recorded(lineage: &Lineage, pool: &Pool) -> Vec<(Option<usize>, bool)> {
        let state = lineage.state();
        state
            .connections
            .iter()
            .map(|t| (pool.position(&t.member), t.retired))
            .collect()
    }

    /// A connection through member `i` of `pool`, in the connection pool of `lineage`,
    /// and what closes it.
    fn joined(pool: &Arc<Pool>, i: usize, lineage: &Arc<Lineage>) -> (Through, Arc<Retire>) {
        let mut through = Through::new(pool, i);
        let closer = Arc::new(Retire::new());
        through.join(lineage, closer.clone());
        (through, closer)
    }

    /// Lets the tasks that are due run (the test's runtime has one thread).
    async fn settle() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    /// A request is handed the connection.
    fn handed(through: &Through) {
        through.tag().handed(&capture());
    }

    fn too_many(through: &Through) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "30".parse().unwrap());
        through
            .tag()
            .answered(http::StatusCode::TOO_MANY_REQUESTS, &headers);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_retired_before_it_carried_anything_ends_for_its_reader_once_old_enough() {
        struct Woken(AtomicUsize);
        impl futures_util::task::ArcWake for Woken {
            fn wake_by_ref(me: &Arc<Self>) {
                me.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let woken = Arc::new(Woken(AtomicUsize::new(0)));
        let waker = futures_util::task::waker(woken.clone());
        let cx = &Context::from_waker(&waker);
        // Retired just after it was made: its own request may be about to use it.
        let young = Arc::new(Retire::new());
        assert!(!young.at_end(cx));
        young.close_when_idle();
        assert!(!young.at_end(cx), "left open for its request");
        tokio::time::sleep(IDLE_CLOSE_AFTER - Duration::from_millis(1)).await;
        assert!(!young.at_end(cx));
        assert_eq!(woken.0.load(Ordering::Relaxed), 0);
        tokio::time::sleep(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(
            woken.0.load(Ordering::Relaxed),
            1,
            "the idle reader is woken"
        );
        assert!(young.at_end(cx), "no request came: closed");
        young.writing();
        assert!(young.at_end(cx), "and for good");
        // Older: closed at once.
        let old = Arc::new(Retire::new());
        tokio::time::sleep(IDLE_CLOSE_AFTER).await;
        old.close_when_idle();
        assert!(old.at_end(cx));
        // One that carried a request finishes it.
        let used = Arc::new(Retire::new());
        used.writing();
        tokio::time::sleep(IDLE_CLOSE_AFTER).await;
        used.close_when_idle();
        assert!(!used.at_end(cx), "a request on it finishes");
        // A request handed the connection just as it is retired goes on.
        let raced = Retire::new();
        raced.close_if_unused();
        raced.writing();
        assert!(!raced.at_end(cx));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_s_record_keeps_its_open_connections_and_a_cooling_retires_its_member_s() {
        let (pool, _) = new_pool(2, Strategy::Failover);
        let lineage = Lineage::new();
        lineage.follow(Some(&pool));
        let (known, _) = joined(&pool, 0, &lineage);
        let (fresh, fresh_closer) = joined(&pool, 0, &lineage);
        let (closed, _) = joined(&pool, 0, &lineage);
        let (other, other_closer) = joined(&pool, 1, &lineage);
        drop(closed);
        handed(&known);
        handed(&known);
        let (_later, _) = joined(&pool, 1, &lineage);
        assert_eq!(
            recorded(&lineage, &pool),
            [
                (Some(0), false),
                (Some(0), false),
                (Some(1), false),
                (Some(1), false)
            ],
            "the closed one is forgotten"
        );
        pool.cool(0, Instant::now() + Duration::from_secs(1));
        assert_eq!(
            recorded(&lineage, &pool),
            [(Some(0), true), (Some(1), false), (Some(1), false)],
            "the handed one retired; the fresh one waits to be handed a request"
        );
        let cx = &Context::from_waker(futures_util::task::noop_waker_ref());
        tokio::time::sleep(IDLE_CLOSE_AFTER).await;
        settle().await;
        assert!(fresh_closer.at_end(cx), "closed, as it carried nothing");
        assert!(!other_closer.at_end(cx), "another member's");
        handed(&fresh);
        assert_eq!(
            recorded(&lineage, &pool).len(),
            2,
            "retired when handed one"
        );
        drop(other);
    }

    #[test]
    fn a_client_s_pool_that_follows_a_new_route_retires_the_members_gone_and_answers_to_the_new_pool()
     {
        let (before, _) = new_pool(3, Strategy::Failover);
        let lineage = Lineage::new();
        lineage.follow(Some(&before));
        let [stays, gone, also_stays] = [0, 1, 2].map(|i| joined(&before, i, &lineage));
        handed(&stays.0);
        handed(&gone.0);
        // 1081 and 1083 stay (in another order); 1082 leaves; 1084 is new.
        let after = Pool::new(
            [1083, 1084, 1081]
                .map(|port| url(&format!("socks5h://127.0.0.1:{port}")))
                .to_vec(),
            Strategy::Failover,
            binance(),
            ConnectionKind::Http,
            &tls(),
        );
        lineage.follow(Some(&after));
        assert_eq!(
            recorded(&lineage, &after),
            [(Some(2), false), (Some(0), false)],
            "1082's handed connection is retired"
        );
        // One the old route makes after the swap, through the member gone, is poisoned from
        // its birth: its own request may use it, nothing after.
        let (late, late_closer) = joined(&before, 1, &lineage);
        assert_eq!(recorded(&lineage, &after)[2], (None, true));
        assert!(late_closer.born_retired.load(Ordering::Acquire));
        let cx = &Context::from_waker(futures_util::task::noop_waker_ref());
        assert!(!late_closer.at_end(cx), "not closed under its request");
        drop(late);
        let (stays_late, stays_late_closer) = joined(&before, 0, &lineage);
        assert!(!stays_late_closer.born_retired.load(Ordering::Acquire));
        drop(stays_late);
        // A 429 on a connection of the old pool cools its member in the pool in force.
        too_many(&also_stays.0);
        assert!(
            after.cooling_until(0).is_some(),
            "cools in the pool in force"
        );
        assert_eq!(
            before.cooling_until(2),
            None,
            "not in the one it was made through"
        );
        assert_eq!(
            recorded(&lineage, &after),
            [(Some(2), false), (Some(0), true)],
            "1083's connection retired (when a request is handed it)"
        );
        // One of a member gone cools nothing.
        too_many(&gone.0);
        assert_eq!(before.cooling_until(1), None);
        // Another client's pool still following the old route answers to it.
        let stayed = Lineage::new();
        stayed.follow(Some(&before));
        let (old, _) = joined(&before, 0, &stayed);
        too_many(&old);
        assert!(before.cooling_until(0).is_some());
        assert_eq!(after.cooling_until(2), None);
        drop((stays, gone, also_stays));
    }

    #[test]
    fn a_pool_knows_the_records_that_follow_it_and_forgets_those_gone() {
        let (pool, _) = new_pool(2, Strategy::Failover);
        let [first, second, gone] = [(); 3].map(|()| Lineage::new());
        for lineage in [&first, &second, &gone] {
            lineage.follow(Some(&pool));
        }
        drop(gone);
        let third = Lineage::new();
        third.follow(Some(&pool));
        assert_eq!(
            pool.lineages.lock().unwrap().len(),
            3,
            "the one gone is forgotten"
        );
        // A cooling reaches every record that follows the pool.
        let ((a, _), (b, _)) = (joined(&pool, 0, &first), joined(&pool, 0, &second));
        handed(&a);
        handed(&b);
        pool.cool(0, Instant::now() + Duration::from_secs(1));
        assert_eq!(recorded(&first, &pool), []);
        assert_eq!(recorded(&second, &pool), []);
    }

    #[test]
    fn a_member_listed_twice_cools_where_its_connection_was_made() {
        let twice = || url("socks5h://127.0.0.1:1081");
        let pool = Pool::new(
            vec![twice(), twice()],
            Strategy::Failover,
            binance(),
            ConnectionKind::Http,
            &tls(),
        );
        let lineage = Lineage::new();
        lineage.follow(Some(&pool));
        let (second, _) = joined(&pool, 1, &lineage);
        too_many(&second);
        assert_eq!(pool.cooling_until(0), None);
        assert!(pool.cooling_until(1).is_some());
        // Without a client's record (a connection of a connector of the caller's own), it
        // cools where it was made too.
        let alone = Through::new(&pool, 0);
        too_many(&alone);
        assert!(pool.cooling_until(0).is_some());
    }

    #[test]
    fn failures_are_counted_by_kind_and_phases_timed_by_name() {
        let (pool, metrics) = new_pool(2, Strategy::Failover);
        let kinds = [
            (K::ProxyUnreachable, "proxy_unreachable"),
            (K::Timeout(Phase::Connect), "timeout"),
            (K::AuthRequired, "auth_required"),
            (K::AuthFailed, "auth_failed"),
            (K::Refused(Refusal::Socks4(91)), "refused"),
            (K::TargetUnreachable(None), "target_unreachable"),
            (K::Protocol, "protocol"),
            (K::Tls, "tls"),
            (K::Http, "other"),
        ];
        for (kind, _) in &kinds {
            pool.failed(1, &error(kind.clone()));
        }
        pool.succeeded(0);
        pool.succeeded(0);
        let phases = [
            (Phase::Resolve, "resolve"),
            (Phase::Connect, "connect"),
            (Phase::ProxyTls, "proxy_tls"),
            (Phase::ProxyHandshake, "proxy_handshake"),
            (Phase::Tls, "tls"),
        ];
        for (phase, _) in phases {
            pool.record_phase(0, phase, Duration::from_millis(3));
        }
        // A phase a connection does not have is not recorded.
        pool.record_phase(0, Phase::ResponseBody, Duration::from_millis(3));

        let mut expected = BTreeMap::new();
        let attempts = "proxy_connect_attempts_total".to_owned();
        for (_, label) in kinds {
            let l = [
                ("member", "socks5h://127.0.0.1:1082"),
                ("outcome", "error"),
                ("error_kind", label),
            ];
            expected.insert((attempts.clone(), labels(&l)), 1.0);
        }
        let ok = [("member", "socks5h://127.0.0.1:1081"), ("outcome", "ok")];
        expected.insert((attempts, labels(&ok)), 2.0);
        for (_, label) in phases {
            let l = [("member", "socks5h://127.0.0.1:1081"), ("phase", label)];
            expected.insert(("proxy_connect_phase_seconds".to_owned(), labels(&l)), 1.0);
        }
        expected.insert(("proxy_members_benched".to_owned(), vec![]), 1.0);
        expected.insert(("proxy_members_cooling".to_owned(), vec![]), 0.0);
        assert_eq!(readings(&metrics), expected);
    }

    #[test]
    fn member_failures_are_the_proxy_s_not_the_target_s_or_the_request_s() {
        let member = [
            K::ProxyUnreachable,
            K::SourceUnavailable,
            K::AuthRequired,
            K::AuthFailed,
            K::Refused(Refusal::Socks5(2)),
            K::TargetUnreachable(Some(Refusal::Socks5(4))),
            K::Protocol,
            K::Timeout(Phase::Resolve),
            K::Timeout(Phase::Connect),
            K::Timeout(Phase::ProxyTls),
            K::Timeout(Phase::ProxyHandshake),
            K::Timeout(Phase::Tls),
        ];
        for kind in member {
            assert!(is_member_failure(&error(kind.clone())), "{kind:?}");
        }
        let not_member = [
            K::TargetUnreachable(None),
            K::TargetResolution,
            K::Tls,
            K::Timeout(Phase::WebSocketUpgrade),
            K::Timeout(Phase::ResponseHead),
            K::Http,
            K::InvalidTarget,
        ];
        for kind in not_member {
            assert!(!is_member_failure(&error(kind.clone())), "{kind:?}");
        }
    }

    #[test]
    fn a_target_the_member_s_protocol_cannot_carry_is_told_from_an_invalid_one() {
        let refused =
            ProxyError::new(K::InvalidTarget).detail("SOCKS4 carries only IPv4 addresses");
        assert!(cannot_carry(
            &refused.clone().in_phase(Phase::ProxyHandshake)
        ));
        // An invalid target (no phase: refused before any member), or another kind.
        assert!(!cannot_carry(&refused));
        assert!(!cannot_carry(
            &ProxyError::new(K::InvalidTarget).in_phase(Phase::Tls)
        ));
        assert!(!cannot_carry(
            &ProxyError::new(K::Protocol).in_phase(Phase::ProxyHandshake)
        ));
        assert!(
            !is_member_failure(&refused.in_phase(Phase::ProxyHandshake)),
            "never benched"
        );
        // A source address of a family the target has no address of: nothing was tried.
        let family =
            ProxyError::new(K::SourceUnavailable).detail("cannot reach IPv4 addresses only");
        assert!(cannot_carry(&family));
        // A source the system refused is the member's failure.
        let refused_source = family.in_phase(Phase::Connect);
        assert!(!cannot_carry(&refused_source));
        assert!(is_member_failure(&refused_source));
    }

    #[test]
    fn tls_is_the_member_s_but_for_the_target_s_certificate() {
        let tls = |phase| ProxyError::new(K::Tls).in_phase(phase);
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let certificate = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let alert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        // With the proxy: the member's, whatever the cause (its certificate included).
        assert!(is_member_failure(&tls(Phase::ProxyTls).source(certificate)));
        assert!(is_member_failure(&tls(Phase::ProxyTls)));
        // With the target through the member: the member's, but for a certificate that
        // failed verification.
        assert!(is_member_failure(&tls(Phase::Tls).source(reset)));
        assert!(is_member_failure(&tls(Phase::Tls).source(alert)));
        let certificate = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert!(!is_member_failure(&tls(Phase::Tls).source(certificate)));
        // A TLS failure of no known phase ends the attempt, as before.
        assert!(!is_member_failure(&ProxyError::new(K::Tls)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_s_deadline_is_its_even_share_of_what_is_left_but_2_s_at_least() {
        let now = Instant::now();
        let secs = |s: f64| Duration::from_secs_f64(s);
        let route = now + secs(9.0);
        assert_eq!(member_deadline(route, 3), now + secs(3.0));
        assert_eq!(member_deadline(route, 1), route);
        assert_eq!(member_deadline(route, 0), route, "never divided by zero");
        // Ten members and 5 s: each gets 2 s while that much is left, not 0.5 s.
        assert_eq!(member_deadline(now + secs(5.0), 10), now + secs(2.0));
        assert_eq!(member_deadline(now + secs(4.0), 2), now + secs(2.0));
        // Less than 2 s left: all of it.
        assert_eq!(member_deadline(now + secs(1.5), 4), now + secs(1.5));
        let past = now.checked_sub(Duration::from_secs(1)).unwrap();
        assert_eq!(member_deadline(past, 2), now, "a deadline past stays past");
    }

    #[test]
    fn debug_names_the_members_as_shown_and_the_strategy() {
        let pool = Pool::new(
            vec![
                url("direct://"),
                url("socks5h://trader:s3cret@127.0.0.1:1081"),
            ],
            Strategy::RoundRobin,
            binance(),
            ConnectionKind::Http,
            &tls(),
        );
        let shown = format!("{pool:?}");
        assert_eq!(
            shown,
            r#"Pool { members: ["direct", "socks5h://trader:***@127.0.0.1:1081"], strategy: RoundRobin, .. }"#
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pool_made_again_keeps_what_it_knew_of_the_members_that_stay() {
        let before = Pool::new(
            vec![
                url("socks5h://127.0.0.1:1081"),
                url("socks5h://desk-a:old@127.0.0.1:1082"),
                url("socks5h://127.0.0.1:1083"),
            ],
            Strategy::Failover,
            binance(),
            ConnectionKind::Http,
            &tls(),
        );
        let failure = ProxyError::new(K::Refused(Refusal::Socks5(5)));
        before.failed(0, &failure);
        before.failed(0, &failure);
        let cool = Instant::now() + Duration::from_secs(30);
        before.cool(1, cool);
        before.failed(1, &failure);
        before.failed(2, &failure);
        // 1081 stays as it was; 1082 has a new password; 1083 is gone; 1084 is new; the
        // order changes.
        let after = Pool::new(
            vec![
                url("socks5h://127.0.0.1:1084"),
                url("socks5h://desk-b:new@127.0.0.1:1082"),
                url("socks5h://127.0.0.1:1081"),
            ],
            Strategy::Failover,
            binance(),
            ConnectionKind::Http,
            &tls(),
        );
        let same_exit = |a: &PoolMember, b: &PoolMember| {
            a.url().endpoint().map(|e| e.port()) == b.url().endpoint().map(|e| e.port())
        };
        after.inherit(&before, same_exit);
        let (was, now) = (before.health(), after.health());
        assert_eq!(now[2].failures, 2, "the same member keeps its failures");
        assert_eq!(now[2].benched_until, was[0].benched_until);
        assert_eq!(
            now[1].cooling_until,
            Some(cool),
            "the same exit keeps its cooling"
        );
        assert_eq!(
            now[1].failures, 0,
            "new credentials: not benched for the old"
        );
        assert_eq!(now[1].benched_until, None);
        assert_eq!(
            (now[0].failures, now[0].cooling_until),
            (0, None),
            "new member"
        );
        drop((was, now));
        assert_eq!(
            after.candidates(),
            [0, 1],
            "1081 benched, 1082 cooling last"
        );
    }
}
