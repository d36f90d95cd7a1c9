//! The weight budget of a route's exits ([`HttpBudget`]): how much request weight each
//! exit has spent in the sliding window, which exit a request may take before it is sent,
//! and how long it must wait when none has enough left.
//!
//! The count of an exit is the weight of the requests answered in the last window, plus
//! the weight of those sent and not yet answered (they count until their answer, however
//! long it takes), plus what the exchange's header reports beyond that (another process
//! on the same IP). An answered request counts from the time of its answer: the exchange
//! counted it at some instant between the sending and the answer, so counting it from the
//! answer for a whole window never frees it before the exchange does. The header corrects
//! the count: the exchange's figure is the truth, ours fills in between answers.
//!
//! Only the monotonic clock is read, and the header is a count, not a time: the wall
//! clocks of this host and of the exchange play no part.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use metrics::{Counter, Gauge, Histogram, Label};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::cooling::cooling;
use super::lease::{Chore, Closed, LeaseBook};
use super::shared::{CoolListener, ExitKeys, LeaseReply, RETRY, Store};
use super::window::{Blocked, ExitWindow, SLOTS};
use crate::error::{Phase, ProxyError, ProxyErrorKind as K};
use crate::model::http_budget::HttpBudget;

/// The weight budgets of one route's exits, and how a request gets its turn.
pub(crate) struct Weights {
    budget: u32,
    window: Duration,
    header: Option<HeaderName>,
    exits: Vec<Exit>,
    /// The next request's number, in the order requests are let through (shared with the
    /// route this one replaced by a reload, when it kept its windows).
    seq: Arc<AtomicU64>,
    /// Whether an unreadable header value was logged (once per route).
    warned: AtomicBool,
    /// The route's labels.
    labels: Vec<Label>,
    refusals: OnceLock<Counter>,
    /// Itself, for the task that sets the gauges again as weight expires.
    me: Weak<Weights>,
    /// Whether that task was started (at the first gauges made).
    recount: OnceLock<()>,
    /// The store the budget is shared through, when the settings name one.
    shared: Option<Sharing>,
}

/// What a route whose budget is shared through a store adds.
struct Sharing {
    store: Arc<Store>,
    /// Wakes the task that calls the store (a request found no lease).
    wake: Notify,
    /// Wakes the requests that wait for a lease (the store answered).
    answered: Notify,
    /// Whether the task was started (at the first request).
    task: OnceLock<()>,
    /// How long requests waited for a lease, when they did.
    lease_waits: OnceLock<Histogram>,
}

/// An exit as a route's budget knows it: as shown (metrics, errors) and as the store
/// names it (every process using the same way out names it the same).
#[derive(Debug, Clone)]
pub(crate) struct ExitName {
    /// As shown, redacted.
    pub(crate) shown: String,
    /// The way out: the proxy's host and port, the source address, or `direct`.
    pub(crate) id: String,
}

/// The gauges of a quiet exit are set again at most this often (and once a slot, for
/// longer slots): weight expires without a request to tell it.
const RECOUNT_MIN: Duration = Duration::from_millis(250);

/// One exit of a route.
struct Exit {
    shown: String,
    /// As the store names it.
    id: String,
    /// Its window: the route a reload makes in place of this one takes it over.
    window: Arc<Mutex<ExitWindow>>,
    meters: OnceLock<ExitMeters>,
    /// Its leases of the shared budget, and its key in the store (when shared).
    book: Option<(Mutex<LeaseBook>, ExitKeys)>,
}

struct ExitMeters {
    used: Gauge,
    left: Gauge,
    waits: Histogram,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("budget", &self.budget)
            .field("window", &self.window)
            .field(
                "exits",
                &self.exits.iter().map(|e| &e.shown).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Weights {
    /// The budgets `budget` sets for the exits `exits` of `exchange`'s route labelled
    /// `labels`, shared with other processes through `store` when given; `None` when it
    /// sets no weight. An exit of `before` (the budgets of the route this one replaces) of
    /// the same name keeps its window, weight spent and in flight included, when both
    /// budgets are the same and kept in this process: a reload does not give an exit back
    /// the weight the exchange still counts.
    pub(crate) fn new(
        budget: &HttpBudget,
        exits: Vec<ExitName>,
        labels: Vec<Label>,
        store: Option<(&Arc<Store>, &str)>,
        before: Option<&Weights>,
    ) -> Option<Arc<Self>> {
        let (weight, window) = budget.weight_budget()?;
        let header = budget.used_weight_header().map(|h| h.name().clone());
        let before = before.filter(|b| {
            store.is_none()
                && b.shared.is_none()
                && (b.budget, b.window, &b.header) == (weight, window, &header)
        });
        let now = Instant::now();
        let exits: Vec<Exit> = exits
            .into_iter()
            .map(|exit| Exit {
                window: before
                    .and_then(|b| b.exits.iter().find(|e| e.id == exit.id))
                    .map_or_else(
                        || Arc::new(Mutex::new(ExitWindow::new(weight, window, now))),
                        |kept| kept.window.clone(),
                    ),
                book: store.map(|(store, exchange)| {
                    let settings = store.settings();
                    let book = LeaseBook::new(
                        weight,
                        window,
                        settings.processes(),
                        settings.timeout(),
                        now,
                    );
                    (Mutex::new(book), store.keys(exchange, &exit.id))
                }),
                shown: exit.shown,
                id: exit.id,
                meters: OnceLock::new(),
            })
            .collect();
        Some(Arc::new_cyclic(|me: &Weak<Weights>| {
            if let Some((store, _)) = store {
                for (i, exit) in exits.iter().enumerate() {
                    if let Some((_, keys)) = &exit.book {
                        let me: Weak<dyn CoolListener> = me.clone();
                        store.listen(&keys.cool, me, i);
                    }
                }
            }
            Self {
                budget: weight,
                window,
                header,
                exits,
                seq: before.map_or_else(Arc::default, |b| b.seq.clone()),
                warned: AtomicBool::new(false),
                labels,
                refusals: OnceLock::new(),
                me: me.clone(),
                recount: OnceLock::new(),
                shared: store.map(|(store, _)| Sharing {
                    store: store.clone(),
                    wake: Notify::new(),
                    answered: Notify::new(),
                    task: OnceLock::new(),
                    lease_waits: OnceLock::new(),
                }),
            }
        }))
    }
}

impl CoolListener for Weights {
    /// Exit `i` cools for `wait` from now: a process was answered 429 or 418 through it.
    /// Nothing is let through it until then.
    fn cooled(&self, i: usize, wait: Duration) {
        let Some((book, _)) = &self.exits[i].book else {
            return;
        };
        let now = Instant::now();
        lock(book).ban(now + wait, false, now);
        tracing::warn!(member = %self.exits[i].shown, ?wait, "a process sharing this exit was answered 429 or 418: it cools");
    }
}

impl Weights {
    /// Starts the task that makes the calls to the store its exits' leases need, for as
    /// long as the route lives: at each request that finds no lease, and a few times a
    /// lease's time (to settle and top up). Once per route; outside a runtime, never.
    fn start_sharing(&self, sharing: &Sharing) {
        sharing.store.subscribe();
        sharing.task.get_or_init(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let me = self.me.clone();
            let every = (self.window / 16).clamp(Duration::from_millis(10), RECOUNT_MIN);
            runtime.spawn(async move {
                loop {
                    let Some(weights) = me.upgrade() else {
                        return;
                    };
                    weights.chores().await;
                    let Some(sharing) = weights.shared.as_ref() else {
                        return;
                    };
                    // The route outlives its last user by this wait at most.
                    tokio::select! {
                        () = sharing.wake.notified() => {}
                        () = tokio::time::sleep(every) => {}
                    }
                }
            });
        });
    }

    /// Makes the calls to the store that every exit's leases need now, and wakes the
    /// requests that wait for a lease after each answer.
    async fn chores(&self) {
        let Some(sharing) = &self.shared else {
            return;
        };
        let store = &sharing.store;
        // A store that failed is asked again (once per retry) even when no exit needs a
        // lease: its answer ends the fallback for every exit.
        if store.is_down() && store.may_ask(Instant::now()) && store.ping().await.is_ok() {
            sharing.answered.notify_waiters();
        }
        for exit in &self.exits {
            let Some((book, keys)) = &exit.book else {
                continue;
            };
            let now = Instant::now();
            let (chores, hold) = {
                let mut book = lock(book);
                (book.chores(store.may_ask(now), now), book.hold())
            };
            for chore in chores {
                match chore {
                    Chore::Ask { want, min } => {
                        let id = store.lease_id();
                        let asked = Instant::now();
                        let reply = store.lease(keys, self.budget, want, min, hold, &id).await;
                        let now = Instant::now();
                        let mut book = lock(book);
                        match reply {
                            Ok(LeaseReply::Granted(amount)) => book.granted(id, amount, asked, now),
                            Ok(LeaseReply::Full(wait)) => book.full(wait, now),
                            Ok(LeaseReply::Cooling(wait)) => {
                                book.ban(now + wait, false, now);
                                book.full(wait, now);
                            }
                            Err(_) => {
                                book.failed(RETRY, now);
                                // The store may have granted it before the call failed:
                                // released once it answers, not left to its hold.
                                store.release_later(&keys.weight, &id, now + hold);
                            }
                        }
                        drop(book);
                        sharing.answered.notify_waiters();
                    }
                    Chore::Settle {
                        id,
                        stored,
                        spent,
                        hold,
                    } => {
                        // A settlement that fails leaves the lease to its hold: later
                        // than needed, never sooner.
                        let _ = store.settle(&keys.weight, &id, stored, spent, hold).await;
                    }
                    Chore::Extend {
                        id,
                        stored,
                        spent,
                        hold,
                    } => {
                        // Recorded once done: asked again at the next pass until it is.
                        let start = Instant::now();
                        if store
                            .settle(&keys.weight, &id, stored, spent, hold)
                            .await
                            .is_ok()
                        {
                            lock(book).extended(&id, spent, start + hold);
                        }
                    }
                    Chore::Cool { wait } => {
                        let until = Instant::now() + wait;
                        if store.cool(keys, wait).await.is_err() {
                            // Told when the store answers again: never forgotten.
                            lock(book).untold(until);
                        }
                    }
                }
            }
        }
    }

    /// Starts the task that sets every exit's gauges again each slot (at least
    /// [`RECOUNT_MIN`] apart) for as long as the route lives, so that a quiet exit's
    /// gauges follow its weight as it expires. Once per route; outside a runtime, never
    /// (the gauges then change with requests alone).
    fn start_recount(&self) {
        self.recount.get_or_init(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let me = self.me.clone();
            let every = (self.window / SLOTS).max(RECOUNT_MIN);
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    ticks.tick().await;
                    let Some(weights) = me.upgrade() else {
                        return;
                    };
                    let now = Instant::now();
                    for exit in &weights.exits {
                        if let Some(meters) = exit.meters.get() {
                            meters.show(&mut exit.lock(), now);
                        }
                    }
                }
            });
        });
    }

    /// Whether exit `i` is banned now (a 429 or 418 on a shared budget).
    #[cfg(all(test, feature = "redis"))]
    pub(crate) fn banned(&self, i: usize) -> bool {
        self.exits[i]
            .book
            .as_ref()
            .is_some_and(|(book, _)| lock(book).banned(Instant::now()).is_some())
    }

    /// The number of exits.
    pub(crate) fn len(&self) -> usize {
        self.exits.len()
    }

    /// The weight exit `i` has used now (as counted here, corrected by the exchange).
    #[cfg(test)]
    pub(crate) fn used(&self, i: usize) -> u64 {
        self.exits[i].lock().used(Instant::now())
    }

    /// A turn for a request of `weight` through the first exit of `order` (a list of
    /// exits, best first) whose budget has room for it now. When none has, the request
    /// waits for the exit that frees enough first and takes it then, unless that would
    /// be after `deadline`: then it is refused at once with `RateLimited`, naming the exit
    /// and the wait. `order` is asked again after each wait (the route's health changes).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        weight: u32,
        deadline: Option<Instant>,
        mut order: impl FnMut() -> Vec<usize>,
    ) -> Result<Ticket, ProxyError> {
        if weight > self.budget {
            return Err(ProxyError::new(K::InvalidRequest).detail(format!(
                "the request's weight ({weight}) is more than an exit's whole budget ({} per {} ms)",
                self.budget,
                self.window.as_millis()
            )));
        }
        let started = Instant::now();
        let mut now = started;
        let mut waited_for_lease = false;
        if let Some(sharing) = &self.shared {
            self.start_sharing(sharing);
        }
        loop {
            // Registered before the exits are looked at: an answer of the store after
            // that wakes this request.
            let mut answered = std::pin::pin!(self.shared.as_ref().map(|s| s.answered.notified()));
            if let Some(answered) = answered.as_mut().as_pin_mut() {
                answered.enable();
            }
            let down = self.shared.as_ref().is_some_and(|s| s.store.is_down());
            let mut earliest: Option<(Instant, usize)> = None;
            // The soonest a lease asked for is known to have come or not.
            let mut pending: Option<Instant> = None;
            let mut no_lease = false;
            for i in order() {
                let exit = &self.exits[i];
                let taken = {
                    let mut window = exit.lock();
                    let taken = match window.take(weight, now) {
                        Ok(()) => match &exit.book {
                            None => Ok((window.settled(), None)),
                            Some((book, _)) => match lock(book).take(weight, down, now) {
                                Ok(lease) => Ok((window.settled(), lease)),
                                Err(blocked) => {
                                    window.give_back(weight);
                                    no_lease = true;
                                    Err(blocked)
                                }
                            },
                        },
                        Err(blocked) => Err(blocked),
                    };
                    exit.meters(self).show(&mut window, now);
                    taken
                };
                match taken {
                    Ok((mark, lease)) => {
                        if now > started {
                            let waited = (now - started).as_secs_f64();
                            exit.meters(self).waits.record(waited);
                            if waited_for_lease {
                                self.lease_waits().record(waited);
                            }
                        }
                        return Ok(Ticket {
                            weights: self.clone(),
                            exit: i,
                            weight,
                            seq: self.seq.fetch_add(1, Ordering::Relaxed),
                            mark,
                            lease,
                            open: true,
                        });
                    }
                    Err(Blocked { at, pending: true }) => {
                        pending = Some(pending.map_or(at, |p: Instant| p.min(at)));
                    }
                    Err(Blocked { at, pending: false }) => {
                        if earliest.is_none_or(|(t, _)| at < t) {
                            earliest = Some((at, i));
                        }
                    }
                }
            }
            let at = match (earliest, pending) {
                (None, None) => {
                    return Err(ProxyError::new(K::InvalidRequest).detail("the route has no exit"));
                }
                // Only a known wait is refused: a lease asked for may come at once.
                (Some((at, i)), None) => {
                    if deadline.is_some_and(|deadline| at > deadline) {
                        self.refusals().increment(1);
                        return Err(ProxyError::new(K::RateLimited {
                            exit: self.exits[i].shown.clone(),
                            wait: at - now,
                        }));
                    }
                    at
                }
                (known, Some(pending)) => {
                    if deadline.is_some_and(|deadline| now >= deadline) {
                        return Err(ProxyError::new(K::Timeout(Phase::WeightLease)));
                    }
                    let at = known.map_or(pending, |(at, _)| at.min(pending));
                    deadline.map_or(at, |deadline| at.min(deadline))
                }
            };
            if no_lease {
                waited_for_lease = true;
                if let Some(sharing) = &self.shared {
                    sharing.wake.notify_one();
                }
            }
            match answered.as_mut().as_pin_mut() {
                Some(answered) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = answered => {}
                    }
                }
                None => tokio::time::sleep_until(at).await,
            }
            now = Instant::now();
        }
    }

    fn lease_waits(&self) -> &Histogram {
        let sharing = self
            .shared
            .as_ref()
            .expect("only a shared budget waits for leases");
        sharing.lease_waits.get_or_init(|| {
            metrics::histogram!("proxy_shared_lease_wait_seconds", self.labels.clone())
        })
    }

    fn refusals(&self) -> &Counter {
        self.refusals
            .get_or_init(|| metrics::counter!("proxy_weight_refusals_total", self.labels.clone()))
    }

    /// The exchange's count in `headers`, if it sends one; a value that is not a count is
    /// logged once per route (never the value) and taken as missing.
    fn reported(&self, headers: &HeaderMap) -> Option<u64> {
        let value = headers.get(self.header.as_ref()?)?;
        let count = parse_count(value.as_bytes());
        if count.is_none() && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                header = %self.header.as_ref().map_or("", HeaderName::as_str),
                "the used-weight header is not a count: ignored (logged once per route)"
            );
        }
        count
    }
}

/// A used-weight header's value as a count: 1 to 12 ASCII digits (a count of weight is
/// far below 10^12; anything longer, signed, spaced or empty is not one).
pub(crate) fn parse_count(value: &[u8]) -> Option<u64> {
    if !(1..=12).contains(&value.len()) || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Exit {
    fn lock(&self) -> std::sync::MutexGuard<'_, ExitWindow> {
        lock(&self.window)
    }

    fn meters(&self, weights: &Weights) -> &ExitMeters {
        self.meters.get_or_init(|| {
            weights.start_recount();
            let mut labels = weights.labels.clone();
            labels.push(Label::new("member", self.shown.clone()));
            ExitMeters {
                used: metrics::gauge!("proxy_weight_used", labels.clone()),
                left: metrics::gauge!("proxy_weight_left", labels.clone()),
                waits: metrics::histogram!("proxy_weight_wait_seconds", labels),
            }
        })
    }
}

impl ExitMeters {
    /// Sets the gauges from `window` at `now`.
    fn show(&self, window: &mut ExitWindow, now: Instant) {
        let used = window.used(now);
        self.used.set(used as f64);
        self.left.set(window.budget().saturating_sub(used) as f64);
    }
}

/// A request's turn through one exit: its weight counts as in flight until the answer.
/// Dropped unanswered (the request failed or was abandoned after it may have been sent),
/// the weight counts as spent from then: the exchange may have counted it.
#[derive(Debug)]
pub(crate) struct Ticket {
    weights: Arc<Weights>,
    exit: usize,
    weight: u32,
    seq: u64,
    /// The exit's settled weight when it was let through.
    mark: u64,
    /// The lease of the shared budget it was let through by, if any.
    lease: Option<u64>,
    open: bool,
}

impl Ticket {
    /// The exit it goes through.
    pub(crate) fn exit(&self) -> usize {
        self.exit
    }

    /// The request was answered `status` with `headers`: the weight counts from now, and
    /// the exchange's count corrects ours. A 429 or 418 on a shared budget cools the exit
    /// in every process for its `Retry-After` (a minute without one).
    pub(crate) fn answered(mut self, status: StatusCode, headers: &HeaderMap) {
        // Only a shared budget reads the status: a budget of one process leaves 429 and
        // 418 to the pool's cooling.
        if let Some(sharing) = &self.weights.shared
            && let Some(wait) = cooling(status, headers)
            && let Some((book, _)) = &self.weights.exits[self.exit].book
        {
            let now = Instant::now();
            lock(book).ban(now + wait, true, now);
            sharing.wake.notify_one();
        }
        let reported = self.weights.reported(headers);
        let (weight, seq, mark) = (self.weight, self.seq, self.mark);
        self.close(Closed::Answered, |window, now| {
            window.answered(weight, seq, reported, mark, now);
        });
    }

    /// The request was never sent (its connection could not be made): the weight is
    /// free again.
    pub(crate) fn give_back(mut self) {
        let weight = self.weight;
        self.close(Closed::GivenBack, |window, _| window.give_back(weight));
    }

    /// Ends the turn as `how`: `settle` tells the exit's window, its lease is told too,
    /// and the gauges follow.
    fn close(&mut self, how: Closed, settle: impl FnOnce(&mut ExitWindow, Instant)) {
        self.open = false;
        let exit = &self.weights.exits[self.exit];
        let now = Instant::now();
        let mut window = exit.lock();
        settle(&mut window, now);
        if let Some((book, _)) = &exit.book {
            lock(book).close(self.lease, self.weight, how, now);
        }
        exit.meters(&self.weights).show(&mut window, now);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.open {
            let weight = self.weight;
            self.close(Closed::Abandoned, |window, now| {
                window.abandoned(weight, now);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(64);

    fn window(budget: u32) -> (ExitWindow, Instant) {
        let now = Instant::now();
        (ExitWindow::new(budget, W, now), now)
    }

    #[test]
    fn weight_in_flight_counts_until_answered_then_for_a_window_from_the_answer() {
        let (mut w, t0) = window(10);
        assert_eq!(w.take(6, t0), Ok(()));
        assert_eq!(w.used(t0), 6);
        // In flight for longer than a window: still counted.
        let t1 = t0 + W * 2;
        assert_eq!(w.used(t1), 6);
        assert!(w.take(5, t1).is_err());
        assert_eq!(w.in_flight(), 6);
        w.answered(6, 0, None, 0, t1);
        assert_eq!(w.in_flight(), 0);
        w.check();
        assert_eq!(w.used(t1), 6);
        assert_eq!(
            w.used(t1 + W - Duration::from_millis(1)),
            6,
            "held a whole window"
        );
        assert_eq!(
            w.used(t1 + W + Duration::from_secs(1)),
            0,
            "free one slot after"
        );
    }

    #[test]
    fn a_blocked_request_is_told_when_the_oldest_weight_frees_enough() {
        let (mut w, t0) = window(10);
        w.take(4, t0).unwrap();
        w.answered(4, 0, None, 0, t0);
        let t1 = t0 + Duration::from_secs(10);
        w.take(6, t1).unwrap();
        w.answered(6, 1, None, 0, t1);
        // Needs 3: the 4 answered at t0 free first, one slot past a window from t0.
        let Err(Blocked { at, .. }) = w.take(3, t1) else {
            panic!("no room");
        };
        assert_eq!(at, t0 + W + Duration::from_secs(1));
        assert!(w.take(3, at - Duration::from_millis(1)).is_err());
        assert_eq!(w.take(3, at), Ok(()));
        // Needs more than the 4: the 6 answered at t1 must go too.
        let (mut w, t0) = window(10);
        let t1 = t0 + Duration::from_secs(10);
        w.take(4, t0).unwrap();
        w.answered(4, 0, None, 0, t0);
        w.take(6, t1).unwrap();
        w.answered(6, 1, None, 0, t1);
        let Err(Blocked { at, .. }) = w.take(5, t1) else {
            panic!("no room");
        };
        assert_eq!(at, t1 + W + Duration::from_secs(1));
    }

    #[test]
    fn weight_in_flight_that_holds_a_request_back_is_looked_at_again_a_slot_later() {
        let (mut w, t0) = window(10);
        w.take(8, t0).unwrap();
        let Err(Blocked { at, .. }) = w.take(3, t0 + Duration::from_millis(1500)) else {
            panic!("no room");
        };
        assert_eq!(at, t0 + Duration::from_secs(2), "the next slot's start");
        w.give_back(8);
        assert_eq!(w.used(t0), 0);
        assert_eq!(w.take(10, t0), Ok(()), "the whole budget at once");
        assert!(w.take(1, t0).is_err());
        assert_eq!(
            w.take(0, t0),
            Ok(()),
            "a request of no weight always passes"
        );
        w.answered(10, 0, Some(500), 0, t0);
        assert_eq!(w.take(0, t0), Ok(()), "even past the budget");
    }

    #[test]
    fn the_exchange_s_count_raises_ours_or_lowers_it_oldest_first() {
        let (mut w, t0) = window(100);
        w.take(1, t0).unwrap();
        // Another process spent 59 on this IP: the exchange says 60.
        w.answered(1, 0, Some(60), 0, t0);
        assert_eq!(w.used(t0), 60);
        let sent = t0 + Duration::from_secs(29);
        let mark = w.settled();
        assert_eq!(w.take(40, sent), Ok(()));
        assert!(w.take(1, sent).is_err(), "60 + 40 is the budget");
        let t1 = t0 + Duration::from_secs(30);
        w.answered(40, 1, Some(45), mark, t1);
        // Ours was 100; the exchange counts 45 (its window moved on): the 55 dropped are
        // taken from the oldest, the 60 of t0.
        assert_eq!(w.used(t1), 45);
        assert_eq!(
            w.used(t0 + W + Duration::from_secs(1)),
            40,
            "t0's slot is empty"
        );
        assert_eq!(w.used(t1 + W + Duration::from_secs(1)), 0);
    }

    #[test]
    fn weight_answered_since_a_request_was_sent_is_kept_when_its_count_lowers_ours() {
        let (mut w, t0) = window(100);
        // k is sent; j, sent before k, reaches the exchange after k but is answered first.
        let t1 = t0 + Duration::from_secs(5);
        w.take(50, t0).unwrap();
        w.answered(50, 0, None, 0, t0);
        w.take(10, t1).unwrap(); // j
        w.take(1, t1).unwrap(); // k
        w.answered(10, 1, None, 0, t1 + Duration::from_millis(5));
        // k's count (the 50 expired at the exchange, j not yet seen) is 1.
        let t2 = t1 + Duration::from_millis(10);
        w.answered(1, 2, Some(1), 50, t2);
        assert_eq!(w.used(t2), 11, "j's 10 stands beside the count");
        // The same when the count raises ours: another process spent 60 more.
        let (mut w, t0) = window(100);
        w.take(10, t0).unwrap(); // j
        w.take(1, t0).unwrap(); // k
        w.answered(10, 0, None, 0, t0);
        w.answered(1, 1, Some(61), 0, t0);
        assert_eq!(
            w.used(t0),
            71,
            "60 + k's 1 in the count, and j's 10 beside it"
        );
    }

    #[test]
    fn sequential_answers_whose_count_includes_ours_are_not_counted_twice() {
        let (mut w, t0) = window(100);
        // 60 spent elsewhere; each answer's count includes every request before it.
        for n in 0..40 {
            let mark = w.settled();
            assert_eq!(w.take(1, t0), Ok(()), "request {n}");
            w.answered(1, n, Some(61 + n), mark, t0);
        }
        assert_eq!(w.used(t0), 100);
        assert!(w.take(1, t0).is_err());
    }

    #[test]
    fn an_older_answer_s_count_is_stale_and_a_missing_one_keeps_ours() {
        let (mut w, t0) = window(100);
        for _ in 0..3 {
            w.take(10, t0).unwrap();
        }
        w.answered(10, 2, Some(30), 0, t0);
        w.answered(10, 0, Some(5), 0, t0); // answered late: its count is older
        assert_eq!(
            w.used(t0),
            50,
            "30 counted + 10 answered + 10 in flight, the stale 5 ignored"
        );
        w.answered(10, 1, None, 0, t0);
        assert_eq!(w.used(t0), 50, "no count: ours stands");
        let t2 = t0 + Duration::from_secs(10);
        w.take(1, t2).unwrap();
        w.take(1, t2).unwrap();
        w.answered(1, 3, Some(30), 30, t2);
        assert_eq!(w.used(t2), 52, "not lowered while a request is in flight");
        w.answered(1, 4, Some(30), 30, t2);
        // Lowered to the count and the 1 answered since this request was sent (it may
        // have reached the exchange after this one).
        assert_eq!(
            w.used(t2),
            31,
            "the newest count lowers ours once nothing is in flight"
        );
    }

    #[test]
    fn a_count_is_one_to_twelve_digits() {
        assert_eq!(parse_count(b"0"), Some(0));
        assert_eq!(parse_count(b"5400"), Some(5400));
        assert_eq!(parse_count(b"999999999999"), Some(999_999_999_999));
        for bad in [
            &b""[..],
            b"1000000000000",
            b"-1",
            b"+1",
            b" 1",
            b"1.5",
            b"12a",
            b"\xd9\xa1",
        ] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn weight_abandoned_counts_for_a_window_and_no_count_lowers_ours_meanwhile() {
        let (mut w, t0) = window(100);
        w.take(10, t0).unwrap();
        w.take(1, t0).unwrap();
        w.abandoned(10, t0);
        assert_eq!(w.used(t0), 11);
        let t1 = t0 + W - Duration::from_secs(1);
        w.answered(1, 1, Some(1), 0, t1);
        assert_eq!(
            w.used(t1),
            11,
            "the abandoned 10 may reach the exchange after its count"
        );
        let later = t0 + W + Duration::from_secs(2);
        w.take(1, later).unwrap();
        w.answered(1, 2, Some(0), 11, later);
        assert_eq!(
            w.used(later),
            0,
            "a window later, the count lowers ours again"
        );
    }

    #[test]
    fn weight_abandoned_after_a_request_was_let_through_stands_beside_its_count() {
        let (mut w, t0) = window(100);
        let mark = w.settled();
        w.take(1, t0).unwrap(); // k
        w.take(10, t0).unwrap(); // j, abandoned: it may reach the exchange after k
        w.abandoned(10, t0);
        w.answered(1, 0, Some(50), mark, t0);
        assert_eq!(w.used(t0), 60, "k's count of 50, and j's 10 beside it");
    }

    #[test]
    fn a_quiet_exit_frees_after_a_window_however_long_the_silence() {
        let (mut w, t0) = window(5);
        w.take(5, t0).unwrap();
        w.answered(5, 0, None, 0, t0);
        let later = t0 + W * 1000;
        assert_eq!(w.used(later), 0);
        assert_eq!(w.take(5, later), Ok(()));
    }

    #[test]
    fn debug_shows_the_budget_and_the_exits() {
        let w = weights(2, 3, false);
        let shown = format!("{w:?}");
        assert!(
            shown.starts_with("Weights { budget: 3, window: 1s"),
            "{shown}"
        );
        assert!(shown.contains(r#"exits: ["exit0", "exit1"]"#), "{shown}");
    }

    fn weights(exits: usize, budget: u32, header: bool) -> Arc<Weights> {
        let mut b = HttpBudget::new().with_weight(budget, Duration::from_secs(1));
        if header {
            b = b.with_used_weight_header(
                crate::model::http_budget::WeightHeader::new("x-used").unwrap(),
            );
        }
        let exits = (0..exits)
            .map(|i| ExitName {
                shown: format!("exit{i}"),
                id: format!("exit{i}"),
            })
            .collect();
        Weights::new(&b, exits, Vec::new(), None, None).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_takes_the_first_exit_in_order_with_room_else_waits_for_the_soonest() {
        let w = weights(2, 3, false);
        let order = || vec![1, 0];
        let a = w.admit(3, None, order).await.unwrap();
        assert_eq!(a.exit(), 1);
        let b = w.admit(2, None, order).await.unwrap();
        assert_eq!(b.exit(), 0, "exit 1 is full: the next in order");
        a.answered(StatusCode::OK, &HeaderMap::new());
        tokio::time::advance(Duration::from_millis(100)).await;
        b.answered(StatusCode::OK, &HeaderMap::new());
        let started = Instant::now();
        let c = w.admit(2, None, order).await.unwrap();
        assert_eq!(c.exit(), 1, "exit 1 frees first");
        let waited = Instant::now() - started;
        assert!(waited >= Duration::from_millis(900), "{waited:?}");
        // Exit 1 frees 65 slots of 15.625 ms after 0 (1.016 s), exit 0 after 0.1 s (1.109 s).
        assert!(waited <= Duration::from_millis(950), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_deadline_is_refused_at_once_naming_the_exit() {
        let w = weights(1, 2, false);
        w.admit(2, None, || vec![0])
            .await
            .unwrap()
            .answered(StatusCode::OK, &HeaderMap::new());
        let started = Instant::now();
        let deadline = Some(started + Duration::from_millis(100));
        let err = w.admit(1, deadline, || vec![0]).await.unwrap_err();
        assert_eq!(Instant::now(), started, "no wait");
        let K::RateLimited { exit, wait } = err.kind() else {
            panic!("{err}");
        };
        assert_eq!(exit, "exit0");
        assert!(*wait > Duration::from_millis(900), "{wait:?}");
        // Two exits that free at the same instant: the first in order is named.
        let two = weights(2, 1, false);
        for i in [0, 1] {
            let ticket = two.admit(1, None, move || vec![i]).await.unwrap();
            ticket.answered(StatusCode::OK, &HeaderMap::new());
        }
        let err = two.admit(1, deadline, || vec![0, 1]).await.unwrap_err();
        assert!(
            matches!(err.kind(), K::RateLimited { exit, .. } if exit == "exit0"),
            "{err}"
        );
        let err = two.admit(1, deadline, || vec![1, 0]).await.unwrap_err();
        assert!(
            matches!(err.kind(), K::RateLimited { exit, .. } if exit == "exit1"),
            "{err}"
        );
        let heavy = w.admit(3, None, || vec![0]).await.unwrap_err();
        assert_eq!(heavy.kind(), &K::InvalidRequest, "{heavy}");
        assert!(
            heavy
                .to_string()
                .contains("more than an exit's whole budget")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_ends_exactly_at_the_deadline_is_waited() {
        let w = weights(1, 2, false);
        let t0 = Instant::now();
        w.admit(2, None, || vec![0])
            .await
            .unwrap()
            .answered(StatusCode::OK, &HeaderMap::new());
        // Slot 0's weight frees 65 slots of 1 s / 64 later.
        let frees = t0 + Duration::from_micros(1_015_625);
        let ticket = w.admit(1, Some(frees), || vec![0]).await.unwrap();
        // (tokio's timer wakes on the next whole millisecond.)
        assert!(Instant::now() >= frees && Instant::now() < frees + Duration::from_millis(2));
        drop(ticket);
        let err = w
            .admit(2, Some(Instant::now() + Duration::from_millis(1)), || {
                vec![0]
            })
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), K::RateLimited { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticket_dropped_counts_its_weight_and_one_given_back_does_not() {
        let w = weights(1, 2, true);
        w.admit(1, None, || vec![0]).await.unwrap().give_back();
        assert_eq!(w.used(0), 0);
        drop(w.admit(1, None, || vec![0]).await.unwrap());
        assert_eq!(w.used(0), 1, "may have been sent: counted");
        let t = w.admit(1, None, || vec![0]).await.unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-used", "not a number".parse().unwrap());
        t.answered(StatusCode::OK, &headers);
        assert_eq!(w.used(0), 2, "an unreadable count is no count");
        tokio::time::advance(Duration::from_secs(2)).await;
        let t = w.admit(1, None, || vec![0]).await.unwrap();
        headers.insert("x-used", "2".parse().unwrap());
        t.answered(StatusCode::OK, &headers);
        assert_eq!(w.used(0), 2, "the exchange's count");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn every_route_listening_for_an_exit_s_cooling_is_told_and_dropped_ones_are_forgotten() {
        use crate::model::shared::{SharedSettings, SharedUrl};
        let settings =
            SharedSettings::new().with_url(SharedUrl::new("redis://127.0.0.1:1/0").unwrap());
        let store = Store::new(&settings).unwrap();
        let budget = HttpBudget::new().with_weight(100, Duration::from_secs(60));
        let route = || {
            let exit = ExitName {
                shown: "direct".into(),
                id: "direct".into(),
            };
            Weights::new(
                &budget,
                vec![exit],
                Vec::new(),
                Some((&store, "binance")),
                None,
            )
            .unwrap()
        };
        let key = store.keys("binance", "direct").cool;
        let (first, second) = (route(), route());
        drop(first);
        let third = route();
        assert_eq!(store.listening(&key), 2, "the dropped route is forgotten");
        assert!(!second.banned(0) && !third.banned(0));
        store.cooled(&key, Duration::from_secs(30));
        assert!(
            second.banned(0) && third.banned(0),
            "both live routes are told"
        );
        store.cooled("another key", Duration::from_secs(30));
    }

    #[tokio::test]
    async fn budgets_made_again_keep_the_windows_of_the_exits_that_stay() {
        let before = weights(2, 100, false);
        let in_flight = before.admit(30, None, || vec![0]).await.unwrap();
        let answered = before.admit(20, None, || vec![1]).await.unwrap();
        answered.answered(StatusCode::OK, &HeaderMap::new());
        let exits = |names: &[&str]| -> Vec<ExitName> {
            names
                .iter()
                .map(|n| ExitName {
                    shown: format!("{n} as shown"),
                    id: (*n).to_owned(),
                })
                .collect()
        };
        let budget = HttpBudget::new().with_weight(100, Duration::from_secs(1));
        let after = Weights::new(
            &budget,
            exits(&["exit1", "exit2"]),
            Vec::new(),
            None,
            Some(&before),
        )
        .unwrap();
        assert_eq!(after.used(0), 20, "exit1 stays, with the weight it spent");
        assert_eq!(after.used(1), 0, "exit2 is new");
        // Weight let through on the old budgets after the reload counts in the new ones.
        let late = before.admit(10, None, || vec![1]).await.unwrap();
        assert_eq!(after.used(0), 30);
        drop((in_flight, late));
        // Another budget, or a shared one: nothing is kept.
        let other = HttpBudget::new().with_weight(50, Duration::from_secs(1));
        let fresh = Weights::new(&other, exits(&["exit1"]), Vec::new(), None, Some(&before));
        assert_eq!(fresh.unwrap().used(0), 0);
    }
}
