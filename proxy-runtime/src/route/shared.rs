//! The store that processes share exit state through ([`SharedSettings`]): Redis, reached
//! through the `redis` crate, with every call bounded by the settings' deadline.
//!
//! What is kept there is kept by atomic scripts that read Redis's own clock (`TIME`), so
//! the clocks of the processes play no part, and two processes never interleave inside a
//! decision. Times are whole milliseconds: a time something frees at is rounded up (now
//! plus 1 ms) and the time it is compared with rounded down, so nothing frees early:
//! - **weight leases**: a sorted set per exit, one member per lease (`ID:WEIGHT`), scored
//!   by when the lease frees. A lease is granted only while the weight of the unexpired
//!   leases plus its own stays within the budget: what every process spends plus what it
//!   holds unspent never exceeds the budget.
//! - **cooling**: a key per exit holding until when (Redis's clock, in ms) the exit cools
//!   after a 429 or 418, expiring then. Setting it publishes the key and the wait on one
//!   channel per prefix, which every process subscribes to; no lease is granted while it
//!   stands.
//!
//! A store that fails (unreachable, slow past its deadline, a wrong password, a reply that
//! is not what the script returns) is a [`StoreError`]; the callers fall back to their
//! local rule, and the store is asked again later.

// Without the `redis` feature no store is ever made (the settings' load refuses a URL):
// what only a store does is never called.
#![cfg_attr(not(feature = "redis"), allow(dead_code, unused_variables))]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::cooling::COOL_MAX;
use crate::model::shared::SharedSettings;

/// A message of the cooling channel, `KEY WAIT_MS`: the cooling key of an exit and how
/// long it cools from the publication (at most a day, as any cooling); `None` for
/// anything else.
pub(crate) fn parse_cooling(payload: &[u8]) -> Option<(&str, Duration)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (key, wait) = text.rsplit_once(' ')?;
    if key.is_empty()
        || !(1..=12).contains(&wait.len())
        || !wait.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let ms: u64 = wait.parse().ok()?;
    Some((key, Duration::from_millis(ms).min(COOL_MAX)))
}

/// Why a call to the store failed. The message never holds the store's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// No connection could be made, or it broke.
    #[error("the shared store cannot be reached: {0}")]
    Unreachable(String),
    /// The store refused the credentials of its URL.
    #[error("the shared store refused the credentials of its URL: {0}")]
    Auth(String),
    /// No answer within the deadline.
    #[error("the shared store did not answer within {0:?}")]
    Timeout(Duration),
    /// An answer that is not what the script returns.
    #[error("the shared store answered something unexpected: {0}")]
    Garbage(String),
}

impl StoreError {
    /// Its label in metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::Auth(_) => "auth",
            Self::Timeout(_) => "timeout",
            Self::Garbage(_) => "garbage",
        }
    }
}

/// What the store answered a request for a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseReply {
    /// This much weight is leased, under the id asked with.
    Granted(u32),
    /// Nothing can be leased before this much time has passed (the soonest enough frees).
    Full(Duration),
    /// The exit cools (a process was answered 429 or 418) for this much longer.
    Cooling(Duration),
}

/// The connection to the store, made at the first call and made again after a failure.
pub(crate) struct Store {
    /// The settings' URL, prefix, deadline and share.
    settings: SharedSettings,
    #[cfg(feature = "redis")]
    redis: redis_client::Client,
    /// Whether the store failed its last call (the fallback rule is in force).
    down: AtomicBool,
    /// Whether an unexpected answer was logged (once per store).
    garbage_logged: AtomicBool,
    /// Itself, for the task that listens for cooling.
    me: Weak<Store>,
    /// The exits that listen for cooling, by their cooling key.
    listeners: Mutex<HashMap<String, Vec<Listener>>>,
    /// Whether the task that listens for cooling was started.
    subscribed: OnceLock<()>,
    /// The lease ids of this process: a random stem and a counter.
    stem: u64,
    next_id: AtomicU64,
    /// When the store last failed, for a retry at most every [`RETRY`].
    failed_at: Mutex<Option<Instant>>,
}

/// What is told that an exit cools: a route's weight budgets.
pub(crate) trait CoolListener: Send + Sync {
    /// Exit `index` of the route cools for `wait` from now.
    fn cooled(&self, index: usize, wait: Duration);
}

/// An exit that listens for cooling: its route, and its index there.
type Listener = (Weak<dyn CoolListener>, usize);

/// The keys of one exit's state in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitKeys {
    /// Its weight leases (a sorted set).
    pub(crate) weight: String,
    /// Until when it cools (a string of ms on the store's clock, expiring then).
    pub(crate) cool: String,
    /// Its places of the connection budget (a sorted set).
    pub(crate) connect: String,
}

/// The cooling channel's connection is made again this often.
#[cfg(feature = "redis")]
const RESUBSCRIBE: Duration = Duration::from_secs(60);

/// While the store is down, it is asked again at most this often.
pub(crate) const RETRY: Duration = Duration::from_secs(1);

/// One call to the store, bounded and accounted by [`Store::call`]: `$call`, a future on
/// `self.redis`, where this build has a Redis client; else an error (no store is made
/// without one: the settings' load refuses a URL).
macro_rules! on_redis {
    ($self:ident, $op:literal, $call:expr) => {
        $self
            .call($op, async {
                #[cfg(feature = "redis")]
                {
                    $call.await
                }
                #[cfg(not(feature = "redis"))]
                {
                    Err(StoreError::Unreachable(
                        "no Redis client in this build".into(),
                    ))
                }
            })
            .await
    };
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.settings.url())
            .field("prefix", &self.settings.prefix())
            .field("down", &self.down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store `settings` name; `None` when they name none (or this build has no Redis
    /// client, which the settings' load refuses).
    pub(crate) fn new(settings: &SharedSettings) -> Option<Arc<Self>> {
        let url = settings.url()?;
        #[cfg(not(feature = "redis"))]
        {
            let _ = url;
            None
        }
        #[cfg(feature = "redis")]
        {
            let redis = redis_client::Client::new(url, settings.timeout());
            Some(Arc::new_cyclic(|me| Self {
                me: me.clone(),
                redis,
                settings: settings.clone(),
                down: AtomicBool::new(false),
                garbage_logged: AtomicBool::new(false),
                stem: fastrand::u64(..),
                next_id: AtomicU64::new(0),
                failed_at: Mutex::new(None),
                listeners: Mutex::new(HashMap::new()),
                subscribed: OnceLock::new(),
            }))
        }
    }

    /// How many routes listen for the cooling at `cool_key`.
    #[cfg(all(test, feature = "redis"))]
    pub(crate) fn listening(&self, cool_key: &str) -> usize {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.get(cool_key).map_or(0, Vec::len)
    }

    /// Has `weights` told when exit `index` (whose cooling is kept at `cool_key`) cools,
    /// by any process, for as long as it lives.
    pub(crate) fn listen(&self, cool_key: &str, weights: Weak<dyn CoolListener>, index: usize) {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let list = listeners.entry(cool_key.to_owned()).or_default();
        list.retain(|(w, _)| w.strong_count() > 0);
        list.push((weights, index));
    }

    /// Tells the listeners of `cool_key` that it cools for `wait`.
    pub(crate) fn cooled(&self, cool_key: &str, wait: Duration) {
        let listeners: Vec<(Arc<dyn CoolListener>, usize)> = {
            let listeners = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            listeners
                .get(cool_key)
                .into_iter()
                .flatten()
                .filter_map(|(w, i)| Some((w.upgrade()?, *i)))
                .collect()
        };
        for (weights, i) in listeners {
            weights.cooled(i, wait);
        }
    }

    /// Starts the task that listens to the cooling channel, for as long as the store
    /// lives: once; outside a runtime, never. After each (re)connection it reads the
    /// cooling of every exit listened for, so that none published meanwhile is missed.
    pub(crate) fn subscribe(&self) {
        self.subscribed.get_or_init(|| {
            #[cfg(feature = "redis")]
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(redis_client::listen(self.me.clone()));
            }
        });
    }

    /// The settings it was made from.
    pub(crate) fn settings(&self) -> &SharedSettings {
        &self.settings
    }

    /// Whether the last call failed: the local rule is in force.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether the store may be asked now: always while it answers, else once per
    /// [`RETRY`].
    pub(crate) fn may_ask(&self, now: Instant) -> bool {
        !self.is_down()
            || self
                .failed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none_or(|at| now >= at + RETRY)
    }

    /// The keys of `exchange`'s exit `exit`: the prefix, the kind of state, then the
    /// exchange and the exit in one hash tag (a cluster keeps an exit's keys together).
    pub(crate) fn keys(&self, exchange: &str, exit: &str) -> ExitKeys {
        let key = |kind: &str| format!("{}:{kind}:{{{exchange}:{exit}}}", self.settings.prefix());
        ExitKeys {
            weight: key("weight"),
            cool: key("cool"),
            connect: key("connect"),
        }
    }

    /// The channel the exits' cooling is published on.
    fn channel(&self) -> String {
        format!("{}:cooling", self.settings.prefix())
    }

    /// A lease id no other lease of any process has (a random stem and a counter).
    pub(crate) fn lease_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:x}", self.stem)
    }

    /// Leases between `min` and `want` weight of the exit at `keys`, whose budget is
    /// `budget`, under `id`, held for `hold` unless settled sooner; none while it cools.
    pub(crate) async fn lease(
        &self,
        keys: &ExitKeys,
        budget: u32,
        want: u32,
        min: u32,
        hold: Duration,
        id: &str,
    ) -> Result<LeaseReply, StoreError> {
        on_redis!(
            self,
            "lease",
            self.redis.lease(keys, budget, want, min, hold, id)
        )
    }

    /// Releases the lease or place `id` at `key` that a call which failed may have taken
    /// (the store ran it, the answer was lost): once the store answers, retried each
    /// [`RETRY`] until done or until `until`, when the store's hold has freed it anyway.
    /// Outside a runtime, left to its hold.
    pub(crate) fn release_later(&self, key: &str, id: &str, until: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key, id) = (self.me.clone(), key.to_owned(), id.to_owned());
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(RETRY).await;
                let Some(store) = store.upgrade() else {
                    return;
                };
                let now = Instant::now();
                if now >= until {
                    return;
                }
                if store.may_ask(now) && store.release(&key, &id).await.is_ok() {
                    return;
                }
            }
        });
    }

    /// Removes the lease or place `id` at `key`, whatever it holds.
    async fn release(&self, key: &str, id: &str) -> Result<(), StoreError> {
        on_redis!(self, "release", self.redis.release(key, id))
    }

    /// Tells every process that the exit at `keys` cools for `wait` (from the store's
    /// clock): no lease is granted before it ends, and the processes that subscribe stop
    /// sending through it.
    pub(crate) async fn cool(&self, keys: &ExitKeys, wait: Duration) -> Result<(), StoreError> {
        on_redis!(
            self,
            "cool",
            self.redis.cool(&keys.cool, &self.channel(), wait)
        )
    }

    /// Asks the store whether it answers (`PING`).
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_redis!(self, "ping", self.redis.ping())
    }

    /// What the store holds for the exit at `keys` now: the weight of its unexpired
    /// leases, how long it still cools, and its connection places taken.
    pub(crate) async fn exit_state(
        &self,
        keys: &ExitKeys,
    ) -> Result<(u32, Option<Duration>, u32), StoreError> {
        on_redis!(self, "read", self.redis.exit_state(keys))
    }

    /// Takes a place of the connection budget of `connects` kept at `key`, under `id`,
    /// held for `hold` unless its end is told sooner: `None` when taken, else how long
    /// until one frees.
    pub(crate) async fn connect(
        &self,
        key: &str,
        connects: u32,
        hold: Duration,
        id: &str,
    ) -> Result<Option<Duration>, StoreError> {
        on_redis!(self, "connect", self.redis.connect(key, connects, hold, id))
    }

    /// The attempt of the place `id` at `key` ended: its place frees `hold` from now (at
    /// once for a zero `hold`: it never dialed).
    pub(crate) async fn connect_end(
        &self,
        key: &str,
        id: &str,
        hold: Duration,
    ) -> Result<(), StoreError> {
        on_redis!(self, "connect_end", self.redis.connect_end(key, id, hold))
    }

    /// Settles the lease `id` of `amount` at `key`: it now holds `spent` (what was spent
    /// from it; the rest is free at once) until `hold` from now.
    pub(crate) async fn settle(
        &self,
        key: &str,
        id: &str,
        amount: u32,
        spent: u32,
        hold: Duration,
    ) -> Result<(), StoreError> {
        on_redis!(
            self,
            "settle",
            self.redis.settle(key, id, amount, spent, hold)
        )
    }

    /// Runs one call within the deadline, times it, and keeps the store's health: the
    /// first failure of an outage is logged once at warn level and counted, the first
    /// success after it logged at info level.
    async fn call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let deadline = self.settings.timeout();
        let result = match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout(deadline)),
        };
        metrics::histogram!("proxy_shared_call_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        #[cfg(feature = "redis")]
        if let Err(StoreError::Timeout(_)) = &result {
            // A connection that did not answer in time is not asked again.
            self.redis.forget().await;
        }
        match &result {
            // The store answers, but not what the script returns, for one exit's keys
            // (something else wrote there): that exit spends its share, the others go on.
            Err(e @ StoreError::Garbage(_)) => {
                if !self.garbage_logged.swap(true, Ordering::Relaxed) {
                    metrics::counter!("proxy_shared_fallbacks_total", "error" => e.label())
                        .increment(1);
                    tracing::warn!(
                        store = %self.url_shown(),
                        error = %e,
                        "an exit's state in the shared store is not this library's: that exit spends its share (budget over `processes`) locally (logged once)"
                    );
                }
            }
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    metrics::gauge!("proxy_shared_fallback").set(0.0);
                    tracing::info!(
                        store = %self.url_shown(),
                        "the shared store answers again: exit state is shared again"
                    );
                }
            }
            Err(e) => {
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                if !self.down.swap(true, Ordering::Relaxed) {
                    metrics::counter!("proxy_shared_fallbacks_total", "error" => e.label())
                        .increment(1);
                    metrics::gauge!("proxy_shared_fallback").set(1.0);
                    tracing::warn!(
                        store = %self.url_shown(),
                        error = %e,
                        processes = self.settings.processes(),
                        "the shared store failed: each exit spends its budget over `processes` locally until it answers (logged once per outage)"
                    );
                }
            }
        }
        result
    }

    fn url_shown(&self) -> String {
        self.settings
            .url()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

/// The Redis side: the connection and the scripts.
#[cfg(feature = "redis")]
mod redis_client {
    use std::time::Duration;

    use redis::aio::MultiplexedConnection;
    use redis::{AsyncConnectionConfig, ErrorKind, RedisError, Script, Value};

    use std::sync::Weak;

    use super::{COOL_MAX, ExitKeys, LeaseReply, Store, StoreError};
    use crate::model::shared::SharedUrl;
    use crate::redact::redact_text;

    /// Grants a lease: drops the expired ones, sums the others, and adds one when the
    /// budget has room for at least `min`; else says when enough frees. A member that is
    /// not `ID:WEIGHT` stops it with an error (nothing of this library wrote it).
    const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local budget, want, min, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cool = tonumber(redis.call('GET', KEYS[2]) or '0')
if cool == nil then
  return redis.error_reply('COOLGARBAGE ' .. KEYS[2] .. ' is not a time')
end
if cool > now then
  return {-1, cool - now}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local leases = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local weights = {}
local used = 0
for i = 1, #leases, 2 do
  local w = tonumber(string.match(leases[i], '^[%w]+:(%d+)$') or '')
  if w == nil then
    return redis.error_reply('LEASEGARBAGE a member of ' .. KEYS[1] .. ' is not ID:WEIGHT')
  end
  weights[#weights + 1] = w
  used = used + w
end
local left = budget - used
if left >= min then
  local grant = math.min(want, left)
  redis.call('ZADD', KEYS[1], now + 1 + hold, ARGV[5] .. ':' .. grant)
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
  return {grant, 0}
end
for i = 1, #weights do
  left = left + weights[i]
  if left >= min then
    return {0, math.max(tonumber(leases[2 * i]) - now, 1)}
  end
end
return {0, hold}
";

    /// Cools an exit: its key holds the later of its time and now + the wait, expiring
    /// then, and the key and the wait are published when the time moved.
    const COOL: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = tonumber(ARGV[2])
local old = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if now + 1 + wait > old then
  redis.call('SET', KEYS[1], now + 1 + wait, 'PXAT', now + 1 + wait)
  redis.call('PUBLISH', ARGV[1], KEYS[1] .. ' ' .. wait)
end
return 1
";

    /// Takes a place of a connection budget: drops the places expired, and adds one when
    /// fewer than the budget remain; else says when the soonest frees.
    const CONNECT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + 1 + tonumber(ARGV[2]), ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(tonumber(first[2]) - now, 1)}
";

    /// Ends a place's attempt: it frees the hold from now, or at once for a hold of 0.
    const CONNECT_END: &str = r"
if tonumber(ARGV[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', now + 1 + tonumber(ARGV[2]), ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
end
return 1
";

    /// Reads an exit's state without changing it: the weight of the unexpired leases,
    /// the ms it still cools (0: not), the connection places unexpired.
    const READ: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  held = held + (tonumber(string.match(member, ':(%d+)$') or '0') or 0)
end
local cool = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local places = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
return {held, math.max(cool - now, 0), places}
";

    /// Removes a lease (`ID:WEIGHT`) or a place (`ID`) by its id.
    const RELEASE: &str = r"
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if member == ARGV[1] or string.sub(member, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
    redis.call('ZREM', KEYS[1], member)
  end
end
return 1
";

    /// Settles a lease: its member is replaced by one of the weight spent, held from now
    /// (nothing spent: removed).
    const SETTLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
local spent = tonumber(ARGV[3])
if spent > 0 then
  redis.call('ZADD', KEYS[1], now + 1 + tonumber(ARGV[4]), ARGV[1] .. ':' .. spent)
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1000)
end
return 1
";

    pub(super) struct Client {
        client: Result<redis::Client, StoreError>,
        config: AsyncConnectionConfig,
        connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
        lease: Script,
        settle: Script,
        cool: Script,
        read: Script,
        release: Script,
        connect: Script,
        connect_end: Script,
        timeout: Duration,
    }

    impl Client {
        /// The client of `url`. A URL the crate cannot read (this crate's check let it
        /// through) makes a client whose every call fails: the processes then keep to
        /// their shares, never to whole budgets of their own.
        pub(super) fn new(url: &SharedUrl, timeout: Duration) -> Self {
            let client = redis::Client::open(url.unredacted()).map_err(|e| {
                let e = store_error(e, timeout);
                tracing::error!(store = %url, error = %e, "the shared store's URL cannot be used: each process keeps to its share");
                e
            });
            Self {
                client,
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout)),
                connection: tokio::sync::Mutex::new(None),
                lease: Script::new(LEASE),
                settle: Script::new(SETTLE),
                cool: Script::new(COOL),
                read: Script::new(READ),
                release: Script::new(RELEASE),
                connect: Script::new(CONNECT),
                connect_end: Script::new(CONNECT_END),
                timeout,
            }
        }

        /// The connection, made when there is none.
        async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
            let mut held = self.connection.lock().await;
            if let Some(c) = held.as_ref() {
                return Ok(c.clone());
            }
            let made = self
                .client
                .as_ref()
                .map_err(Clone::clone)?
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
                .map_err(|e| store_error(e, self.timeout))?;
            *held = Some(made.clone());
            Ok(made)
        }

        /// Forgets the connection after a failure that may have broken it: the next call
        /// makes a new one (a restarted Redis, a password changed).
        pub(super) async fn forget(&self) {
            *self.connection.lock().await = None;
        }

        async fn run<T>(
            &self,
            script: &Script,
            keys: &[&str],
            args: &[String],
            read: impl FnOnce(Value) -> Result<T, StoreError>,
        ) -> Result<T, StoreError> {
            let mut connection = self.connection().await?;
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(*key);
            }
            for arg in args {
                invocation.arg(arg);
            }
            match invocation.invoke_async::<Value>(&mut connection).await {
                Ok(value) => read(value),
                Err(e) => {
                    let error = store_error(e, self.timeout);
                    if !matches!(error, StoreError::Garbage(_)) {
                        self.forget().await;
                    }
                    Err(error)
                }
            }
        }

        pub(super) async fn lease(
            &self,
            keys: &ExitKeys,
            budget: u32,
            want: u32,
            min: u32,
            hold: Duration,
            id: &str,
        ) -> Result<LeaseReply, StoreError> {
            let args = [
                budget.to_string(),
                want.to_string(),
                min.to_string(),
                ms_up(hold).to_string(),
                id.to_owned(),
            ];
            let keys = [keys.weight.as_str(), keys.cool.as_str()];
            self.run(&self.lease, &keys, &args, |value| match two_ints(&value) {
                Some((granted, _)) if granted > 0 => u32::try_from(granted)
                    .ok()
                    .filter(|&g| g <= want)
                    .map(LeaseReply::Granted)
                    .ok_or_else(|| garbage(&value)),
                Some((0, wait)) if wait > 0 => Ok(LeaseReply::Full(millis(wait))),
                Some((-1, wait)) if wait > 0 => Ok(LeaseReply::Cooling(millis(wait).min(COOL_MAX))),
                _ => Err(garbage(&value)),
            })
            .await
        }

        pub(super) async fn settle(
            &self,
            key: &str,
            id: &str,
            amount: u32,
            spent: u32,
            hold: Duration,
        ) -> Result<(), StoreError> {
            let args = [
                id.to_owned(),
                amount.to_string(),
                spent.to_string(),
                ms_up(hold).to_string(),
            ];
            self.run(&self.settle, &[key], &args, |value| match value {
                Value::Int(1) => Ok(()),
                other => Err(garbage(&other)),
            })
            .await
        }
    }

    /// Listens to the cooling channel of `store` until it is dropped: connects, subscribes,
    /// reads the cooling of every exit listened for, then applies each message; a
    /// connection that fails or breaks is made again after [`RETRY`](super::RETRY).
    pub(super) async fn listen(store: Weak<Store>) {
        use futures_util::StreamExt;
        loop {
            let Some(strong) = store.upgrade() else {
                return;
            };
            let timeout = strong.settings.timeout();
            let channel = strong.channel();
            let connected = tokio::time::timeout(timeout, async {
                let client = strong.redis.client.as_ref().map_err(Clone::clone)?;
                let mut pubsub = client
                    .get_async_pubsub()
                    .await
                    .map_err(|e| store_error(e, timeout))?;
                pubsub
                    .subscribe(&channel)
                    .await
                    .map_err(|e| store_error(e, timeout))?;
                Ok::<_, StoreError>(pubsub)
            })
            .await;
            if let Ok(Ok(pubsub)) = connected {
                strong.catch_up().await;
                drop(strong);
                let mut messages = pubsub.into_on_message();
                // Made again now and then, with the state read again: a connection that
                // died without a word (a half-open socket) misses nothing for long.
                let fresh_until = tokio::time::Instant::now() + super::RESUBSCRIBE;
                while tokio::time::Instant::now() < fresh_until {
                    // The store is looked for at least once per retry: a store dropped
                    // while the channel is quiet ends the task.
                    let next = tokio::time::timeout(super::RETRY, messages.next()).await;
                    let Some(strong) = store.upgrade() else {
                        return;
                    };
                    match next {
                        Ok(Some(message)) => {
                            match super::parse_cooling(message.get_payload_bytes()) {
                                Some((key, wait)) => strong.cooled(key, wait),
                                None => tracing::warn!(
                                    "a message of the shared store's cooling channel is not KEY WAIT_MS: ignored"
                                ),
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
            } else {
                drop(strong);
            }
            tokio::time::sleep(super::RETRY).await;
        }
    }

    impl Store {
        /// Reads the cooling of every exit listened for, and tells their listeners.
        async fn catch_up(&self) {
            let keys: Vec<String> = self
                .listeners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .keys()
                .cloned()
                .collect();
            for key in keys {
                let left = self
                    .call("cooling", async {
                        let mut connection = self.redis.connection().await?;
                        redis::cmd("PTTL")
                            .arg(&key)
                            .query_async::<i64>(&mut connection)
                            .await
                            .map_err(|e| store_error(e, self.settings.timeout()))
                    })
                    .await;
                if let Ok(ms) = left
                    && ms > 0
                {
                    self.cooled(&key, millis(ms).min(COOL_MAX));
                }
            }
        }
    }

    /// `d` in whole ms, rounded up: a hold is never shorter than asked.
    fn ms_up(d: Duration) -> u128 {
        d.as_nanos().div_ceil(1_000_000)
    }

    fn millis(ms: i64) -> Duration {
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    impl Client {
        pub(super) async fn release(&self, key: &str, id: &str) -> Result<(), StoreError> {
            self.run(
                &self.release,
                &[key],
                &[id.to_owned()],
                |value| match value {
                    Value::Int(1) => Ok(()),
                    other => Err(garbage(&other)),
                },
            )
            .await
        }

        pub(super) async fn ping(&self) -> Result<(), StoreError> {
            let mut connection = self.connection().await?;
            match redis::cmd("PING")
                .query_async::<Value>(&mut connection)
                .await
            {
                Ok(Value::SimpleString(pong)) if pong == "PONG" => Ok(()),
                Ok(other) => Err(garbage(&other)),
                Err(e) => {
                    let error = store_error(e, self.timeout);
                    self.forget().await;
                    Err(error)
                }
            }
        }

        pub(super) async fn exit_state(
            &self,
            keys: &ExitKeys,
        ) -> Result<(u32, Option<Duration>, u32), StoreError> {
            let keys = [
                keys.weight.as_str(),
                keys.cool.as_str(),
                keys.connect.as_str(),
            ];
            self.run(&self.read, &keys, &[], |value| match &value {
                Value::Array(items) => match items.as_slice() {
                    [Value::Int(held), Value::Int(cool), Value::Int(places)] => Ok((
                        u32::try_from(*held).unwrap_or(u32::MAX),
                        (*cool > 0).then(|| millis(*cool)),
                        u32::try_from(*places).unwrap_or(u32::MAX),
                    )),
                    _ => Err(garbage(&value)),
                },
                _ => Err(garbage(&value)),
            })
            .await
        }

        pub(super) async fn connect(
            &self,
            key: &str,
            connects: u32,
            hold: Duration,
            id: &str,
        ) -> Result<Option<Duration>, StoreError> {
            let args = [connects.to_string(), ms_up(hold).to_string(), id.to_owned()];
            self.run(&self.connect, &[key], &args, |value| {
                match two_ints(&value) {
                    Some((1, 0)) => Ok(None),
                    Some((0, wait)) if wait > 0 => Ok(Some(millis(wait))),
                    _ => Err(garbage(&value)),
                }
            })
            .await
        }

        pub(super) async fn connect_end(
            &self,
            key: &str,
            id: &str,
            hold: Duration,
        ) -> Result<(), StoreError> {
            let args = [id.to_owned(), ms_up(hold).to_string()];
            self.run(&self.connect_end, &[key], &args, |value| match value {
                Value::Int(1) => Ok(()),
                other => Err(garbage(&other)),
            })
            .await
        }

        pub(super) async fn cool(
            &self,
            key: &str,
            channel: &str,
            wait: Duration,
        ) -> Result<(), StoreError> {
            let args = [channel.to_owned(), ms_up(wait).max(1).to_string()];
            self.run(&self.cool, &[key], &args, |value| match value {
                Value::Int(1) => Ok(()),
                other => Err(garbage(&other)),
            })
            .await
        }
    }

    fn two_ints(value: &Value) -> Option<(i64, i64)> {
        match value {
            Value::Array(items) => match items.as_slice() {
                [Value::Int(a), Value::Int(b)] => Some((*a, *b)),
                _ => None,
            },
            _ => None,
        }
    }

    /// An unexpected reply, described by its shape (never its content: it may be
    /// anything).
    fn garbage(value: &Value) -> StoreError {
        let shape = match value {
            Value::Nil => "nil",
            Value::Int(_) => "an integer",
            Value::Array(_) => "an array",
            Value::SimpleString(_) | Value::BulkString(_) => "a string",
            _ => "a value of another type",
        };
        StoreError::Garbage(format!("{shape} where the script returns its own reply"))
    }

    fn store_error(e: RedisError, timeout: Duration) -> StoreError {
        let text = redact_text(&e.to_string()).into_owned();
        match e.kind() {
            ErrorKind::AuthenticationFailed => StoreError::Auth(text),
            _ if e.is_timeout() => StoreError::Timeout(timeout),
            _ if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() => {
                StoreError::Unreachable(text)
            }
            _ if e.code() == Some("NOAUTH") || e.code() == Some("WRONGPASS") => {
                StoreError::Auth(text)
            }
            _ => StoreError::Garbage(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cooling_message_is_a_key_a_space_and_1_to_12_digits_of_ms_at_most_a_day() {
        let key = "p:cool:{binance:127.0.0.2}";
        assert_eq!(
            parse_cooling(format!("{key} 3000").as_bytes()),
            Some((key, Duration::from_millis(3000)))
        );
        assert_eq!(
            parse_cooling(b"k 999999999999"),
            Some(("k", COOL_MAX)),
            "at most a day"
        );
        // The last space splits: a key may hold spaces of its own.
        assert_eq!(
            parse_cooling(b"a b 7"),
            Some(("a b", Duration::from_millis(7)))
        );
        for bad in [
            &b" 3000"[..],
            b"k ",
            b"k 1234567890123",
            b"k 12a",
            b"k -1",
            b"k +1",
            b"nospace",
            b"",
            b"k \xff1",
            b"\xff 1",
        ] {
            assert_eq!(
                parse_cooling(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_store_is_shown_with_its_password_masked_and_names_its_keys_by_exit() {
        use crate::model::shared::SharedUrl;
        let settings = SharedSettings::new()
            .with_url(SharedUrl::new("redis://u:hunter2@h:1/0").unwrap())
            .with_prefix("desk");
        let store = Store::new(&settings).expect("a store");
        let shown = format!("{store:?}");
        assert!(
            shown.starts_with(
                "Store { url: Some(SharedUrl(redis://u:***@h:1/0)), prefix: \"desk\", down: false"
            ),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"));
        let keys = store.keys("binance", "10.0.0.1:1080");
        assert_eq!(keys.weight, "desk:weight:{binance:10.0.0.1:1080}");
        assert_eq!(keys.cool, "desk:cool:{binance:10.0.0.1:1080}");
        assert_eq!(keys.connect, "desk:connect:{binance:10.0.0.1:1080}");
        assert_eq!(store.channel(), "desk:cooling");
        assert_ne!(store.lease_id(), store.lease_id(), "ids never repeat");
        assert!(
            Store::new(&SharedSettings::new()).is_none(),
            "no URL, no store"
        );
    }
}
