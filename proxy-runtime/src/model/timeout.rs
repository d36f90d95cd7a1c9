//! The connection timeout of a route: whole seconds from 1 to 300.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::settings::schema::{Scalar, SettingsLeaf, deserialize_leaf, parse_int};

/// How long establishing one connection may take, in whole seconds from 1 to 300.
///
/// ```
/// use proxy_runtime::TimeoutSeconds;
/// assert_eq!(TimeoutSeconds::default().get(), 30);
/// assert!(TimeoutSeconds::new(0).is_err());
/// assert!(TimeoutSeconds::new(301).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeoutSeconds(u16);

/// A timeout outside 1..=300 seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timeout_seconds must be an integer from 1 to 300")]
pub struct TimeoutError;

impl TimeoutSeconds {
    /// The smallest timeout, 1 second.
    pub const MIN: u16 = 1;
    /// The largest timeout, 300 seconds.
    pub const MAX: u16 = 300;
    /// The default, 30 seconds.
    pub const DEFAULT: TimeoutSeconds = TimeoutSeconds(30);

    /// Checks that `seconds` is in 1..=300.
    pub fn new(seconds: u64) -> Result<Self, TimeoutError> {
        match u16::try_from(seconds) {
            Ok(s) if (Self::MIN..=Self::MAX).contains(&s) => Ok(Self(s)),
            _ => Err(TimeoutError),
        }
    }

    /// The number of seconds.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The timeout as a `Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl Default for TimeoutSeconds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for TimeoutSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl<'de> Deserialize<'de> for TimeoutSeconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

impl SettingsLeaf for TimeoutSeconds {
    const EXPECTED: &'static str = "an integer from 1 to 300 (seconds)";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        let i = parse_int(value).map_err(|_| TimeoutError.to_string())?;
        u64::try_from(i)
            .ok()
            .and_then(|i| TimeoutSeconds::new(i).ok())
            .ok_or_else(|| TimeoutError.to_string())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Int(i128::from(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert!(TimeoutSeconds::new(0).is_err());
        assert!(TimeoutSeconds::new(301).is_err());
        assert_eq!(TimeoutSeconds::new(300).unwrap().get(), 300);
        assert_eq!(
            TimeoutSeconds::new(1).unwrap().as_duration(),
            Duration::from_secs(1)
        );
        assert!(TimeoutSeconds::from_scalar(&Scalar::Text("1.5".into())).is_err());
        assert!(TimeoutSeconds::from_scalar(&Scalar::Float(1.0)).is_err());
        assert_eq!(
            TimeoutSeconds::from_scalar(&Scalar::Text("15".into()))
                .unwrap()
                .get(),
            15
        );
    }

    #[test]
    fn timeouts_display_in_seconds() {
        assert_eq!(TimeoutSeconds::new(7).unwrap().to_string(), "7s");
    }
}
