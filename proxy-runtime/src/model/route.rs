//! One route: a proxy URL (or `direct://`), or a pool of them with a [`Strategy`], and the
//! connection timeout; read from its source shape (`url` or `urls`, alone).

use std::fmt;

use serde::Deserialize;

use super::member::PoolMember;
use super::proxy_url::ProxyUrl;
use super::timeout::TimeoutSeconds;
use crate::settings::schema::{
    FieldKind, Scalar, Schema, Settings, SettingsField, SettingsLeaf, SettingsOptions,
    deserialize_leaf,
};

/// How a pool of proxies chooses the member for a new connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// The first healthy member, in the order given (`failover`, the default).
    #[default]
    Failover,
    /// The healthy members in turn, spreading new connections (`round_robin`).
    RoundRobin,
}

impl Strategy {
    /// `"failover"` or `"round_robin"`, as settings write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Failover => "failover",
            Strategy::RoundRobin => "round_robin",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SettingsLeaf for Strategy {
    const EXPECTED: &'static str = "a pool strategy: failover or round_robin";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value.to_text().to_ascii_lowercase().as_str() {
            "failover" => Ok(Strategy::Failover),
            "round_robin" => Ok(Strategy::RoundRobin),
            _ => Err(format!("expected {}", Self::EXPECTED)),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.as_str().to_owned())
    }
}

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

/// The shape of a route in the settings' sources, as its schema describes it; a
/// [`ProxyConfig`] is made from it once `url` or `urls` is known to be given, alone.
mod fields {
    use serde::Deserialize;

    use super::Strategy;
    use crate::model::member::PoolMember;
    use crate::model::proxy_url::ProxyUrl;
    use crate::model::timeout::TimeoutSeconds;
    use proxy_derive::Settings;

    #[derive(Deserialize, Settings)]
    #[serde(deny_unknown_fields)]
    #[settings(one_of("url", "urls"))]
    pub(super) struct ProxyConfig {
        /// Proxy URL, like `socks5h://user:password@proxy.example.com:1080`, or `direct://`.
        #[serde(default)]
        pub(super) url: Option<ProxyUrl>,
        /// A pool, instead of `url`: each member a URL (`direct://` and `direct://ADDRESS` allowed), or a mapping with `url`, `source`, `interface` and `connect_headers`.
        #[serde(default)]
        pub(super) urls: Option<Vec<PoolMember>>,
        /// How a pool chooses a member for a new connection: failover or round_robin.
        #[serde(default)]
        pub(super) strategy: Strategy,
        /// Seconds allowed to establish a connection (TCP, proxy handshake, TLS, upgrade).
        #[serde(default)]
        pub(super) timeout_seconds: TimeoutSeconds,
    }
}

/// One route: a proxy URL (or `direct://`), or a pool of them with a [`Strategy`], and the
/// connection timeout.
///
/// `Debug` and `Display` show passwords as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Never empty.
    members: Vec<PoolMember>,
    pool: bool,
    strategy: Strategy,
    timeout_seconds: TimeoutSeconds,
}

/// A pool without members.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pool of proxies needs at least one member")]
pub struct EmptyPool;

impl ProxyConfig {
    /// A route through `url` with the default timeout of 30 seconds.
    pub fn new(url: ProxyUrl) -> Self {
        Self::single(PoolMember::new(url))
    }

    /// A route through `member` (with its source address or CONNECT headers), with the
    /// default timeout of 30 seconds.
    pub fn single(member: PoolMember) -> Self {
        Self {
            members: vec![member],
            pool: false,
            strategy: Strategy::Failover,
            timeout_seconds: TimeoutSeconds::DEFAULT,
        }
    }

    /// A route through a pool of proxies (`direct://` allowed as a member), with the
    /// default timeout of 30 seconds.
    pub fn pool(urls: Vec<ProxyUrl>, strategy: Strategy) -> Result<Self, EmptyPool> {
        Self::pool_of(urls.into_iter().map(PoolMember::new).collect(), strategy)
    }

    /// A route through a pool of members (with their source addresses or CONNECT
    /// headers), with the default timeout of 30 seconds.
    pub fn pool_of(members: Vec<PoolMember>, strategy: Strategy) -> Result<Self, EmptyPool> {
        if members.is_empty() {
            return Err(EmptyPool);
        }
        Ok(Self {
            members,
            pool: true,
            strategy,
            timeout_seconds: TimeoutSeconds::DEFAULT,
        })
    }

    /// The same route with another timeout.
    pub fn with_timeout(self, timeout_seconds: TimeoutSeconds) -> Self {
        Self {
            timeout_seconds,
            ..self
        }
    }

    /// The proxy URL (possibly `direct://`); for a pool, its first member's.
    pub fn url(&self) -> &ProxyUrl {
        self.members[0].url()
    }

    /// Every member, in order: the one member of a route that is not a pool.
    pub fn members(&self) -> &[PoolMember] {
        &self.members
    }

    /// Whether the route was given as a pool (`urls`), even of one member.
    pub fn is_pool(&self) -> bool {
        self.pool
    }

    /// How the pool chooses a member (`Failover` for a route that is not a pool).
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The connection timeout.
    pub fn timeout(&self) -> TimeoutSeconds {
        self.timeout_seconds
    }

    /// Whether the route is `direct://` alone, from the default address (a pool with a
    /// `direct://` member is not, nor is `direct://ADDRESS`).
    pub fn is_direct(&self) -> bool {
        !self.pool && self.members[0].is_direct()
    }
}

/// The schema of the source shape: `url` or `urls`, `strategy`, `timeout_seconds`.
impl Settings for ProxyConfig {
    const OPTIONS: SettingsOptions = SettingsOptions {
        env_prefix: None,
        yaml_section: None,
        config_env: None,
    };
    fn schema() -> &'static Schema {
        <fields::ProxyConfig as Settings>::schema()
    }
}

impl SettingsField for ProxyConfig {
    fn kind() -> FieldKind {
        <fields::ProxyConfig as SettingsField>::kind()
    }
}

/// Reads the source shape and requires `url` or a non-empty `urls`, alone (the loader has
/// said so with the value's origin already; this holds for any other serde input too).
impl<'de> Deserialize<'de> for ProxyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let fields = fields::ProxyConfig::deserialize(d)?;
        let config = match (fields.url, fields.urls) {
            (Some(url), None) => ProxyConfig::new(url),
            (None, Some(urls)) => {
                ProxyConfig::pool_of(urls, fields.strategy).map_err(D::Error::custom)?
            }
            (Some(_), Some(_)) => return Err(D::Error::custom("give only one of `url`, `urls`")),
            (None, None) => return Err(D::Error::custom("missing `url` (or `urls`)")),
        };
        Ok(config.with_timeout(fields.timeout_seconds))
    }
}

impl fmt::Display for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pool {
            let members: Vec<String> = self.members.iter().map(ToString::to_string).collect();
            write!(
                f,
                "[{}] {} (timeout {})",
                members.join(", "),
                self.strategy,
                self.timeout_seconds
            )
        } else {
            write!(f, "{} (timeout {})", self.members[0], self.timeout_seconds)
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProxyConfig");
        if self.pool {
            d.field("urls", &self.members)
                .field("strategy", &self.strategy);
        } else {
            d.field("url", &self.members[0]);
        }
        d.field("timeout_seconds", &self.timeout_seconds.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> ProxyUrl {
        s.parse().unwrap()
    }

    #[test]
    fn strategies_read_and_display_as_written() {
        let read = |s: &str| Strategy::from_scalar(&Scalar::Text(s.to_owned()));
        assert_eq!(read("failover"), Ok(Strategy::Failover));
        assert_eq!(read("Round_Robin"), Ok(Strategy::RoundRobin));
        assert!(
            read("random")
                .unwrap_err()
                .contains("failover or round_robin")
        );
        assert_eq!(Strategy::Failover.to_string(), "failover");
        assert_eq!(Strategy::RoundRobin.to_string(), "round_robin");
    }

    #[test]
    fn routes_display_and_debug_redacted() {
        let one = ProxyConfig::new(url("socks5h://u:canary@a:1080"))
            .with_timeout(TimeoutSeconds::new(5).unwrap());
        assert_eq!(one.to_string(), "socks5h://u:***@a:1080 (timeout 5s)");
        assert_eq!(
            format!("{one:?}"),
            "ProxyConfig { url: ProxyUrl(socks5h://u:***@a:1080), timeout_seconds: 5 }"
        );
        let pool = ProxyConfig::pool(
            vec![url("socks5h://a:1080"), url("direct://")],
            Strategy::RoundRobin,
        )
        .unwrap();
        assert_eq!(
            pool.to_string(),
            "[socks5h://a:1080, direct://] round_robin (timeout 30s)"
        );
        assert_eq!(
            format!("{pool:?}"),
            "ProxyConfig { urls: [ProxyUrl(socks5h://a:1080), ProxyUrl(direct://)], \
             strategy: RoundRobin, timeout_seconds: 30 }"
        );
    }
}
