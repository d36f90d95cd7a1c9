//! Load errors: where each problem is, what was expected, and the value with any password
//! shown as `***`. A load collects every error before it fails.

use std::fmt;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// An environment variable; for a variable holding JSON, also the path inside it.
    Env {
        /// The variable's name, as it was set.
        var: String,
        /// The dotted path inside the variable's JSON value, if the error is inside it.
        json_path: Option<String>,
    },
    /// A key of a YAML file.
    Yaml {
        /// The file's name.
        file: String,
        /// The dotted path of the key, from the document's top (`proxy.default.http.url`).
        path: String,
        /// The key's line, 1-based, where the YAML parser gives one.
        line: Option<usize>,
    },
    /// A YAML file as a whole (it could not be read or parsed).
    File {
        /// The file's name.
        file: String,
        /// The line of a syntax error, 1-based.
        line: Option<usize>,
    },
    /// The settings after all sources were merged, at a dotted path (empty for the top).
    Merged {
        /// The dotted path.
        path: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env {
                var,
                json_path: None,
            } => write!(f, "`{var}` (environment)"),
            Source::Env {
                var,
                json_path: Some(p),
            } => write!(f, "`{var}` (environment, JSON at `{p}`)"),
            Source::Yaml { file, path, line } => {
                write!(f, "{file}")?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                write!(f, ": `{path}`")
            }
            Source::File { file, line } => {
                write!(f, "{file}")?;
                match line {
                    Some(line) => write!(f, ":{line}"),
                    None => Ok(()),
                }
            }
            Source::Merged { path } if path.is_empty() => f.write_str("settings"),
            Source::Merged { path } => write!(f, "settings `{path}`"),
        }
    }
}

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
    source: Source,
    kind: ErrorKind,
    message: String,
}

impl SettingError {
    /// A new error. `message` must already be redacted; the paths of `source` are
    /// redacted here (keys are user input too: a URL pasted as a key must not show its
    /// password).
    pub(crate) fn new(source: Source, kind: ErrorKind, message: impl Into<String>) -> Self {
        let r = |s: &mut String| {
            if let std::borrow::Cow::Owned(clean) = crate::redact::redact_value(s) {
                *s = clean;
            }
        };
        let mut source = source;
        match &mut source {
            Source::Env { json_path, .. } => json_path.iter_mut().for_each(r),
            Source::Yaml { path, .. } | Source::Merged { path } => r(path),
            Source::File { .. } => {}
        }
        Self {
            source,
            kind,
            message: message.into(),
        }
    }

    /// Where the problem is.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What is wrong, with the value (redacted) where there is one.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn source_mut(&mut self) -> &mut Source {
        &mut self.source
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
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
