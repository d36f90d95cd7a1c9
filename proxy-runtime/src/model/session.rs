//! The settings of resilient WebSocket sessions (`websocket_session`, beside the routes):
//! keepalive, liveness, reconnection, the connection budget per exit and planned rotation.
//!
//! Every knob is optional where it is written (the default entry, an exchange's entry, a
//! value built in code) and falls back, knob by knob, to the entry below it: an exchange's
//! to the default's, the default's to the built-in value. Durations are whole milliseconds;
//! `0` turns a feature off (no pings, no liveness limit, no budget, no rotation, no limit
//! on attempts) so that an exchange can turn off what the default turns on.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::schema::{Scalar, SettingsLeaf, deserialize_leaf, parse_int};
use proxy_derive::Settings;

/// A duration in whole milliseconds, from 0 to 30 days (a bound that keeps every deadline
/// computed from it representable). `0` means "off" where a knob says so.
///
/// ```
/// use proxy_runtime::Millis;
/// use std::time::Duration;
/// assert_eq!(Millis::new(1500).unwrap().as_duration(), Duration::from_millis(1500));
/// assert!(Millis::new(Millis::MAX + 1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(u64);

/// A duration outside 0 to 30 days.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a duration in milliseconds must be an integer from 0 to 2592000000 (30 days)")]
pub struct MillisError;

impl Millis {
    /// The longest duration, 30 days.
    pub const MAX: u64 = 30 * 24 * 3600 * 1000;

    /// Checks that `ms` is at most [`MAX`](Self::MAX).
    pub fn new(ms: u64) -> Result<Self, MillisError> {
        if ms <= Self::MAX {
            Ok(Self(ms))
        } else {
            Err(MillisError)
        }
    }

    /// `duration` in whole milliseconds (rounded down), capped at [`MAX`](Self::MAX).
    pub fn saturating(duration: Duration) -> Self {
        Self(u64::try_from(duration.as_millis()).map_or(Self::MAX, |ms| ms.min(Self::MAX)))
    }

    /// The number of milliseconds.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// The duration, or `None` for `0` (off).
    pub fn enabled(self) -> Option<Duration> {
        (self.0 > 0).then(|| self.as_duration())
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

impl SettingsLeaf for Millis {
    const EXPECTED: &'static str = "an integer from 0 to 2592000000 (milliseconds)";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        let i = parse_int(value).map_err(|_| MillisError.to_string())?;
        u64::try_from(i)
            .ok()
            .and_then(|i| Millis::new(i).ok())
            .ok_or_else(|| MillisError.to_string())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Int(i128::from(self.0))
    }
}

/// The built-in values, used where no entry gives a knob. The README gives the reason
/// for each.
mod builtin {
    pub(super) const PING_INTERVAL_MS: u64 = 10_000;
    pub(super) const DEAD_AFTER_MS: u64 = 30_000;
    pub(super) const IDLE_AFTER_MS: u64 = 0;
    pub(super) const BACKOFF_INITIAL_MS: u64 = 250;
    pub(super) const BACKOFF_MAX_MS: u64 = 30_000;
    pub(super) const MAX_ATTEMPTS: u32 = 0;
    pub(super) const STABLE_AFTER_MS: u64 = 60_000;
    pub(super) const CONNECTS: u32 = 300;
    pub(super) const WINDOW_MS: u64 = 300_000;
    pub(super) const MAX_LIFETIME_MS: u64 = 0;
    pub(super) const OVERLAP_WAIT_MS: u64 = 10_000;
}

/// How a resilient WebSocket session ([`WebSocketSession`](crate::WebSocketSession))
/// keeps itself alive: the `websocket_session` entry of the default routes and of each
/// exchange. Each knob left unset falls back to the default entry's, then to the built-in
/// value the getter documents.
///
/// ```
/// use proxy_runtime::{ProxySettings, SessionSettings};
/// use std::time::Duration;
/// let settings = ProxySettings::loader()
///     .env_vars([
///         ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__PING_INTERVAL_MS", "5000"),
///         ("CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET_SESSION__CONNECTS", "3"),
///         ("CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET_SESSION__WINDOW_MS", "1000"),
///     ])
///     .load()?;
/// let okx = settings.websocket_session("okx");
/// assert_eq!(okx.ping_interval(), Some(Duration::from_secs(5))); // the default's
/// assert_eq!(okx.connect_budget(), Some((3, Duration::from_secs(1))));
/// // In code: one knob over what the settings say.
/// let tuned = okx.with_idle_after(Duration::from_secs(60));
/// assert_eq!(tuned.idle_after(), Some(Duration::from_secs(60)));
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A WebSocket ping every this many ms (0: none).
    #[serde(default)]
    ping_interval_ms: Option<Millis>,
    /// The connection is dead when no frame at all arrives for this many ms (0: never).
    #[serde(default)]
    dead_after_ms: Option<Millis>,
    /// Reconnect when no data message arrives for this many ms (0: never).
    #[serde(default)]
    idle_after_ms: Option<Millis>,
    /// The first reconnection's backoff ceiling, in ms (full jitter below it).
    #[serde(default)]
    backoff_initial_ms: Option<Millis>,
    /// The largest backoff ceiling, in ms.
    #[serde(default)]
    backoff_max_ms: Option<Millis>,
    /// Reconnection attempts before the session ends (0: no limit).
    #[serde(default)]
    max_attempts: Option<u32>,
    /// A connection healthy for this many ms resets the attempt count.
    #[serde(default)]
    stable_after_ms: Option<Millis>,
    /// New WebSocket connections allowed per exit per window (0: no budget).
    #[serde(default)]
    connects: Option<u32>,
    /// The window of the connection budget, in ms.
    #[serde(default)]
    window_ms: Option<Millis>,
    /// A connection is replaced, make-before-break, after this many ms (0: never).
    #[serde(default)]
    max_lifetime_ms: Option<Millis>,
    /// The longest wait for the old and new connections to overlap in a rotation, in ms.
    #[serde(default)]
    overlap_wait_ms: Option<Millis>,
}

/// One knob: its own value, else the built-in one.
fn knob(value: Option<Millis>, builtin: u64) -> Millis {
    value.unwrap_or(Millis(builtin))
}

impl SessionSettings {
    /// No knob given: every one is the built-in value.
    pub fn new() -> Self {
        Self::default()
    }

    /// These knobs, each unset one taken from `fallback`.
    pub fn or(self, fallback: &SessionSettings) -> Self {
        Self {
            ping_interval_ms: self.ping_interval_ms.or(fallback.ping_interval_ms),
            dead_after_ms: self.dead_after_ms.or(fallback.dead_after_ms),
            idle_after_ms: self.idle_after_ms.or(fallback.idle_after_ms),
            backoff_initial_ms: self.backoff_initial_ms.or(fallback.backoff_initial_ms),
            backoff_max_ms: self.backoff_max_ms.or(fallback.backoff_max_ms),
            max_attempts: self.max_attempts.or(fallback.max_attempts),
            stable_after_ms: self.stable_after_ms.or(fallback.stable_after_ms),
            connects: self.connects.or(fallback.connects),
            window_ms: self.window_ms.or(fallback.window_ms),
            max_lifetime_ms: self.max_lifetime_ms.or(fallback.max_lifetime_ms),
            overlap_wait_ms: self.overlap_wait_ms.or(fallback.overlap_wait_ms),
        }
    }

    /// The ping interval (10 s built in); `None`: no pings.
    pub fn ping_interval(&self) -> Option<Duration> {
        knob(self.ping_interval_ms, builtin::PING_INTERVAL_MS).enabled()
    }

    /// How long without any frame before the connection is declared dead (30 s built
    /// in: three pings unanswered); `None`: never.
    pub fn dead_after(&self) -> Option<Duration> {
        knob(self.dead_after_ms, builtin::DEAD_AFTER_MS).enabled()
    }

    /// How long without a data message (text or binary) before the session reconnects
    /// (off built in: a quiet market is not a fault); `None`: never.
    pub fn idle_after(&self) -> Option<Duration> {
        knob(self.idle_after_ms, builtin::IDLE_AFTER_MS).enabled()
    }

    /// The backoff ceiling of the first reconnection (250 ms built in); each later one
    /// doubles it up to [`backoff_max`](Self::backoff_max). The delay is drawn uniformly
    /// below the ceiling (full jitter).
    pub fn backoff_initial(&self) -> Duration {
        knob(self.backoff_initial_ms, builtin::BACKOFF_INITIAL_MS).as_duration()
    }

    /// The largest backoff ceiling (30 s built in).
    pub fn backoff_max(&self) -> Duration {
        knob(self.backoff_max_ms, builtin::BACKOFF_MAX_MS).as_duration()
    }

    /// Reconnection attempts in a row before the session ends with the last error
    /// (no limit built in); `None`: no limit.
    pub fn max_attempts(&self) -> Option<u32> {
        let n = self.max_attempts.unwrap_or(builtin::MAX_ATTEMPTS);
        (n > 0).then_some(n)
    }

    /// How long a connection must stay up for the attempt count to start again from zero
    /// (60 s built in).
    pub fn stable_after(&self) -> Duration {
        knob(self.stable_after_ms, builtin::STABLE_AFTER_MS).as_duration()
    }

    /// The connection budget per exit: at most this many new WebSocket connections per
    /// window through one member of the route, for this exchange (300 per 5 minutes built
    /// in: Binance's limit per IP); `None`: no budget.
    pub fn connect_budget(&self) -> Option<(u32, Duration)> {
        let n = self.connects.unwrap_or(builtin::CONNECTS);
        let window = knob(self.window_ms, builtin::WINDOW_MS).enabled()?;
        (n > 0).then_some((n, window))
    }

    /// When a connection is replaced by a new one, make-before-break (off built in);
    /// `None`: never.
    pub fn max_lifetime(&self) -> Option<Duration> {
        knob(self.max_lifetime_ms, builtin::MAX_LIFETIME_MS).enabled()
    }

    /// How long a rotation waits for the two connections to overlap before it switches
    /// anyway (10 s built in).
    pub fn overlap_wait(&self) -> Duration {
        knob(self.overlap_wait_ms, builtin::OVERLAP_WAIT_MS).as_duration()
    }

    /// The same with pings every `every` (zero: none).
    pub fn with_ping_interval(self, every: Duration) -> Self {
        Self {
            ping_interval_ms: Some(Millis::saturating(every)),
            ..self
        }
    }

    /// The same declaring a connection dead after `after` without a frame (zero: never).
    pub fn with_dead_after(self, after: Duration) -> Self {
        Self {
            dead_after_ms: Some(Millis::saturating(after)),
            ..self
        }
    }

    /// The same reconnecting after `after` without a data message (zero: never).
    pub fn with_idle_after(self, after: Duration) -> Self {
        Self {
            idle_after_ms: Some(Millis::saturating(after)),
            ..self
        }
    }

    /// The same with backoff ceilings from `initial` doubling up to `max`.
    pub fn with_backoff(self, initial: Duration, max: Duration) -> Self {
        Self {
            backoff_initial_ms: Some(Millis::saturating(initial)),
            backoff_max_ms: Some(Millis::saturating(max)),
            ..self
        }
    }

    /// The same ending the session after `attempts` failed reconnections in a row (0: no
    /// limit), counted again from zero after `stable_after` of healthy connection.
    pub fn with_max_attempts(self, attempts: u32, stable_after: Duration) -> Self {
        Self {
            max_attempts: Some(attempts),
            stable_after_ms: Some(Millis::saturating(stable_after)),
            ..self
        }
    }

    /// The same with a connection budget of `connects` per `window` per exit (0: none).
    /// The budget belongs to the route, shared by every connection through it: it takes
    /// effect in the settings the injector is built from
    /// ([`ConnectionProxies::with_websocket_session`](crate::ConnectionProxies::with_websocket_session)),
    /// not in [`WebSocketSessionBuilder::settings`](crate::WebSocketSessionBuilder::settings)
    /// of one session.
    pub fn with_connect_budget(self, connects: u32, window: Duration) -> Self {
        Self {
            connects: Some(connects),
            window_ms: Some(Millis::saturating(window)),
            ..self
        }
    }

    /// The same rotating each connection after `lifetime` (zero: never), waiting at most
    /// `overlap_wait` for the overlap.
    pub fn with_max_lifetime(self, lifetime: Duration, overlap_wait: Duration) -> Self {
        Self {
            max_lifetime_ms: Some(Millis::saturating(lifetime)),
            overlap_wait_ms: Some(Millis::saturating(overlap_wait)),
            ..self
        }
    }

    /// What is wrong with these knobs taken together (each as resolved), as messages
    /// naming the keys: a dead limit within the ping interval, a backoff whose ceiling is
    /// below its start, a budget without a window.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(ping), Some(dead)) = (self.ping_interval(), self.dead_after())
            && dead <= ping
        {
            out.push(format!(
                "dead_after_ms ({}) must be greater than ping_interval_ms ({}): a quiet connection would be declared dead between two pings",
                dead.as_millis(),
                ping.as_millis()
            ));
        }
        if self.backoff_initial().is_zero() {
            out.push("backoff_initial_ms must be at least 1".to_owned());
        }
        if self.backoff_max() < self.backoff_initial() {
            out.push(format!(
                "backoff_max_ms ({}) must not be less than backoff_initial_ms ({})",
                self.backoff_max().as_millis(),
                self.backoff_initial().as_millis()
            ));
        }
        let connects = self.connects.unwrap_or(builtin::CONNECTS);
        if connects > 0 && knob(self.window_ms, builtin::WINDOW_MS).get() == 0 {
            out.push("window_ms must be at least 1 when connects is set".to_owned());
        }
        if self.max_lifetime().is_some() && self.overlap_wait().is_zero() {
            out.push("overlap_wait_ms must be at least 1 when max_lifetime_ms is set".to_owned());
        }
        out
    }
}

impl fmt::Display for SessionSettings {
    /// Every knob as resolved, `off` for a feature turned off.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Option<Duration>| match d {
            Some(d) => format!("{}ms", d.as_millis()),
            None => "off".to_owned(),
        };
        write!(
            f,
            "ping_interval {}, dead_after {}, idle_after {}, backoff {}ms..{}ms, max_attempts {}, stable_after {}ms, budget {}, max_lifetime {} (overlap_wait {}ms)",
            ms(self.ping_interval()),
            ms(self.dead_after()),
            ms(self.idle_after()),
            self.backoff_initial().as_millis(),
            self.backoff_max().as_millis(),
            self.max_attempts()
                .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
            self.stable_after().as_millis(),
            self.connect_budget().map_or_else(
                || "off".to_owned(),
                |(n, w)| format!("{n} per {}ms", w.as_millis())
            ),
            ms(self.max_lifetime()),
            self.overlap_wait().as_millis(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_knob_falls_back_alone_and_zero_turns_a_feature_off() {
        let default = SessionSettings::new()
            .with_ping_interval(Duration::from_secs(5))
            .with_connect_budget(50, Duration::from_secs(10));
        let exchange = SessionSettings::new().with_ping_interval(Duration::ZERO);
        let resolved = exchange.or(&default);
        assert_eq!(resolved.ping_interval(), None);
        assert_eq!(
            resolved.connect_budget(),
            Some((50, Duration::from_secs(10)))
        );
        assert_eq!(resolved.dead_after(), Some(Duration::from_secs(30)));
        assert_eq!(resolved.idle_after(), None);
        assert_eq!(resolved.max_attempts(), None);
        assert_eq!(resolved.backoff_initial(), Duration::from_millis(250));
        assert_eq!(resolved.backoff_max(), Duration::from_secs(30));
        assert_eq!(resolved.stable_after(), Duration::from_secs(60));
        assert_eq!(resolved.max_lifetime(), None);
        assert_eq!(resolved.overlap_wait(), Duration::from_secs(10));
        let builtin = SessionSettings::new();
        assert_eq!(builtin.ping_interval(), Some(Duration::from_secs(10)));
        assert_eq!(
            builtin.connect_budget(),
            Some((300, Duration::from_secs(300)))
        );
        assert!(builtin.problems().is_empty(), "{:?}", builtin.problems());
    }

    #[test]
    fn knobs_that_contradict_each_other_are_named() {
        let s = SessionSettings::new()
            .with_ping_interval(Duration::from_secs(10))
            .with_dead_after(Duration::from_secs(10))
            .with_backoff(Duration::from_secs(2), Duration::from_secs(1))
            .with_connect_budget(5, Duration::ZERO)
            .with_max_lifetime(Duration::from_secs(60), Duration::ZERO);
        let problems = s.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("dead_after_ms (10000)"));
        assert!(problems[1].starts_with("backoff_max_ms (1000)"));
        assert!(problems[2].starts_with("window_ms"));
        assert!(problems[3].starts_with("overlap_wait_ms"));
        let zero = SessionSettings::new().with_backoff(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.problems(), ["backoff_initial_ms must be at least 1"]);
        // Pings off: any dead limit is allowed.
        let quiet = SessionSettings::new()
            .with_ping_interval(Duration::ZERO)
            .with_dead_after(Duration::from_millis(1));
        assert!(quiet.problems().is_empty());
    }

    #[test]
    fn every_setter_sets_its_knobs_and_the_display_shows_them_resolved() {
        let s = SessionSettings::new()
            .with_idle_after(Duration::from_secs(60))
            .with_max_attempts(5, Duration::from_secs(20))
            .with_max_lifetime(Duration::from_secs(85_800), Duration::from_secs(3));
        assert_eq!(s.idle_after(), Some(Duration::from_secs(60)));
        assert_eq!(s.max_attempts(), Some(5));
        assert_eq!(s.stable_after(), Duration::from_secs(20));
        assert_eq!(s.max_lifetime(), Some(Duration::from_secs(85_800)));
        assert_eq!(s.overlap_wait(), Duration::from_secs(3));
        assert_eq!(
            s.to_string(),
            "ping_interval 10000ms, dead_after 30000ms, idle_after 60000ms, backoff 250ms..30000ms, \
             max_attempts 5, stable_after 20000ms, budget 300 per 300000ms, max_lifetime 85800000ms \
             (overlap_wait 3000ms)"
        );
        let off = SessionSettings::new()
            .with_ping_interval(Duration::ZERO)
            .with_connect_budget(0, Duration::ZERO);
        assert_eq!(off.connect_budget(), None, "0 connects: no budget");
        let no_connects = SessionSettings::new().with_connect_budget(0, Duration::from_secs(10));
        assert_eq!(
            no_connects.connect_budget(),
            None,
            "0 connects, whatever the window"
        );
        assert!(off.problems().is_empty(), "no budget needs no window");
        assert!(off.to_string().starts_with("ping_interval off, "));
        assert!(off.to_string().contains("max_attempts unlimited"));
        assert!(off.to_string().contains("budget off"));
        assert_eq!(Millis::new(1500).unwrap().to_string(), "1500ms");
        assert_eq!(Millis::MAX, 2_592_000_000);
    }

    #[test]
    fn durations_are_bounded_and_read_from_text_or_integers() {
        assert_eq!(
            Millis::from_scalar(&Scalar::Text("1500".into())),
            Ok(Millis(1500))
        );
        assert_eq!(Millis::from_scalar(&Scalar::Int(0)), Ok(Millis(0)));
        let max = i128::from(Millis::MAX);
        assert_eq!(
            Millis::from_scalar(&Scalar::Int(max)),
            Ok(Millis(Millis::MAX))
        );
        for bad in [
            Scalar::Int(max + 1),
            Scalar::Int(-1),
            Scalar::Text("1s".into()),
        ] {
            assert!(Millis::from_scalar(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Millis::saturating(Duration::from_secs(u64::MAX)).get(),
            Millis::MAX
        );
        assert_eq!(Millis::saturating(Duration::from_micros(1999)).get(), 1);
    }
}
