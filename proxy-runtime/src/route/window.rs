//! What one exit spent in its sliding window ([`ExitWindow`]): the pure bookkeeping of a
//! weight budget, told the time by its caller, and why a request cannot be let through
//! now ([`Blocked`]). [`super::weight`] keeps one per exit of a route and decides
//! admission with it; [`super::lease`] keeps one per exit for the process's own share.

use std::time::Duration;

use tokio::time::Instant;

/// The slots a window is cut into: weight is counted per slot, and frees a slot at a time.
pub(crate) const SLOTS: u32 = 64;
/// The ring holds one slot more than the window, so that weight counted at any instant of
/// a slot is held for a whole window at least (at most one slot more).
const RING: usize = SLOTS as usize + 1;

/// What an exit spent in the window: the pure bookkeeping, told the time by its caller.
#[derive(Debug, Clone)]
pub(crate) struct ExitWindow {
    budget: u64,
    /// The length of a slot: the window over [`SLOTS`].
    slot: Duration,
    /// Slot 0 starts here.
    origin: Instant,
    /// The weight answered in each of the last [`RING`] slots, by slot number modulo it.
    ring: [u64; RING],
    /// The newest slot the ring holds.
    head: u64,
    /// The sum of the ring.
    answered: u64,
    /// The weight sent and not answered.
    in_flight: u64,
    /// The newest request (by the order they were let through) whose answer carried the
    /// exchange's count: an older answer's count is stale and is not applied.
    counted: Option<u64>,
    /// Until when the exchange's count may not lower ours: a window after the last
    /// request abandoned unanswered (it may still reach the exchange, after a count that
    /// misses it).
    abandoned_until: Option<Instant>,
    /// All the weight ever answered or abandoned: what was answered after a request was
    /// let through is this less its value then.
    settled: u64,
}

/// Why a request cannot be let through an exit now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// The earliest instant enough could be free: exact when the weight counted in the
    /// window is what holds it back; a look again one slot later when it is the weight
    /// in flight (its answers will tell).
    pub(crate) at: Instant,
    /// Whether `at` only bounds a wait for the shared store's answer (a lease asked
    /// for), which may come at any time before: no wait is known.
    pub(crate) pending: bool,
}

impl ExitWindow {
    /// An exit that may spend `budget` per `window` (not zero), nothing spent, its slots
    /// counted from `now`.
    pub(crate) fn new(budget: u32, window: Duration, now: Instant) -> Self {
        Self {
            budget: u64::from(budget),
            slot: (window / SLOTS).max(Duration::from_micros(1)),
            origin: now,
            ring: [0; RING],
            head: 0,
            answered: 0,
            in_flight: 0,
            counted: None,
            abandoned_until: None,
            settled: 0,
        }
    }

    fn slot_of(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos() / self.slot.as_nanos()).unwrap_or(u64::MAX)
    }

    fn start_of(&self, slot: u64) -> Instant {
        let nanos = u64::try_from(self.slot.as_nanos()).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(nanos.saturating_mul(slot))
    }

    /// Moves the ring to `now`: slots older than the window are emptied.
    fn advance(&mut self, now: Instant) {
        let now = self.slot_of(now);
        if now <= self.head {
            return;
        }
        let gone = (now - self.head).min(RING as u64);
        for k in 1..=gone {
            let i = ((self.head + k) % RING as u64) as usize;
            self.answered -= self.ring[i];
            self.ring[i] = 0;
        }
        self.head = now;
    }

    /// The weight counted now: answered in the window, in flight, and reported by the
    /// exchange beyond those.
    pub(crate) fn used(&mut self, now: Instant) -> u64 {
        self.advance(now);
        self.answered + self.in_flight
    }

    /// The weight sent and not answered.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// The budget.
    pub(crate) fn budget(&self) -> u64 {
        self.budget
    }

    /// Lets `weight` through now if the budget has room for it (it counts as in flight
    /// until [`answered`](Self::answered) or [`give_back`](Self::give_back)); else when
    /// enough could be free.
    pub(crate) fn take(&mut self, weight: u32, now: Instant) -> Result<(), Blocked> {
        if weight == 0 {
            // Nothing to count: never held back, even past the budget.
            return Ok(());
        }
        let weight = u64::from(weight);
        let used = self.used(now);
        if used + weight <= self.budget {
            self.in_flight += weight;
            return Ok(());
        }
        let need = used + weight - self.budget;
        if need > self.answered {
            // The weight in flight holds it back: its answers will tell.
            return Err(Blocked {
                at: self.start_of(self.head + 1),
                pending: false,
            });
        }
        // The oldest slots free first: the one whose expiry frees enough, else the newest
        // (the ring holds all the weight answered, and `need` is no more than that).
        let mut freed = 0;
        let oldest = self.head.saturating_sub(RING as u64 - 1);
        let mut frees = self.head;
        for slot in oldest..self.head {
            freed += self.ring[(slot % RING as u64) as usize];
            if freed >= need {
                frees = slot;
                break;
            }
        }
        Err(Blocked {
            at: self.start_of(frees + RING as u64),
            pending: false,
        })
    }

    /// Counts `weight` as in flight, whatever the budget says (a process's own spending,
    /// let through by a lease of the shared budget).
    pub(crate) fn charge(&mut self, weight: u32) {
        self.in_flight += u64::from(weight);
    }

    /// `weight` let through was never sent: it is no longer counted.
    pub(crate) fn give_back(&mut self, weight: u32) {
        self.in_flight -= u64::from(weight).min(self.in_flight);
    }

    /// `weight` let through as request number `seq`, when [`settled`](Self::settled) was
    /// `mark`, was answered at `now`, with
    /// the exchange's count `reported` when the answer carried one: it counts from now
    /// for a window. A count from the newest answer so far corrects ours:
    /// the count plus the weight answered since this request was sent (other than its
    /// own), since those requests may have reached the exchange after this one and be
    /// missing from its count, is
    /// - higher than ours (another process spends on the same IP): ours is raised to it,
    ///   the difference held for a window;
    /// - lower (the exchange's window moved on, as Binance's does at each minute): ours is
    ///   lowered to it, the oldest weight dropped first; only when nothing is in flight
    ///   through the exit, and no request was abandoned in the last window.
    pub(crate) fn answered(
        &mut self,
        weight: u32,
        seq: u64,
        reported: Option<u64>,
        mark: u64,
        now: Instant,
    ) {
        self.give_back(weight);
        self.advance(now);
        self.add_now(u64::from(weight));
        self.settled += u64::from(weight);
        let Some(reported) = reported else {
            return;
        };
        if self.counted.is_some_and(|newest| seq < newest) {
            return;
        }
        self.counted = Some(seq);
        // The count, and what may have reached the exchange after it.
        let since = self.settled - mark.min(self.settled);
        let target = reported + since - u64::from(weight).min(since);
        if target > self.answered {
            self.add_now(target - self.answered);
        } else if self.in_flight == 0 && self.abandoned_until.is_none_or(|t| now >= t) {
            self.drain_oldest(self.answered - target);
        }
    }

    /// All the weight answered or abandoned so far: taken when a request is let through,
    /// to tell later what was answered after it.
    pub(crate) fn settled(&self) -> u64 {
        self.settled
    }

    /// `weight` let through was abandoned unanswered at `now` (its request failed or was
    /// dropped after it may have been sent): it counts from now for a window, and the
    /// exchange's count may not lower ours for that window.
    pub(crate) fn abandoned(&mut self, weight: u32, now: Instant) {
        self.give_back(weight);
        self.advance(now);
        self.add_now(u64::from(weight));
        self.settled += u64::from(weight);
        self.abandoned_until = Some(now + self.slot * RING as u32);
    }

    /// Checks the running total against the ring (for tests and fuzzing).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn check(&self) {
        assert_eq!(
            self.answered,
            self.ring.iter().sum::<u64>(),
            "the running total"
        );
    }

    fn add_now(&mut self, weight: u64) {
        let i = (self.head % RING as u64) as usize;
        self.ring[i] += weight;
        self.answered += weight;
    }

    fn drain_oldest(&mut self, mut excess: u64) {
        let oldest = self.head.saturating_sub(RING as u64 - 1);
        for slot in oldest..=self.head {
            if excess == 0 {
                break;
            }
            let i = (slot % RING as u64) as usize;
            let drained = self.ring[i].min(excess);
            self.ring[i] -= drained;
            self.answered -= drained;
            excess -= drained;
        }
    }
}
