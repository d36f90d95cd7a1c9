//! Where each value came from: an environment variable (and the path inside its JSON), or
//! a YAML file's line and key path. Every leaf of the merged settings tree keeps its
//! origin, so load errors and `proxy-check` can say where a value was set.

use std::collections::BTreeMap;
use std::fmt;

/// A path of keys from the top of a source (`["proxy", "default", "http", "url"]`), written
/// by each source in its own form: dotted in YAML and JSON, joined by `__` in variable names.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPath(Vec<String>);

impl KeyPath {
    /// The empty path: the top of a source.
    pub fn root() -> Self {
        Self::default()
    }

    /// The keys, outermost first.
    pub fn keys(&self) -> &[String] {
        &self.0
    }

    /// Whether this is the top of the source.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys joined by `.`, as YAML and JSON paths are written.
    pub fn dotted(&self) -> String {
        self.0.join(".")
    }

    pub(crate) fn from_keys<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self(keys.into_iter().map(Into::into).collect())
    }

    pub(crate) fn push(&mut self, key: impl Into<String>) {
        self.0.push(key.into());
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }

    pub(crate) fn last(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// The same path under `prefix` (a YAML section).
    pub(crate) fn under(&self, prefix: &[String]) -> Self {
        Self(prefix.iter().chain(&self.0).cloned().collect())
    }

    pub(crate) fn redact(&mut self) {
        for key in &mut self.0 {
            if let std::borrow::Cow::Owned(clean) = crate::redact::redact_value(key) {
                *key = clean;
            }
        }
    }
}

/// Dotted.
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// An environment variable; for a variable holding JSON, also the path inside it.
    Env {
        /// The variable's name, as it was set.
        var: String,
        /// The path inside the variable's JSON value (empty: the value as a whole).
        json_path: KeyPath,
    },
    /// A key of a YAML file.
    Yaml {
        /// The file's name.
        file: String,
        /// The key's line, 1-based.
        line: Option<usize>,
        /// The key's path from the document's top (`proxy.default.http.url`).
        path: KeyPath,
    },
    /// A YAML file as a whole (it could not be read or parsed).
    File {
        /// The file's name.
        file: String,
        /// The line of a syntax error, 1-based.
        line: Option<usize>,
    },
    /// The settings as a whole, not one source: the problem is at this path of the
    /// settings (empty for the top).
    Settings {
        /// The path in the settings.
        path: KeyPath,
    },
}

impl Origin {
    /// The environment variable `var`, as a whole.
    pub fn env(var: &str) -> Self {
        Origin::Env {
            var: var.to_owned(),
            json_path: KeyPath::root(),
        }
    }

    pub(crate) fn settings() -> Self {
        Origin::Settings {
            path: KeyPath::root(),
        }
    }

    /// Paths are user input too (a URL pasted as a key must not show its password).
    pub(crate) fn redact(&mut self) {
        match self {
            Origin::Env { json_path: p, .. }
            | Origin::Yaml { path: p, .. }
            | Origin::Settings { path: p } => p.redact(),
            Origin::File { .. } => {}
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env { var, json_path } if json_path.is_root() => {
                write!(f, "`{var}` (environment)")
            }
            Origin::Env { var, json_path } => {
                write!(f, "`{var}` (environment, JSON at `{json_path}`)")
            }
            Origin::Yaml { file, path, line } => {
                write!(f, "{file}")?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                write!(f, ": `{path}`")
            }
            Origin::File { file, line } => {
                write!(f, "{file}")?;
                match line {
                    Some(line) => write!(f, ":{line}"),
                    None => Ok(()),
                }
            }
            Origin::Settings { path } if path.is_root() => f.write_str("settings"),
            Origin::Settings { path } => write!(f, "settings `{path}`"),
        }
    }
}

/// Where every value of a successful load came from, by its path in the settings
/// (`["exchanges", "binance", "http", "url"]`): what [`Loader::load_with_origins`] returns
/// beside the settings, and what `proxy-check` prints for each route.
///
/// Values left at their defaults have no origin.
///
/// [`Loader::load_with_origins`]: super::Loader::load_with_origins
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    leaves: BTreeMap<KeyPath, Origin>,
    /// The YAML sources read, by name.
    files: Vec<String>,
    /// Those of them that gave no value.
    files_without_values: Vec<String>,
}

impl Origins {
    /// The origin of the value at `path` (keys as the settings name them: map keys in
    /// their canonical form, such as lowercase exchange ids).
    pub fn get(&self, path: &[&str]) -> Option<&Origin> {
        self.leaves.get(&KeyPath::from_keys(path.iter().copied()))
    }

    /// The origin of the value at `path`, as [`get`](Self::get) finds it.
    pub fn at(&self, path: &KeyPath) -> Option<&Origin> {
        self.leaves.get(path)
    }

    /// Every value given by a source, with where it came from.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyPath, &Origin)> {
        self.leaves.iter()
    }

    /// The YAML files (or texts, by the name they were given) read, whether or not any
    /// value came from them.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The YAML files read that gave no value: a file without the settings' section
    /// (`proxy:`), with nothing under it, or empty. Settings that were meant to be there
    /// are not, and nothing else says so. A file whose values variables all override did
    /// give values: it is not one of these.
    pub fn files_without_values(&self) -> Vec<&str> {
        self.files_without_values
            .iter()
            .map(String::as_str)
            .collect()
    }

    pub(crate) fn insert(&mut self, path: KeyPath, origin: Origin) {
        self.leaves.insert(path, origin);
    }

    pub(crate) fn read_file(&mut self, name: String, gave_values: bool) {
        if !gave_values {
            self.files_without_values.push(name.clone());
        }
        self.files.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyPath, Origin};

    #[test]
    fn every_origin_names_its_place() {
        let path = || KeyPath::from_keys(["default", "http", "url"]);
        let shown = [
            (
                Origin::env("CRYPTOFEED_PROXY_ENABLED"),
                "`CRYPTOFEED_PROXY_ENABLED` (environment)",
            ),
            (
                Origin::Env {
                    var: "CRYPTOFEED_PROXY_DEFAULT".into(),
                    json_path: KeyPath::from_keys(["http", "url"]),
                },
                "`CRYPTOFEED_PROXY_DEFAULT` (environment, JSON at `http.url`)",
            ),
            (
                Origin::Yaml {
                    file: "c.yaml".into(),
                    line: Some(4),
                    path: path(),
                },
                "c.yaml:4: `default.http.url`",
            ),
            (
                Origin::Yaml {
                    file: "c.yaml".into(),
                    line: None,
                    path: path(),
                },
                "c.yaml: `default.http.url`",
            ),
            (
                Origin::File {
                    file: "c.yaml".into(),
                    line: Some(2),
                },
                "c.yaml:2",
            ),
            (
                Origin::File {
                    file: "c.yaml".into(),
                    line: None,
                },
                "c.yaml",
            ),
            (Origin::settings(), "settings"),
            (
                Origin::Settings { path: path() },
                "settings `default.http.url`",
            ),
        ];
        for (origin, text) in shown {
            assert_eq!(origin.to_string(), text);
        }
    }
}
