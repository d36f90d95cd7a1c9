//! The connection budget of one exit: at most `connects` new WebSocket connections per
//! `window`, so that a fleet of streams reconnecting at once (a proxy restarted under 200
//! subscriptions) never earns the exchange's ban for connection attempts.
//!
//! An attempt holds its place in the budget from the moment it starts until `window`
//! after it ends (connected or failed): the exchange sees the connection somewhere in
//! between, so two attempts the budget separates are seen at least `window` apart,
//! whatever each took to dial. An attempt that finds the budget spent waits, first come
//! first served, until a place frees; nothing is refused.
//!
//! With a shared store ([`super::shared`]), the budget is every process's: an attempt
//! takes its place in this process (first come first served here), then a place in the
//! store, which every process using the exit counts against the one budget; it waits, as
//! long as the store says, when the store has none. While the store is down, the process
//! keeps to its share (the budget over the expected number of processes, at least one),
//! counted from every attempt it made, in the store's time too.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::shared::Store;

/// The budget of one exit (a pool member, or the direct route).
#[derive(Debug)]
pub(crate) struct ConnectBudget {
    connects: usize,
    window: Duration,
    state: Mutex<State>,
    /// Wakes the waiters when an attempt ends (its place's expiry becomes known).
    ended: Notify,
    /// The budget of every process, when it is shared through a store.
    shared: Option<Shared>,
}

/// A budget shared through a store.
#[derive(Debug)]
struct Shared {
    store: Arc<Store>,
    /// The exit's key of places.
    key: String,
    /// How long the store holds a place whose attempt is never said to end (its process
    /// died): the longest attempt, and a window.
    hold: Duration,
    /// This process's share: the rule while the store is down. Every attempt is counted
    /// in it, in the store's time too.
    share: Arc<ConnectBudget>,
}

#[derive(Debug, Default)]
struct State {
    /// The places taken, oldest first: `None` while the attempt runs, else when it ended.
    places: VecDeque<(u64, Option<Instant>)>,
    next_id: u64,
    /// The waiters, in arrival order: only the first may take a freed place.
    queue: VecDeque<u64>,
}

impl State {
    /// Forgets the places that freed by `now`: their attempt ended a `window` ago.
    fn prune(&mut self, window: Duration, now: Instant) {
        self.places
            .retain(|(_, end)| end.is_none_or(|end| end + window > now));
    }
}

/// A place in the budget, held by one connection attempt; dropping it ends the attempt
/// (its place frees `window` later).
#[derive(Debug)]
pub(crate) struct Place {
    budget: Arc<ConnectBudget>,
    id: u64,
    /// Its place in the budget of every process, when shared.
    shared: Option<SharedPlace>,
}

/// A place in a shared budget: in the store, or in the process's share while the store
/// was down.
#[derive(Debug)]
enum SharedPlace {
    Store {
        store: Arc<Store>,
        key: String,
        id: String,
        window: Duration,
        /// The attempt's place in the process's share, ended with it.
        share: Box<Place>,
    },
    Share(Box<Place>),
}

impl ConnectBudget {
    /// A budget of `connects` (at least one) per `window`.
    pub(crate) fn new(connects: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self::local(connects, window))
    }

    fn local(connects: u32, window: Duration) -> Self {
        Self {
            connects: usize::try_from(connects.max(1)).unwrap_or(usize::MAX),
            window,
            state: Mutex::new(State::default()),
            ended: Notify::new(),
            shared: None,
        }
    }

    /// A budget of `connects` per `window` for every process using the exit whose places
    /// are kept at `key` in `store`, of which this process's share is
    /// `connects / processes` while the store is down. An attempt not said to end frees
    /// its place in the store after `longest` and a window.
    pub(crate) fn shared(
        connects: u32,
        window: Duration,
        store: &Arc<Store>,
        key: String,
        longest: Duration,
    ) -> Arc<Self> {
        let processes = store.settings().processes();
        Arc::new(Self {
            shared: Some(Shared {
                store: store.clone(),
                key,
                hold: longest + window,
                share: Self::new((connects / processes).max(1), window),
            }),
            ..Self::local(connects, window)
        })
    }

    /// A place for an attempt that starts now without waiting its turn (one the store
    /// let through, counted in the process's share as any attempt is: until a window
    /// after it ends).
    fn record(self: &Arc<Self>) -> Place {
        let mut state = self.state();
        state.prune(self.window, Instant::now());
        let id = state.next_id;
        state.next_id += 1;
        state.places.push_back((id, None));
        Place {
            budget: self.clone(),
            id,
            shared: None,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place, waiting (in arrival order) until one is free, and then, when the
    /// budget is shared, until the store has one; returns it with how long the wait took.
    /// Cancelling the wait gives up its turn.
    pub(crate) async fn take(self: &Arc<Self>) -> (Place, Duration) {
        let start = Instant::now();
        let (mut place, _) = self.take_here().await;
        if let Some(shared) = &self.shared {
            place.shared = Some(shared.take(self.connects, self.window).await);
        }
        (place, start.elapsed())
    }

    /// A place in this process, in arrival order.
    async fn take_here(self: &Arc<Self>) -> (Place, Duration) {
        let start = Instant::now();
        let ticket = {
            let mut state = self.state();
            let ticket = state.next_id;
            state.next_id += 1;
            state.queue.push_back(ticket);
            ticket
        };
        let mut turn = Turn {
            budget: self,
            ticket,
            done: false,
        };
        loop {
            let mut ended = pin!(self.ended.notified());
            // Registered before the check: an attempt that ends after it wakes this one.
            ended.as_mut().enable();
            let wake_at = {
                let mut state = self.state();
                state.prune(self.window, Instant::now());
                if state.places.len() < self.connects && state.queue.front() == Some(&ticket) {
                    state.queue.pop_front();
                    state.places.push_back((ticket, None));
                    turn.done = true;
                    drop(state);
                    // The next in line may find a place too.
                    self.ended.notify_waiters();
                    return (
                        Place {
                            budget: self.clone(),
                            id: ticket,
                            shared: None,
                        },
                        start.elapsed(),
                    );
                }
                // The soonest a place frees, if any attempt has ended; else the end of an
                // attempt wakes this one.
                state
                    .places
                    .iter()
                    .filter_map(|(_, end)| end.map(|end| end + self.window))
                    .min()
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = ended => {}
                    }
                }
                None => ended.await,
            }
        }
    }

    /// The places taken now (running attempts, and ended ones within their window).
    #[cfg(test)]
    fn taken(&self) -> usize {
        let now = Instant::now();
        let state = self.state();
        state
            .places
            .iter()
            .filter(|(_, end)| end.is_none_or(|end| end + self.window > now))
            .count()
    }
}

/// A waiter's turn: leaves the queue when the wait is cancelled.
struct Turn<'a> {
    budget: &'a ConnectBudget,
    ticket: u64,
    done: bool,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.budget.state();
            state.queue.retain(|&t| t != self.ticket);
            drop(state);
            self.budget.ended.notify_waiters();
        }
    }
}

impl Shared {
    /// A place in the store, waiting as long as it says; the process's share while the
    /// store is down.
    async fn take(&self, connects: usize, window: Duration) -> SharedPlace {
        let connects = u32::try_from(connects).unwrap_or(u32::MAX);
        loop {
            if self.store.may_ask(Instant::now()) {
                let id = self.store.lease_id();
                match self
                    .store
                    .connect(&self.key, connects, self.hold, &id)
                    .await
                {
                    Ok(None) => {
                        return SharedPlace::Store {
                            store: self.store.clone(),
                            key: self.key.clone(),
                            id,
                            window,
                            share: Box::new(self.share.record()),
                        };
                    }
                    Ok(Some(wait)) => {
                        // The soonest place may be an attempt that is about to end (its
                        // end told a moment later): asked again within an eighth of the
                        // window, and processes that wait for the same place do not ask
                        // at once.
                        let poll = (window / 8).max(Duration::from_millis(10));
                        let jitter = Duration::from_millis(fastrand::u64(0..=10));
                        tokio::time::sleep(wait.min(poll) + jitter).await;
                        continue;
                    }
                    Err(_) => {
                        // The store may have taken the place before the call failed.
                        let until = Instant::now() + self.hold;
                        self.store.release_later(&self.key, &id, until);
                    }
                }
            }
            return SharedPlace::Share(Box::new(self.share.take_here().await.0));
        }
    }
}

impl SharedPlace {
    /// Tells the store how the attempt ended: its place frees a window from now, or at
    /// once when `unused`. Outside a runtime nothing is told: the place frees when the
    /// store's hold ends.
    fn end(self, unused: bool) {
        match self {
            SharedPlace::Share(place) => {
                if unused {
                    place.unused();
                }
            }
            SharedPlace::Store {
                store,
                key,
                id,
                window,
                share,
            } => {
                if unused {
                    share.unused();
                }
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let hold = if unused { Duration::ZERO } else { window };
                    runtime.spawn(async move {
                        let _ = store.connect_end(&key, &id, hold).await;
                    });
                }
            }
        }
    }
}

impl Place {
    /// Gives the place back unused: the attempt never dialed, so nothing saw it.
    pub(crate) fn unused(mut self) {
        if let Some(shared) = self.shared.take() {
            shared.end(true);
        }
        let mut state = self.budget.state();
        state.places.retain(|(id, _)| *id != self.id);
        drop(state);
        self.budget.ended.notify_waiters();
        // Its drop finds no place to end.
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.end(false);
        }
        let now = Instant::now();
        let mut state = self.budget.state();
        if let Some(place) = state.places.iter_mut().find(|(id, _)| *id == self.id) {
            place.1 = Some(now);
        }
        drop(state);
        self.budget.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn attempts_past_the_budget_wait_until_a_window_after_an_attempt_ended() {
        let budget = ConnectBudget::new(2, Duration::from_secs(10));
        let (a, waited) = budget.take().await;
        assert_eq!(waited, Duration::ZERO);
        let (b, _) = budget.take().await;
        assert_eq!(budget.taken(), 2);
        let third = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take().await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            !third.is_finished(),
            "both places are held by running attempts"
        );
        drop(a); // ends at t = 3 s: its place frees at 13 s
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert!(
            !third.is_finished(),
            "a place frees a window after its attempt ended"
        );
        let (c, waited) = third.await.unwrap();
        assert_eq!(waited, Duration::from_secs(13));
        drop((b, c));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order_and_a_cancelled_one_gives_its_turn_up() {
        let budget = ConnectBudget::new(1, Duration::from_secs(1));
        let (first, _) = budget.take().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in 0..3 {
            let (budget, order) = (budget.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let (place, _) = budget.take().await;
                order.lock().unwrap().push(n);
                drop(place);
            }));
            tokio::task::yield_now().await;
        }
        tasks.remove(1).abort();
        let start = Instant::now();
        drop(first);
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the cancelled waiter gave its turn up")
                .unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 2]);
        // Each a window after the one before ended: 1 s, then 2 s.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_place_given_back_unused_frees_at_once() {
        let budget = ConnectBudget::new(1, Duration::from_secs(60));
        let (place, _) = budget.take().await;
        let next = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take().await.1 }
        });
        tokio::task::yield_now().await;
        place.unused();
        let waited = tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("admitted at once")
            .unwrap();
        assert_eq!(waited, Duration::ZERO);
        assert_eq!(budget.taken(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_the_store_let_through_count_in_the_share_until_a_window_after_they_end() {
        let share = ConnectBudget::new(2, Duration::from_secs(10));
        let (a, b) = (share.record(), share.record());
        assert_eq!(share.taken(), 2);
        let next = tokio::spawn({
            let share = share.clone();
            async move { share.take().await.1 }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop((a, b)); // both attempts end at 5 s
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert!(
            !next.is_finished(),
            "both recorded attempts count until a window after they ended"
        );
        let waited = next.await.unwrap();
        assert_eq!(waited, Duration::from_secs(15));
        // Places long over are dropped when another is recorded: nothing piles up.
        for _ in 0..1000 {
            drop(share.record());
            tokio::time::sleep(Duration::from_secs(11)).await;
        }
        assert!(
            share.state().places.len() <= 2,
            "{}",
            share.state().places.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_of_n_admits_n_at_once() {
        let budget = ConnectBudget::new(3, Duration::from_secs(60));
        let mut places = Vec::new();
        for _ in 0..3 {
            let (place, waited) = budget.take().await;
            assert_eq!(waited, Duration::ZERO);
            places.push(place);
        }
        let fourth = tokio::time::timeout(Duration::from_secs(59), budget.take()).await;
        assert!(fourth.is_err(), "the fourth waits while three run");
    }
}
