//! The weight one process holds of an exit's shared budget: the leases it took from the
//! store ([`super::shared`]), what it spent of each, and which calls to the store are
//! due. Pure bookkeeping, told the time and the store's health by its caller.
//!
//! A lease is spent from for a short while (its `ttl`, an eighth of the window), then
//! settled once nothing spent from it is in flight: the store keeps the weight spent for a
//! window from the settlement (every answer came before it, so the exchange frees that
//! weight no later) and frees the rest at once. A lease the process never settles (it
//! died) frees when its grant's hold ends: `ttl` and two windows. A lease with weight in
//! flight when its hold nears its end is extended, so a slow answer never lets the store
//! free weight the exchange still counts.
//!
//! While the store is down, the process spends by its own window alone, whose budget is
//! the exit's over the expected number of processes; that window counts every request
//! always, so it knows the recent spending when the store fails.

use std::time::Duration;

use tokio::time::Instant;

use super::window::{Blocked, ExitWindow};

/// One lease.
#[derive(Debug, Clone)]
struct Lease {
    /// Its number among this book's leases (what a ticket names).
    number: u64,
    /// Its id in the store.
    id: String,
    /// The weight granted.
    amount: u32,
    /// The weight the store holds for it now (`amount`, until an extension holds what
    /// was spent instead).
    stored: u32,
    /// The weight let through against it (given back weight is not).
    spent: u32,
    /// Of that, the weight not answered yet.
    in_flight: u32,
    /// When spending from it ends.
    until: Instant,
    /// When the store frees it unless it is settled or extended (as this process reckons;
    /// the store's own clock decides, from a call that ended before this was set).
    held_until: Instant,
}

/// A call to the store that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chore {
    /// Tell every process that the exit cools (429/418) for `wait` from now.
    Cool { wait: Duration },
    /// Ask for a lease of `want` weight, at least `min`.
    Ask { want: u32, min: u32 },
    /// Replace the lease `id` (held as `stored`) by `spent`, held for `hold` from now:
    /// its time is over and nothing spent from it is in flight.
    Settle {
        id: String,
        stored: u32,
        spent: u32,
        hold: Duration,
    },
    /// Hold the lease `id` (held as `stored`), which has weight in flight, as `spent`
    /// for `hold` from now ([`LeaseBook::extended`] once the store did).
    Extend {
        id: String,
        stored: u32,
        spent: u32,
        hold: Duration,
    },
}

/// How a request's turn ended, for its lease and the process's own window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Answered: spent.
    Answered,
    /// Abandoned after it may have been sent: spent.
    Abandoned,
    /// Never sent: not spent.
    GivenBack,
}

/// The leases of one exit in one process.
#[derive(Debug, Clone)]
pub(crate) struct LeaseBook {
    /// The weight asked for per lease.
    block: u32,
    /// How long a lease is spent from.
    ttl: Duration,
    /// The exit's window.
    window: Duration,
    /// How long a request that finds no lease may wait for the store's answer.
    asking_wait: Duration,
    leases: Vec<Lease>,
    next_number: u64,
    /// The largest weight a request found no lease for since the last grant (0: none).
    need: u32,
    /// Whether weight was spent from a lease since the last ask.
    demand: bool,
    /// A lease is being asked for.
    asking: bool,
    /// The store said nothing can be leased before then.
    full_until: Option<Instant>,
    /// This process's own spending, within the share of one process.
    own: ExitWindow,
    /// The exit is banned (it was answered 429 or 418, here or in another process)
    /// until then: nothing is let through it.
    banned_until: Option<Instant>,
    /// A ban learned here that the store has not been told of yet (it was down).
    untold: Option<Instant>,
    /// The store failed this exit's last ask: the process spends its own share until
    /// then (the store may be down, or answer garbage for this exit alone).
    fallback_until: Option<Instant>,
    /// When a request last went through by the process's own share: for a window after
    /// it, the share still binds beside the leases (the store does not know what was
    /// spent meanwhile).
    own_last: Option<Instant>,
}

impl LeaseBook {
    /// The book of an exit whose budget is `budget` per `window`, shared by about
    /// `processes` processes; a request that finds no lease waits at most `asking_wait`
    /// (the store's deadline) for one.
    pub(crate) fn new(
        budget: u32,
        window: Duration,
        processes: u32,
        asking_wait: Duration,
        now: Instant,
    ) -> Self {
        let processes = processes.max(1);
        Self {
            block: budget.div_ceil(processes.saturating_mul(8)).max(1),
            ttl: window / 8,
            window,
            asking_wait,
            leases: Vec::new(),
            next_number: 0,
            need: 0,
            demand: false,
            asking: false,
            full_until: None,
            own: ExitWindow::new((budget / processes).max(1), window, now),
            banned_until: None,
            untold: None,
            fallback_until: None,
            own_last: None,
        }
    }

    /// The exit is banned until `until` (a 429 or 418 and its `Retry-After`): nothing is
    /// let through it before, and its open leases are spent from no more (settled once
    /// their weight in flight is answered). `learned` when this process saw the answer:
    /// the store is to be told.
    pub(crate) fn ban(&mut self, until: Instant, learned: bool, now: Instant) {
        if until <= now {
            return;
        }
        self.banned_until = Some(self.banned_until.map_or(until, |t| t.max(until)));
        if learned {
            self.untold = Some(self.untold.map_or(until, |t| t.max(until)));
        }
        for lease in &mut self.leases {
            lease.until = lease.until.min(now);
        }
    }

    /// Until when the exit is banned, if it is now.
    pub(crate) fn banned(&self, now: Instant) -> Option<Instant> {
        self.banned_until.filter(|&t| t > now)
    }

    /// Lets `weight` through now: from a lease with room (its number), or, while the
    /// store is `down`, within the process's own share (no lease). Else when to look
    /// again: when the store said enough frees, or after the store's deadline (a lease
    /// asked for by then).
    pub(crate) fn take(
        &mut self,
        weight: u32,
        down: bool,
        now: Instant,
    ) -> Result<Option<u64>, Blocked> {
        if weight == 0 {
            return Ok(None);
        }
        if let Some(at) = self.banned(now) {
            return Err(Blocked { at, pending: false });
        }
        if down || self.fallback_until.is_some_and(|t| now < t) {
            self.own.take(weight, now)?;
            self.own_last = Some(now);
            return Ok(None);
        }
        // Just after the share was the rule, it binds beside the leases for a window.
        let strict = self.own_last.is_some_and(|t| now < t + self.window);
        if strict {
            self.own.take(weight, now)?;
        }
        if let Some(lease) = self
            .leases
            .iter_mut()
            .find(|l| now < l.until && l.amount - l.spent >= weight)
        {
            lease.spent += weight;
            lease.in_flight += weight;
            self.demand = true;
            if !strict {
                self.own.charge(weight);
            }
            return Ok(Some(lease.number));
        }
        if strict {
            self.own.give_back(weight);
        }
        self.need = self.need.max(weight);
        Err(match self.full_until.filter(|&t| t > now) {
            Some(at) => Blocked { at, pending: false },
            None => Blocked {
                at: now + self.asking_wait,
                pending: true,
            },
        })
    }

    /// The turn of `weight` let through against `lease` ended as `how`.
    pub(crate) fn close(&mut self, lease: Option<u64>, weight: u32, how: Closed, now: Instant) {
        if weight == 0 {
            return;
        }
        match how {
            Closed::Answered => self.own.answered(weight, 0, None, 0, now),
            Closed::Abandoned => self.own.abandoned(weight, now),
            Closed::GivenBack => self.own.give_back(weight),
        }
        let Some(lease) = lease.and_then(|n| self.leases.iter_mut().find(|l| l.number == n)) else {
            return;
        };
        lease.in_flight -= weight.min(lease.in_flight);
        if how == Closed::GivenBack {
            lease.spent -= weight.min(lease.spent);
        }
    }

    /// The calls to the store due now, when it may be asked: settlements of the leases
    /// spent from (their time over, or nothing left) with nothing in flight, extensions
    /// of those whose hold nears its end with weight in flight, and a new lease when a
    /// request waits for one or the open ones run low while in use. None while it may
    /// not: the leases wait, held in the store until their hold ends.
    pub(crate) fn chores(&mut self, may_ask: bool, now: Instant) -> Vec<Chore> {
        let mut chores = Vec::new();
        if !may_ask {
            return chores;
        }
        if let Some(until) = self.untold.take().filter(|&until| until > now) {
            chores.push(Chore::Cool { wait: until - now });
        }
        let window = self.window;
        self.leases.retain_mut(|lease| {
            let over = now >= lease.until || lease.spent == lease.amount;
            if over && lease.in_flight == 0 {
                chores.push(Chore::Settle {
                    id: lease.id.clone(),
                    stored: lease.stored,
                    spent: lease.spent,
                    hold: window,
                });
                return false;
            }
            if lease.in_flight != 0 && now + window >= lease.held_until {
                chores.push(Chore::Extend {
                    id: lease.id.clone(),
                    stored: lease.stored,
                    spent: lease.spent,
                    hold: window * 2,
                });
            }
            true
        });
        let left: u32 = self
            .leases
            .iter()
            .filter(|l| now < l.until)
            .map(|l| l.amount - l.spent)
            .sum();
        let low = self.demand && left < self.block.div_ceil(2);
        let free = self.full_until.is_none_or(|t| now >= t) && self.banned(now).is_none();
        if !self.asking && free && (self.need > 0 || low) {
            self.asking = true;
            self.demand = false;
            chores.push(Chore::Ask {
                want: self.block.max(self.need),
                min: self.need.max(1),
            });
            // Asked for: a request that still needs it says so again.
            self.need = 0;
        }
        chores
    }

    /// The store holds the lease `id` as `spent` until `until` (an extension it made).
    pub(crate) fn extended(&mut self, id: &str, spent: u32, until: Instant) {
        if let Some(lease) = self.leases.iter_mut().find(|l| l.id == id) {
            lease.stored = spent;
            lease.held_until = until;
        }
    }

    /// The store granted `amount` under `id` at `now` (the call began at `asked`: the
    /// store's hold counts from no earlier).
    pub(crate) fn granted(&mut self, id: String, amount: u32, asked: Instant, now: Instant) {
        self.asking = false;
        self.full_until = None;
        self.fallback_until = None;
        let number = self.next_number;
        self.next_number += 1;
        self.leases.push(Lease {
            number,
            id,
            amount,
            stored: amount,
            spent: 0,
            in_flight: 0,
            until: now + self.ttl,
            held_until: asked + self.hold(),
        });
    }

    /// The store has nothing to lease for `wait` from `now`.
    pub(crate) fn full(&mut self, wait: Duration, now: Instant) {
        self.asking = false;
        self.full_until = Some(now + wait);
    }

    /// The ask failed at `now` (the store is down, slow, or answered garbage for this
    /// exit): the process spends its own share until `retry` from now, then asks again.
    pub(crate) fn failed(&mut self, retry: Duration, now: Instant) {
        self.asking = false;
        self.fallback_until = Some(now + retry);
    }

    /// Telling the store of a ban until `until` failed: told again when it answers.
    pub(crate) fn untold(&mut self, until: Instant) {
        self.untold = Some(self.untold.map_or(until, |t| t.max(until)));
    }

    /// How long the store holds a lease from its grant unless it is settled: its time to
    /// be spent from, and two windows (an answer that comes within a window after that
    /// is covered even if the process dies).
    pub(crate) fn hold(&self) -> Duration {
        self.ttl + self.window * 2
    }

    /// The weight asked for per lease.
    #[cfg(test)]
    pub(crate) fn block(&self) -> u32 {
        self.block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(8);
    const WAIT: Duration = Duration::from_millis(250);

    fn book(budget: u32, processes: u32) -> (LeaseBook, Instant) {
        let now = Instant::now();
        (LeaseBook::new(budget, W, processes, WAIT, now), now)
    }

    fn ask(chores: &[Chore]) -> Option<(u32, u32)> {
        chores.iter().find_map(|c| match c {
            Chore::Ask { want, min } => Some((*want, *min)),
            Chore::Settle { .. } | Chore::Extend { .. } | Chore::Cool { .. } => None,
        })
    }

    fn settles(b: &mut LeaseBook, now: Instant) -> Vec<Chore> {
        b.chores(true, now)
            .into_iter()
            .filter(|c| matches!(c, Chore::Settle { .. } | Chore::Extend { .. }))
            .collect()
    }

    #[test]
    fn a_block_is_an_eighth_of_one_process_share_and_spent_for_an_eighth_of_a_window() {
        let (b, _) = book(200, 4);
        assert_eq!(b.block(), 7, "200 / 32, rounded up");
        assert_eq!(b.ttl, Duration::from_secs(1));
        assert_eq!(b.hold(), Duration::from_secs(17));
        assert_eq!(book(5, 10).0.block(), 1);
        assert_eq!(book(6000, 1).0.block(), 750);
    }

    #[test]
    fn a_request_without_a_lease_asks_for_one_and_waits_at_most_the_deadline() {
        let (mut b, now) = book(200, 4);
        assert_eq!(
            b.take(3, false, now),
            Err(Blocked {
                at: now + WAIT,
                pending: true
            })
        );
        assert_eq!(ask(&b.chores(true, now)), Some((7, 3)));
        assert_eq!(ask(&b.chores(true, now)), None, "one ask at a time");
        b.granted("a".into(), 7, now, now);
        assert_eq!(b.take(3, false, now), Ok(Some(0)));
        assert_eq!(b.take(3, false, now), Ok(Some(0)));
        assert!(b.take(3, false, now).is_err(), "1 left of 7");
        // A request heavier than a block asks for its weight.
        let (mut b, now) = book(200, 4);
        assert!(b.take(20, false, now).is_err());
        assert_eq!(ask(&b.chores(true, now)), Some((20, 20)));
        // Nothing is asked while the store may not be.
        let (mut b, now) = book(200, 4);
        assert!(b.take(1, false, now).is_err());
        assert_eq!(ask(&b.chores(false, now)), None);
        assert_eq!(ask(&b.chores(true, now)), Some((7, 1)));
    }

    #[test]
    fn a_lease_running_low_in_use_is_topped_up_and_an_idle_one_is_not() {
        let (mut b, now) = book(200, 4);
        b.granted("a".into(), 7, now, now);
        assert_eq!(ask(&b.chores(true, now)), None, "unused: nothing asked");
        for _ in 0..3 {
            b.take(1, false, now).unwrap();
        }
        assert_eq!(ask(&b.chores(true, now)), None, "4 left of 7: not low");
        b.take(1, false, now).unwrap();
        assert_eq!(ask(&b.chores(true, now)), Some((7, 1)), "3 left: low");
        // A lease whose time is over has nothing left to spend, from its end on.
        let (mut b, now) = book(200, 4);
        b.granted("a".into(), 7, now, now);
        b.take(1, false, now).unwrap();
        assert_eq!(
            ask(&b.chores(true, now + b.ttl - Duration::from_millis(1))),
            None
        );
        assert_eq!(ask(&b.chores(true, now + b.ttl)), Some((7, 1)));
    }

    #[test]
    fn a_full_store_is_not_asked_again_before_it_said_enough_frees() {
        let (mut b, now) = book(200, 4);
        assert!(b.take(1, false, now).is_err());
        b.chores(true, now);
        b.full(Duration::from_secs(3), now);
        assert_eq!(
            b.take(1, false, now),
            Err(Blocked {
                at: now + Duration::from_secs(3),
                pending: false
            })
        );
        assert_eq!(ask(&b.chores(true, now + Duration::from_secs(2))), None);
        // From the instant it said, the request asks again instead of waiting.
        assert!(matches!(
            b.take(1, false, now + Duration::from_secs(3)),
            Err(Blocked { pending: true, .. })
        ));
        assert_eq!(
            ask(&b.chores(true, now + Duration::from_secs(3))),
            Some((7, 1))
        );
    }

    #[test]
    fn a_lease_is_settled_with_what_was_spent_once_its_time_is_over_and_nothing_is_in_flight() {
        let (mut b, now) = book(200, 4);
        b.granted("a".into(), 7, now, now);
        let n = b.take(2, false, now).unwrap();
        let m = b.take(1, false, now).unwrap();
        b.close(m, 1, Closed::GivenBack, now);
        let later = now + Duration::from_secs(1);
        assert!(
            b.take(1, false, later).is_err(),
            "spending ends after the ttl"
        );
        assert!(settles(&mut b, later).is_empty(), "2 in flight");
        b.close(n, 2, Closed::Answered, later);
        assert_eq!(
            settles(&mut b, later),
            [Chore::Settle {
                id: "a".into(),
                stored: 7,
                spent: 2,
                hold: W
            }]
        );
        assert!(settles(&mut b, later).is_empty(), "settled once");
        // A lease spent to the end is settled at once.
        b.granted("b".into(), 7, later, later);
        let n = b.take(7, false, later).unwrap();
        b.close(n, 7, Closed::Abandoned, later);
        assert_eq!(
            settles(&mut b, later),
            [Chore::Settle {
                id: "b".into(),
                stored: 7,
                spent: 7,
                hold: W
            }]
        );
    }

    #[test]
    fn a_lease_with_weight_in_flight_near_its_hold_s_end_is_extended_holding_what_was_spent() {
        let (mut b, now) = book(200, 4);
        b.granted("a".into(), 7, now, now);
        let n = b.take(2, false, now).unwrap();
        // Held 17 s from the grant: extended within a window of that, asked again until
        // the store has done it.
        let chores = settles;
        assert!(chores(&mut b, now + Duration::from_secs(8)).is_empty());
        let extend = [Chore::Extend {
            id: "a".into(),
            stored: 7,
            spent: 2,
            hold: W * 2,
        }];
        assert_eq!(chores(&mut b, now + Duration::from_secs(9)), extend);
        assert_eq!(
            chores(&mut b, now + Duration::from_millis(9_100)),
            extend,
            "not done: asked again"
        );
        b.extended("a", 2, now + Duration::from_secs(9) + W * 2);
        assert!(chores(&mut b, now + Duration::from_secs(10)).is_empty());
        let t = now + Duration::from_secs(12);
        b.close(n, 2, Closed::Answered, t);
        assert_eq!(
            chores(&mut b, t),
            [Chore::Settle {
                id: "a".into(),
                stored: 2,
                spent: 2,
                hold: W
            }]
        );
    }

    #[test]
    fn a_ban_stops_every_request_and_the_open_leases_and_is_told_to_the_store_once() {
        let (mut b, now) = book(200, 4);
        b.granted("a".into(), 7, now, now);
        let n = b.take(1, false, now).unwrap();
        let until = now + Duration::from_secs(30);
        b.ban(until, true, now);
        let banned = Err(Blocked {
            at: until,
            pending: false,
        });
        assert_eq!(b.take(1, false, now), banned);
        assert_eq!(b.take(1, true, now), banned, "in the fallback too");
        assert_eq!(b.banned(now), Some(until));
        // Told once, and nothing asked while banned; the lease is settled once answered.
        let chores = b.chores(true, now);
        assert_eq!(chores, [Chore::Cool { wait: until - now }]);
        b.close(n, 1, Closed::Answered, now);
        assert_eq!(
            b.chores(true, now),
            [Chore::Settle {
                id: "a".into(),
                stored: 7,
                spent: 1,
                hold: W
            }]
        );
        // A shorter ban does not shorten it; one learned elsewhere is not told.
        b.ban(now + Duration::from_secs(5), false, now);
        assert_eq!(b.banned(now), Some(until));
        assert!(b.chores(true, now).is_empty());
        // A ban that could not be told is told when the store may be asked.
        b.untold(until);
        assert!(b.chores(false, now).is_empty());
        assert_eq!(b.chores(true, now), [Chore::Cool { wait: until - now }]);
        // A ban over by the time the store may be told is not told.
        b.untold(until);
        let told = b.chores(true, until);
        assert!(
            !told.iter().any(|c| matches!(c, Chore::Cool { .. })),
            "{told:?}"
        );
        // Over at its end: requests go on (asking for a lease).
        assert_eq!(b.banned(until), None, "a ban ends at its end");
        let after = until + Duration::from_millis(1);
        assert_eq!(b.banned(after), None);
        assert!(matches!(
            b.take(1, false, after),
            Err(Blocked { pending: true, .. })
        ));
        assert_eq!(b.take(1, true, after), Ok(None));
        // A ban in the past or now is none.
        b.ban(after, true, after);
        assert_eq!(b.banned(after), None);
        assert!(
            b.chores(true, after)
                .iter()
                .all(|c| !matches!(c, Chore::Cool { .. }))
        );
    }

    #[test]
    fn a_failed_ask_spends_the_share_until_the_retry_and_the_share_binds_a_window_after() {
        let (mut b, now) = book(200, 4);
        assert!(b.take(1, false, now).is_err());
        assert_eq!(ask(&b.chores(true, now)), Some((7, 1)));
        b.failed(Duration::from_secs(1), now);
        // The exit's own share (50) until the retry, the store answering or not; at the
        // retry, a lease is asked for again.
        let mut probe = b.clone();
        assert_eq!(probe.take(1, false, now), Ok(None));
        assert!(matches!(
            probe.take(1, false, now + Duration::from_secs(1)),
            Err(Blocked { pending: true, .. })
        ));
        for _ in 0..50 {
            assert_eq!(b.take(1, false, now), Ok(None));
        }
        assert!(matches!(
            b.take(1, false, now),
            Err(Blocked { pending: false, .. })
        ));
        // Then a lease again; but for a window after the share was the rule, it binds
        // beside the lease (the store never heard of those 50).
        let later = now + Duration::from_secs(1);
        assert!(matches!(
            b.take(1, false, later),
            Err(Blocked { pending: false, .. })
        ));
        b.granted("a".into(), 7, later, later);
        assert!(
            b.take(1, false, later).is_err(),
            "the share is spent: the lease waits"
        );
        // A window after the last request by the share, the leases alone decide.
        let after = now + W;
        b.granted("b".into(), 7, after, after);
        assert_eq!(b.take(1, false, after), Ok(Some(1)));
    }

    #[test]
    fn a_request_s_need_is_asked_once_and_forgotten_unless_it_is_still_there() {
        let (mut b, now) = book(200, 4);
        assert!(b.take(100, false, now).is_err());
        assert_eq!(ask(&b.chores(true, now)), Some((100, 100)));
        b.full(Duration::from_millis(10), now);
        // The heavy request went away: the next ask is for what is needed now.
        let later = now + Duration::from_millis(10);
        assert!(b.take(1, false, later).is_err());
        assert_eq!(ask(&b.chores(true, later)), Some((7, 1)));
    }

    #[test]
    fn while_the_store_is_down_the_process_spends_its_share_counting_what_it_spent_before() {
        let (mut b, now) = book(200, 4);
        b.granted("a".into(), 7, now, now);
        for _ in 0..7 {
            b.take(1, false, now).unwrap();
        }
        // 7 of its share of 50 spent from the lease: 43 left while the store is down.
        for _ in 0..43 {
            assert_eq!(b.take(1, true, now), Ok(None));
        }
        let blocked = b.take(1, true, now).unwrap_err();
        assert!(blocked.at > now, "{blocked:?}");
        assert_eq!(b.take(0, true, now), Ok(None), "weight 0 always passes");
        assert_eq!(b.take(0, false, now), Ok(None));
    }
}
