//! Exchange ids: the names that key per-exchange settings.
//!
//! The rule for what an id may be is `proxy_rules::check_words`, which
//! `#[proxied(exchange = "...")]` applies at compile time too: a rule an environment variable
//! name can express, since `EXCHANGES__<ID>__HTTP__URL` splits on `__` and is matched
//! case-insensitively.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::settings::schema::{Scalar, SettingsKey, SettingsLeaf, deserialize_leaf};

/// An exchange id: lowercase ASCII letters and digits in words joined by single
/// underscores (`binance`, `binance_futures`, `okx2`).
///
/// Parsing is case-insensitive and stores the lowercase form, because environment
/// variable names are matched case-insensitively.
///
/// ```
/// use proxy_runtime::ExchangeId;
/// let id: ExchangeId = "Binance_Futures".parse()?;
/// assert_eq!(id.as_str(), "binance_futures");
/// assert!("binance-futures".parse::<ExchangeId>().is_err());
/// # Ok::<(), proxy_runtime::ExchangeIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExchangeId(String);

/// Why a text is not an exchange id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an exchange id {}", .0.reason())]
pub struct ExchangeIdError(proxy_rules::Flaw);

impl ExchangeId {
    /// Validates an id and stores it lowercase.
    pub fn new(id: &str) -> Result<Self, ExchangeIdError> {
        match proxy_rules::check_words(id) {
            // Variable names are matched case-insensitively, so case is not a flaw here.
            Ok(()) | Err(proxy_rules::Flaw::Uppercase) => Ok(Self(lookup_form(id).into_owned())),
            Err(flaw) => Err(ExchangeIdError(flaw)),
        }
    }

    /// The id, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `id` in the form ids are stored in (lower case), to look an id up by text without
/// checking it: an invalid id matches no stored one.
pub(crate) fn lookup_form(id: &str) -> Cow<'_, str> {
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(id.to_ascii_lowercase())
    } else {
        Cow::Borrowed(id)
    }
}

impl FromStr for ExchangeId {
    type Err = ExchangeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for ExchangeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ExchangeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Read from text, as settings give it.
impl SettingsLeaf for ExchangeId {
    const EXPECTED: &'static str = "an exchange id";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        ExchangeId::new(&value.to_text()).map_err(|e| e.to_string())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.as_str().to_owned())
    }
}

/// Keys settings maps (`exchanges.<id>`): checked, and kept in lower case.
impl SettingsKey for ExchangeId {
    const EXPECTED: &'static str = "an exchange id";
    const PLACEHOLDER: &'static str = "<ID>";
    fn normalize_key(key: &str) -> Result<String, String> {
        ExchangeId::new(key)
            .map(|id| id.0)
            .map_err(|e| e.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ExchangeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_leaf(d)
    }
}

impl serde::Serialize for ExchangeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_lowercased() {
        assert_eq!(ExchangeId::new("binance").unwrap().as_str(), "binance");
        assert_eq!(
            ExchangeId::new("BINANCE_FUTURES").unwrap().as_str(),
            "binance_futures"
        );
        assert_eq!(ExchangeId::new("okx2").unwrap().as_str(), "okx2");
        assert_eq!(ExchangeId::new("1inch").unwrap().as_str(), "1inch");
    }

    #[test]
    fn ids_are_looked_up_in_lower_case_without_a_copy_when_they_are() {
        assert!(matches!(lookup_form("binance"), Cow::Borrowed("binance")));
        assert_eq!(lookup_form("BiNance"), "binance");
        assert_eq!(lookup_form("binance-FUTURES"), "binance-futures");
    }

    #[test]
    fn ids_a_variable_cannot_name_are_rejected() {
        for bad in [
            "",
            "binance-futures",
            "a__b",
            "_a",
            "a_",
            "bin ance",
            "bìnance",
            "a.b",
        ] {
            assert!(ExchangeId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
