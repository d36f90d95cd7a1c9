//! Load errors: where each problem is, what was expected, and the value with any password
//! shown as `***`. A load collects every error before it fails.

use std::fmt;

use super::origin::Origin;

/// What kind of problem a [`SettingError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A name or key that the schema does not have.
    UnknownKey {
        /// The closest valid name, written as the source would write it.
        suggestion: Option<String>,
    },
    /// A value that is empty (an empty variable, a YAML key without a value).
    Empty,
    /// A value of the wrong shape or out of range.
    Invalid,
    /// A required value that no source gave.
    Missing,
    /// The same setting given twice in one source (two spellings of a variable, or two
    /// YAML keys naming the same exchange).
    Duplicate,
    /// A YAML file that could not be read or parsed, or a variable that is not UTF-8.
    Unreadable,
}

/// One problem found while loading settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    origin: Origin,
    kind: ErrorKind,
    message: String,
}

impl SettingError {
    /// A new error. `message` must already be redacted; the paths of `origin` are
    /// redacted here (keys are user input too: a URL pasted as a key must not show its
    /// password).
    /// A problem at `origin` (its password, if any, masked), of `kind`, said in
    /// `message`: for [`Settings::complete`](crate::Settings::complete), which reports its
    /// own.
    pub fn new(mut origin: Origin, kind: ErrorKind, message: impl Into<String>) -> Self {
        origin.redact();
        Self {
            origin,
            kind,
            message: message.into(),
        }
    }

    /// Where the problem is. (Not `source`, which would shadow
    /// [`std::error::Error::source`]: a setting error has no underlying cause.)
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What is wrong, with the value (redacted) where there is one.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for SettingError {}

/// Settings could not be loaded: every problem found, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    errors: Vec<SettingError>,
}

impl LoadError {
    pub(crate) fn new(errors: Vec<SettingError>) -> Self {
        debug_assert!(!errors.is_empty());
        Self { errors }
    }

    /// Every problem found (at least one).
    pub fn errors(&self) -> &[SettingError] {
        &self.errors
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "invalid settings: {one}"),
            many => {
                write!(f, "invalid settings ({} errors):", many.len())?;
                for e in many {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}
