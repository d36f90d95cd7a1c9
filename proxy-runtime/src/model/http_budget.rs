//! The weight budget of an exchange's HTTP exits (`http_budget`, beside the routes): how
//! much request weight one exit (a pool member, or the route's one way out) may spend per
//! window, and the response header in which the exchange reports what it counted.
//!
//! Every knob is optional where it is written (the default entry, an exchange's entry, a
//! value built in code) and falls back, knob by knob, to the entry below it, as
//! [`SessionSettings`](crate::SessionSettings) do.

use std::fmt;
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use super::session::Millis;
use crate::settings::schema::{Scalar, SettingsLeaf, deserialize_leaf};
use proxy_derive::Settings;

/// The built-in window: Binance's, OKX's and Bybit's weight limits are counted per minute.
const WINDOW_MS: u64 = 60_000;

/// The name of a response header, such as `x-mbx-used-weight-1m`: a valid HTTP header name
/// (compared without regard to case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeightHeader(HeaderName);

impl WeightHeader {
    /// The header `name`; an error when it is not a valid header name.
    pub fn new(name: &str) -> Result<Self, String> {
        HeaderName::from_bytes(name.as_bytes())
            .map(Self)
            .map_err(|_| "not a valid HTTP header name".to_owned())
    }

    /// The header's name, in lower case.
    pub fn name(&self) -> &HeaderName {
        &self.0
    }
}

impl fmt::Display for WeightHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for WeightHeader {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

impl SettingsLeaf for WeightHeader {
    const EXPECTED: &'static str = "an HTTP header name, such as x-mbx-used-weight-1m";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Text(s) => Self::new(s),
            _ => Err("a header name must be a string".to_owned()),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.0.as_str().to_owned())
    }
}

/// The weight budget of each HTTP exit of an exchange: the `http_budget` entry of the
/// default routes and of each exchange. A request takes its weight
/// ([`RequestBuilder::weight`](crate::RequestBuilder::weight), 1 unless set) from the
/// budget of the exit it goes through before it is sent; a request that would cross the
/// budget of every exit waits for the window to free enough, or fails with
/// [`RateLimited`](crate::ProxyErrorKind::RateLimited) when that wait would pass its
/// deadline. The header, when given, corrects the count from every response: the
/// exchange's count is the truth, this library's fills in between responses.
///
/// ```
/// use proxy_runtime::{HttpBudget, ProxySettings};
/// use std::time::Duration;
/// let settings = ProxySettings::loader()
///     .env_vars([
///         ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT", "5400"),
///         ("CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__USED_WEIGHT_HEADER", "X-MBX-USED-WEIGHT-1M"),
///     ])
///     .load()?;
/// let binance = settings.http_budget("binance");
/// assert_eq!(binance.weight_budget(), Some((5400, Duration::from_secs(60))));
/// assert_eq!(binance.used_weight_header().unwrap().to_string(), "x-mbx-used-weight-1m");
/// assert_eq!(settings.http_budget("okx").weight_budget(), None); // the default sets no weight
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
pub struct HttpBudget {
    /// The weight one exit may spend per window (0: no budget).
    #[serde(default)]
    weight: Option<u32>,
    /// The window the weight is counted over, in ms.
    #[serde(default)]
    window_ms: Option<Millis>,
    /// The response header that reports the weight the exchange counted for the exit.
    #[serde(default)]
    used_weight_header: Option<WeightHeader>,
}

impl HttpBudget {
    /// No knob given: no budget.
    pub fn new() -> Self {
        Self::default()
    }

    /// These knobs, each unset one taken from `fallback`.
    pub fn or(self, fallback: &HttpBudget) -> Self {
        Self {
            weight: self.weight.or(fallback.weight),
            window_ms: self.window_ms.or(fallback.window_ms),
            used_weight_header: self
                .used_weight_header
                .or_else(|| fallback.used_weight_header.clone()),
        }
    }

    /// The weight per exit and its window (60 s built in); `None`: no budget (no weight
    /// given, or 0).
    pub fn weight_budget(&self) -> Option<(u32, Duration)> {
        let weight = self.weight.filter(|&w| w > 0)?;
        let window = self.window_ms.map_or(WINDOW_MS, Millis::get);
        (window > 0).then(|| (weight, Duration::from_millis(window)))
    }

    /// The header that reports the weight the exchange counted, if one is given.
    pub fn used_weight_header(&self) -> Option<&WeightHeader> {
        self.used_weight_header.as_ref()
    }

    /// The same with a budget of `weight` per `window` per exit (a weight of 0: none).
    /// The window is counted in whole milliseconds, rounded up (never shorter than
    /// asked), and at least 1 ms.
    pub fn with_weight(self, weight: u32, window: Duration) -> Self {
        let ms = u64::try_from(window.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Self {
            weight: Some(weight),
            window_ms: Some(Millis::saturating(Duration::from_millis(ms.max(1)))),
            ..self
        }
    }

    /// The same reading the exchange's count from the response header `header`.
    pub fn with_used_weight_header(self, header: WeightHeader) -> Self {
        Self {
            used_weight_header: Some(header),
            ..self
        }
    }

    /// What is wrong with these knobs taken together (as resolved), as messages that
    /// start with the knob they are about.
    pub(crate) fn problems(&self) -> Vec<String> {
        let weight = self.weight.unwrap_or(0);
        match self.window_ms {
            Some(window) if weight > 0 && window.get() == 0 => {
                vec!["window_ms must be at least 1 when weight is set".to_owned()]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_knob_falls_back_on_its_own_and_zero_is_no_budget() {
        let header = WeightHeader::new("X-Used").unwrap();
        let default = HttpBudget::new()
            .with_weight(100, Duration::from_secs(10))
            .with_used_weight_header(header.clone());
        let own = HttpBudget {
            weight: Some(50),
            ..HttpBudget::new()
        };
        let resolved = own.or(&default);
        assert_eq!(
            resolved.weight_budget(),
            Some((50, Duration::from_secs(10)))
        );
        assert_eq!(resolved.used_weight_header(), Some(&header));
        assert_eq!(header.to_string(), "x-used");
        let off = HttpBudget {
            weight: Some(0),
            ..HttpBudget::new()
        };
        assert_eq!(off.or(&default).weight_budget(), None);
        assert_eq!(HttpBudget::new().weight_budget(), None);
        let builtin = HttpBudget {
            weight: Some(7),
            ..HttpBudget::new()
        };
        assert_eq!(builtin.weight_budget(), Some((7, Duration::from_secs(60))));
    }

    #[test]
    fn a_window_in_code_is_rounded_up_to_whole_milliseconds() {
        let budget = |window| HttpBudget::new().with_weight(5, window).weight_budget();
        let ms = Duration::from_millis;
        assert_eq!(budget(Duration::from_micros(1900)), Some((5, ms(2))));
        assert_eq!(budget(ms(3)), Some((5, ms(3))));
        assert_eq!(budget(Duration::ZERO), Some((5, ms(1))));
    }

    #[test]
    fn a_zero_window_under_a_weight_is_a_problem_and_a_bad_name_is_refused() {
        let zero = HttpBudget {
            weight: Some(5),
            window_ms: Some(Millis::new(0).unwrap()),
            used_weight_header: None,
        };
        assert_eq!(zero.weight_budget(), None);
        assert_eq!(zero.problems().len(), 1);
        assert!(zero.problems()[0].starts_with("window_ms"));
        let off = HttpBudget {
            weight: Some(0),
            ..zero.clone()
        };
        assert!(off.problems().is_empty());
        assert!(
            HttpBudget::new()
                .with_weight(5, Duration::from_millis(1))
                .problems()
                .is_empty()
        );
        assert!(WeightHeader::new("bad header").is_err());
        assert!(WeightHeader::from_scalar(&Scalar::Int(3)).is_err());
    }
}
