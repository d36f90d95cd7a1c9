//! Loading settings: defaults < YAML < environment, merged leaf by leaf, every error
//! collected with its source.
//!
//! The loaders are generic over any [`Settings`] type and driven by its schema. They touch
//! the process environment only when asked to ([`Loader::process_env`]), so tests inject
//! variables as a list of pairs.

mod env;
mod error;
mod tree;
mod vars;
mod yaml;

use std::borrow::Cow;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

pub use error::{ErrorKind, LoadError, SettingError, Source};
pub use vars::{VarInfo, variables};

use crate::Settings;
use crate::redact::redact_text;
use tree::{Names, Node, Place, merge};

/// How many errors get a YAML line number.
const MAX_LOCATED: usize = 100;

/// Where a YAML document comes from.
#[derive(Clone)]
enum YamlSource {
    File(PathBuf),
    Text { name: String, text: String },
}

#[derive(Clone)]
enum EnvSource {
    None,
    Vars(Vec<(String, String)>),
    Process,
}

/// Loads a [`Settings`] type from a YAML file and environment variables.
///
/// Precedence, lowest first: the type's serde defaults, the YAML file (the one given with
/// [`yaml_file`](Self::yaml_file) or [`yaml_str`](Self::yaml_str), else the one named by
/// the type's `config_env` variable), then the variables under the prefix. Sources are
/// merged leaf by leaf. [`load`](Self::load) reports every problem of every source at once.
///
/// ```
/// use proxy_runtime::{ConnectionKind, ProxySettings};
/// let yaml = "proxy:\n  enabled: true\n  default:\n    http:\n      url: socks5h://file-proxy:1080\n      timeout_seconds: 10\n";
/// let settings = ProxySettings::loader()
///     .yaml_str("config.yaml", yaml)
///     .env_vars([("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://env-proxy:1080")])
///     .load()?;
/// let http = settings.get_proxy("binance", ConnectionKind::Http).unwrap();
/// assert_eq!(http.url().to_string(), "socks5h://env-proxy:1080"); // from the environment
/// assert_eq!(http.timeout().get(), 10); // from the file
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
#[derive(Clone)]
pub struct Loader<T> {
    env_prefix: Option<String>,
    yaml: Option<YamlSource>,
    env: EnvSource,
    _settings: PhantomData<fn() -> T>,
}

/// Shows the sources without their contents: variables and YAML text may hold passwords.
impl<T> std::fmt::Debug for Loader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yaml = match &self.yaml {
            None => None,
            Some(YamlSource::File(path)) => Some(path.display().to_string()),
            Some(YamlSource::Text { name, .. }) => Some(name.clone()),
        };
        let env = match &self.env {
            EnvSource::None => "none".to_owned(),
            EnvSource::Vars(v) => format!("{} variables", v.len()),
            EnvSource::Process => "process".to_owned(),
        };
        f.debug_struct("Loader")
            .field("env_prefix", &self.env_prefix)
            .field("yaml", &yaml)
            .field("env", &env)
            .finish()
    }
}

impl<T: Settings> Default for Loader<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Settings> Loader<T> {
    /// A loader with no sources: loading gives the defaults.
    pub fn new() -> Self {
        Self {
            env_prefix: None,
            yaml: None,
            env: EnvSource::None,
            _settings: PhantomData,
        }
    }

    /// Uses another variable prefix than the type's `env_prefix`.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// Reads this YAML file (instead of the one the `config_env` variable names).
    pub fn yaml_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.yaml = Some(YamlSource::File(path.into()));
        self
    }

    /// Reads this YAML text, called `name` in messages.
    pub fn yaml_str(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.yaml = Some(YamlSource::Text {
            name: name.into(),
            text: text.into(),
        });
        self
    }

    /// Takes environment variables from this list instead of the process.
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env = EnvSource::Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Takes environment variables from the process.
    pub fn process_env(mut self) -> Self {
        self.env = EnvSource::Process;
        self
    }

    /// The variable prefix in force: the one set here, else the type's.
    pub fn effective_prefix(&self) -> Option<&str> {
        self.env_prefix.as_deref().or(T::OPTIONS.env_prefix)
    }

    /// Loads the settings, or every problem found.
    pub fn load(&self) -> Result<T, LoadError> {
        let mut errors = Vec::new();
        let prefix = self.effective_prefix().unwrap_or_default().to_owned();
        let vars = self.collect_env(&prefix, &mut errors);
        let names = Names {
            env_prefix: &prefix,
            yaml_section: T::OPTIONS.yaml_section,
        };
        let root_source = Source::Merged {
            path: String::new(),
        };
        let mut tree = Node::Map(Default::default(), root_source);

        let yaml_text = match self.read_yaml(&vars, &mut errors) {
            Some((node, text)) => {
                if let Some(node) = node {
                    merge(&mut tree, node);
                }
                Some(text)
            }
            None => None,
        };
        if !prefix.is_empty() {
            let config_var = T::OPTIONS.config_env;
            env::read(
                T::schema,
                &prefix,
                &vars,
                config_var,
                &mut tree,
                &mut errors,
            );
        } else if !matches!(self.env, EnvSource::None) {
            errors.push(SettingError::new(
                Source::Merged {
                    path: String::new(),
                },
                ErrorKind::Invalid,
                "no environment prefix: give the settings type `#[settings(env_prefix = \"...\")]` or call `Loader::env_prefix`",
            ));
        }
        tree::check_required(T::schema(), &tree, &mut Vec::new(), &names, &mut errors);
        if let Some(text) = yaml_text {
            // Each line costs a parse of the file: enough for the errors anyone reads.
            for e in errors.iter_mut().take(MAX_LOCATED) {
                if let Source::Yaml { path, line, .. } = e.source_mut() {
                    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
                    *line = yaml::line_of(&text, &segments);
                }
            }
        }
        if !errors.is_empty() {
            return Err(LoadError::new(errors));
        }
        T::deserialize(tree::NodeDeserializer(tree)).map_err(|e| {
            LoadError::new(vec![SettingError::new(
                Source::Merged {
                    path: String::new(),
                },
                ErrorKind::Invalid,
                redact_text(&e.to_string()).into_owned(),
            )])
        })
    }

    fn collect_env(
        &self,
        prefix: &str,
        errors: &mut Vec<SettingError>,
    ) -> Cow<'_, [(String, String)]> {
        match &self.env {
            EnvSource::None => Cow::Borrowed(&[]),
            EnvSource::Vars(vars) => Cow::Borrowed(vars),
            EnvSource::Process => {
                let upper_prefix = prefix.to_ascii_uppercase();
                let config_var = T::OPTIONS.config_env;
                let mut out = Vec::new();
                for (name, value) in std::env::vars_os() {
                    let name = name.to_string_lossy().into_owned();
                    let upper = name.to_ascii_uppercase();
                    let wanted = (!upper_prefix.is_empty() && upper.starts_with(&upper_prefix))
                        || config_var.is_some_and(|c| c.eq_ignore_ascii_case(&name));
                    if !wanted {
                        continue;
                    }
                    match value.into_string() {
                        Ok(value) => out.push((name, value)),
                        Err(_) => errors.push(SettingError::new(
                            Source::Env {
                                var: name,
                                json_path: None,
                            },
                            ErrorKind::Unreadable,
                            "value is not valid UTF-8",
                        )),
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// Reads the YAML source, if any: its tree (if it has the section) and its text.
    fn read_yaml(
        &self,
        vars: &[(String, String)],
        errors: &mut Vec<SettingError>,
    ) -> Option<(Option<Node>, String)> {
        let (name, text) = match &self.yaml {
            Some(YamlSource::Text { name, text }) => (name.clone(), text.clone()),
            Some(YamlSource::File(path)) => read_file(path, errors)?,
            None => {
                let var = T::OPTIONS.config_env?;
                let (set_as, path) = vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(var))?;
                if path.is_empty() {
                    errors.push(SettingError::new(
                        Source::Env {
                            var: set_as.clone(),
                            json_path: None,
                        },
                        ErrorKind::Empty,
                        "empty value (it should name a YAML file)",
                    ));
                    return None;
                }
                read_file(Path::new(path), errors)?
            }
        };
        let doc = match yaml::parse(&text) {
            Ok(doc) => doc,
            Err((line, reason)) => {
                errors.push(SettingError::new(
                    Source::File { file: name, line },
                    ErrorKind::Unreadable,
                    format!("invalid YAML: {reason}"),
                ));
                return None;
            }
        };
        let section = T::OPTIONS.yaml_section;
        let (raw, base_path) = match section {
            Some(section) => {
                let serde_yaml::Value::Mapping(mut top) = doc else {
                    if !doc.is_null() {
                        errors.push(SettingError::new(
                            Source::File {
                                file: name,
                                line: None,
                            },
                            ErrorKind::Invalid,
                            format!("expected a mapping with a `{section}:` key at the top"),
                        ));
                    }
                    return None;
                };
                let Some(value) = top.remove(section) else {
                    return Some((None, text));
                };
                (yaml::to_raw(value), vec![section.to_owned()])
            }
            None => (yaml::to_raw(doc), Vec::new()),
        };
        let place = |p: &[String]| {
            let mut full = base_path.clone();
            full.extend_from_slice(p);
            Source::Yaml {
                file: name.clone(),
                path: full.join("."),
                line: None,
            }
        };
        let place: Place<'_> = &place;
        let kind = crate::schema::FieldKind::Struct(T::schema);
        let node = tree::build(&kind, raw, &mut Vec::new(), place, errors);
        Some((node, text))
    }
}

fn read_file(path: &Path, errors: &mut Vec<SettingError>) -> Option<(String, String)> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Some((name, text)),
        Err(e) => {
            errors.push(SettingError::new(
                Source::File {
                    file: name,
                    line: None,
                },
                ErrorKind::Unreadable,
                format!("cannot read the file: {e}"),
            ));
            None
        }
    }
}
