//! The store that processes share exit state through (`shared`, beside `default` and
//! `exchanges`): a Redis server, the prefix of the keys written there, the number of
//! processes expected to share each exit, and the deadline of every call.
//!
//! Off unless `url` is given. When it is, the weight budget of every exit is leased from
//! the store in blocks, so that every process spending through the same exit spends one
//! budget between them (the route's `http_budget`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::session::Millis;
use crate::redact::redact_value;
use crate::settings::schema::{Scalar, SettingsLeaf, deserialize_leaf};
use proxy_derive::Settings;

/// The built-in deadline of one call to the store.
const TIMEOUT_MS: u64 = 250;

/// The built-in key prefix.
const PREFIX: &str = "cryptofeed-proxy";

/// The address of a Redis server: `redis://` or `rediss://` (TLS), with an optional user
/// and password and database number: `redis://user:password@host:6379/0`.
///
/// `Display` and `Debug` show the password as `***`.
///
/// ```
/// use proxy_runtime::SharedUrl;
/// let url = SharedUrl::new("redis://feed:s3cret@redis.internal:6379/2")?;
/// assert_eq!(url.to_string(), "redis://feed:***@redis.internal:6379/2");
/// assert!(SharedUrl::new("http://redis.internal").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SharedUrl(String);

impl SharedUrl {
    /// Checks `text`: the scheme `redis` or `rediss`, a host, an optional port and
    /// database number, nothing else. The error never repeats the text.
    pub fn new(text: &str) -> Result<Self, String> {
        // The URL parser strips these where a server would not: an error instead, so
        // that the URL used is the URL written.
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a Redis URL has no white space or control characters".to_owned());
        }
        let url = url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err("the scheme must be redis:// or rediss:// (TLS)".to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("a Redis URL needs a host".to_owned());
        }
        let db = url.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u16>().is_err() {
            return Err("the path of a Redis URL is a database number, like /0".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a Redis URL takes no query or fragment".to_owned());
        }
        Ok(Self(text.to_owned()))
    }

    /// Whether the connection is TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.0
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss:"))
    }

    /// The URL with its password, for the client alone.
    #[cfg(feature = "redis")]
    pub(crate) fn unredacted(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SharedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_value(&self.0))
    }
}

impl fmt::Debug for SharedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedUrl({self})")
    }
}

impl<'de> Deserialize<'de> for SharedUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

impl SettingsLeaf for SharedUrl {
    const EXPECTED: &'static str =
        "a Redis URL, redis://[user:password@]host[:port][/db] or rediss://...";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Text(s) => Self::new(s),
            _ => Err("a Redis URL must be a string".to_owned()),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.0.clone())
    }
}

/// The store that processes share exit state through: the `shared` entry of the settings.
///
/// With a `url`, every exit's weight budget ([`HttpBudget`](crate::HttpBudget)) is one
/// budget for every process that uses the exit: each leases blocks of it from Redis and
/// spends them locally, so that a request pays no round trip. While the store cannot be
/// reached, each process spends at most `1 / processes` of the budget per window, and
/// leases again when it returns.
///
/// ```
/// use proxy_runtime::{ProxySettings, SharedSettings, SharedUrl};
/// use std::time::Duration;
/// // As `CRYPTOFEED_PROXY_SHARED__URL` and `CRYPTOFEED_PROXY_SHARED__PROCESSES` would set
/// // them (loading them needs the `redis` feature).
/// let shared = SharedSettings::new()
///     .with_url(SharedUrl::new("redis://:s3cret@127.0.0.1:6379/0")?)
///     .with_processes(4);
/// let settings = ProxySettings::new(true).with_shared(shared);
/// let shared = settings.shared();
/// assert_eq!(shared.url().unwrap().to_string(), "redis://:***@127.0.0.1:6379/0");
/// assert_eq!(shared.processes(), 4);
/// assert_eq!(shared.prefix(), "cryptofeed-proxy");
/// assert_eq!(shared.timeout(), Duration::from_millis(250));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
pub struct SharedSettings {
    /// The Redis server exit state is shared through (redis:// or rediss://); none: each process keeps its own.
    #[serde(default)]
    url: Option<SharedUrl>,
    /// The prefix of every key written to the store.
    #[serde(default)]
    prefix: Option<String>,
    /// How many processes share each exit: while the store is unreachable each spends this share of a budget.
    #[serde(default)]
    processes: Option<u32>,
    /// The deadline of each call to the store, in ms.
    #[serde(default)]
    timeout_ms: Option<Millis>,
}

impl SharedSettings {
    /// Nothing shared.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same sharing through the Redis server at `url`.
    pub fn with_url(self, url: SharedUrl) -> Self {
        Self {
            url: Some(url),
            ..self
        }
    }

    /// The same with the key prefix `prefix`.
    pub fn with_prefix(self, prefix: impl Into<String>) -> Self {
        Self {
            prefix: Some(prefix.into()),
            ..self
        }
    }

    /// The same expecting `processes` processes per exit.
    pub fn with_processes(self, processes: u32) -> Self {
        Self {
            processes: Some(processes),
            ..self
        }
    }

    /// The same with a deadline of `timeout` (whole milliseconds) per call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self {
            timeout_ms: Some(Millis::saturating(timeout)),
            ..self
        }
    }

    /// The Redis server, if state is shared.
    pub fn url(&self) -> Option<&SharedUrl> {
        self.url.as_ref()
    }

    /// The key prefix (`cryptofeed-proxy` built in).
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(PREFIX)
    }

    /// The processes expected per exit (1 built in).
    pub fn processes(&self) -> u32 {
        self.processes.unwrap_or(1).max(1)
    }

    /// The deadline of one call to the store (250 ms built in).
    pub fn timeout(&self) -> Duration {
        self.timeout_ms
            .map_or(Duration::from_millis(TIMEOUT_MS), Millis::as_duration)
    }

    /// What is wrong with these knobs, as messages that start with the knob they are
    /// about.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.processes == Some(0) {
            problems.push("processes must be at least 1".to_owned());
        }
        if self.timeout_ms.is_some_and(|t| t.get() == 0) {
            problems.push("timeout_ms must be at least 1".to_owned());
        }
        if self.prefix.as_deref().is_some_and(|p| !is_key_part(p)) {
            problems.push(
                "prefix must be 1 to 64 visible ASCII characters without `{` or `}`".to_owned(),
            );
        }
        if self.url.is_some() && !cfg!(feature = "redis") {
            problems.push(
                "url needs proxy-runtime built with its `redis` feature; this build has no Redis client"
                    .to_owned(),
            );
        }
        problems
    }
}

/// Whether `text` may be part of a key in the store: 1 to 64 visible ASCII characters,
/// without the braces of a hash tag (the store's keys put the exchange and the exit in
/// one, so that a cluster keeps an exit's state on one node).
pub(crate) fn is_key_part(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'{' | b'}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_is_redis_or_rediss_with_a_host_and_at_most_a_database_number() {
        for good in [
            "redis://127.0.0.1",
            "redis://127.0.0.1:6380/3",
            "redis://:pw@h",
            "redis://user:pw@h:1/0",
            "rediss://h/",
        ] {
            assert!(SharedUrl::new(good).is_ok(), "{good}");
        }
        for bad in [
            "http://h",
            "redis://",
            "redis:///0",
            "redis://h/db",
            "redis://h/0?x=1",
            "redis://h#f",
            "h:6379",
            "\n\nrediss://\ni",
            " redis://h",
            "redis://h\t",
        ] {
            let err = SharedUrl::new(bad).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
        assert!(SharedUrl::new("rediss://h").unwrap().is_tls());
        assert!(!SharedUrl::new("redis://h").unwrap().is_tls());
        assert!(
            SharedUrl::new("REDISS://h").unwrap().is_tls(),
            "schemes have no case"
        );
    }

    #[test]
    fn the_password_is_shown_masked_and_given_to_the_client_whole() {
        let url = SharedUrl::new("redis://u:hunter2@h:1/0").unwrap();
        assert_eq!(url.to_string(), "redis://u:***@h:1/0");
        assert_eq!(format!("{url:?}"), "SharedUrl(redis://u:***@h:1/0)");
        #[cfg(feature = "redis")]
        assert_eq!(url.unredacted(), "redis://u:hunter2@h:1/0");
        assert_eq!(
            url.to_scalar(),
            Scalar::Text("redis://u:hunter2@h:1/0".into())
        );
        assert!(SharedUrl::from_scalar(&Scalar::Int(1)).is_err());
    }

    #[test]
    fn knobs_have_built_in_values_and_bad_ones_are_problems() {
        let none = SharedSettings::new();
        assert_eq!(none.url(), None);
        assert_eq!(none.prefix(), "cryptofeed-proxy");
        assert_eq!(none.processes(), 1);
        assert_eq!(none.timeout(), Duration::from_millis(250));
        assert!(none.problems().is_empty());
        let url = SharedUrl::new("redis://h:1/0").unwrap();
        assert_eq!(none.clone().with_url(url.clone()).url(), Some(&url));
        let set = none
            .with_prefix("p")
            .with_processes(3)
            .with_timeout(Duration::from_millis(40));
        assert_eq!(
            (set.prefix(), set.processes(), set.timeout()),
            ("p", 3, Duration::from_millis(40))
        );
        assert!(set.problems().is_empty());
        let bad = SharedSettings {
            processes: Some(0),
            timeout_ms: Some(Millis::new(0).unwrap()),
            prefix: Some("a b".into()),
            url: None,
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("processes"));
        assert!(problems[1].starts_with("timeout_ms"));
        assert!(problems[2].starts_with("prefix"));
        for prefix in ["", "{x}", &"x".repeat(65)] {
            assert_eq!(
                SharedSettings::new().with_prefix(prefix).problems().len(),
                1,
                "{prefix:?}"
            );
        }
        assert!(
            SharedSettings::new()
                .with_prefix("x".repeat(64))
                .problems()
                .is_empty()
        );
    }
}
