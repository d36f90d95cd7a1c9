//! Loading settings: defaults < YAML < environment, merged leaf by leaf, every error
//! collected with its origin.
//!
//! The loaders are generic over any [`Settings`] type and driven by its schema; nothing
//! here knows the proxy settings. They touch the process environment only when asked to
//! ([`Loader::process_env`]), so tests inject variables as a list of pairs.
//!
//! The pipeline: each source is read into a checked tree (`yaml` and `env`, through
//! `build`), the trees are merged (`node`), required fields are checked (`required`), and
//! serde builds the typed value from the merged tree (`de`).

mod build;
mod de;
mod env;
mod environment;
mod error;
mod node;
mod origin;
mod process;
mod required;
mod vars;
mod yaml;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

pub use environment::Environment;
pub use error::{ErrorKind, LoadError, SettingError};
pub use origin::{KeyPath, Origin, Origins};
pub use vars::{VarInfo, variables};

use crate::redact::redact_text;
use crate::settings::schema::FieldKind;
use crate::settings::schema::Settings;
use node::Node;

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

    /// The YAML file this loader reads: the one given with [`yaml_file`](Self::yaml_file),
    /// else the one the type's `config_env` variable names (`CRYPTOFEED_CONFIG`) in the
    /// variables it reads now; `None` for text given with [`yaml_str`](Self::yaml_str), or
    /// when no file is named.
    pub fn file(&self) -> Option<PathBuf> {
        match &self.yaml {
            Some(YamlSource::File(path)) => Some(path.clone()),
            Some(YamlSource::Text { .. }) => None,
            None => {
                let var = T::OPTIONS.config_env?;
                let path = match &self.env {
                    EnvSource::None => None,
                    EnvSource::Vars(vars) => vars
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(var))
                        .map(|(_, v)| std::ffi::OsString::from(v)),
                    EnvSource::Process => std::env::vars_os()
                        .find(|(k, _)| k.to_str().is_some_and(|k| k.eq_ignore_ascii_case(var)))
                        .map(|(_, v)| v),
                };
                path.filter(|p| !p.is_empty()).map(PathBuf::from)
            }
        }
    }

    /// The variable prefix in force: the one set here, else the type's.
    pub fn effective_prefix(&self) -> Option<&str> {
        self.env_prefix.as_deref().or(T::OPTIONS.env_prefix)
    }

    /// Loads the settings, or every problem found.
    pub fn load(&self) -> Result<T, LoadError> {
        self.load_with_origins().map(|(settings, _)| settings)
    }

    /// Loads the settings and says where each value came from (for a report such as
    /// `proxy-check`'s), or every problem found.
    ///
    /// ```
    /// use proxy_runtime::ProxySettings;
    /// use proxy_runtime::load::Origin;
    /// let (settings, origins) = ProxySettings::loader()
    ///     .yaml_str("config.yaml", "proxy:\n  enabled: true\n")
    ///     .env_vars([("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://proxy:1080")])
    ///     .load_with_origins()?;
    /// assert!(settings.enabled());
    /// assert_eq!(origins.get(&["enabled"]).unwrap().to_string(), "config.yaml:2: `proxy.enabled`");
    /// assert!(matches!(
    ///     origins.get(&["default", "http", "url"]),
    ///     Some(Origin::Env { var, .. }) if var == "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL"
    /// ));
    /// # Ok::<(), proxy_runtime::LoadError>(())
    /// ```
    pub fn load_with_origins(&self) -> Result<(T, Origins), LoadError> {
        let (tree, file) = self.merged_tree()?;
        let mut origins = tree.origins();
        if let Some((file, gave_values)) = file {
            origins.read_file(file, gave_values);
        }
        let mut settings = T::deserialize(de::NodeDeserializer(tree)).map_err(|e| {
            let origin = e.origin.unwrap_or_else(Origin::settings);
            LoadError::new(vec![SettingError::new(
                origin,
                ErrorKind::Invalid,
                redact_text(&e.message).into_owned(),
            )])
        })?;
        let env = match &self.env {
            EnvSource::None => Environment::none(),
            EnvSource::Vars(vars) => Environment::vars(vars),
            EnvSource::Process => Environment::process(),
        };
        // (An empty list of errors is no error.)
        if let Err(errors) = settings.complete(&env, &mut origins)
            && !errors.is_empty()
        {
            return Err(LoadError::new(errors));
        }
        Ok((settings, origins))
    }

    /// Every source read and merged, with the required fields checked; and the name of
    /// the YAML source read, if one was, with whether it gave any value.
    fn merged_tree(&self) -> Result<(Node, Option<(String, bool)>), LoadError> {
        let mut errors = Vec::new();
        let prefix = self.effective_prefix().unwrap_or_default().to_owned();
        let config_var = T::OPTIONS.config_env;
        let vars = match &self.env {
            EnvSource::None => Vec::new(),
            EnvSource::Vars(vars) => vars.clone(),
            EnvSource::Process => process::collect(
                &prefix,
                config_var,
                |name| env::near_miss(T::schema, &prefix, name).is_some(),
                &mut errors,
            ),
        };
        let mut tree = Node::map(Origin::settings());
        let mut file = None;
        if let Some(node) = self.read_yaml(&vars, &mut file, &mut errors) {
            tree.merge(node);
        }
        if !prefix.is_empty() {
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
                Origin::settings(),
                ErrorKind::Invalid,
                "no environment prefix: give the settings type `#[settings(env_prefix = \"...\")]` or call `Loader::env_prefix`",
            ));
        }
        let names = required::Names {
            env_prefix: &prefix,
            env_delimiter: env::DELIMITER,
            yaml_section: T::OPTIONS.yaml_section,
        };
        required::check(T::schema(), &tree, &names, &mut errors);
        if errors.is_empty() {
            Ok((tree, file))
        } else {
            Err(LoadError::new(errors))
        }
    }

    /// Reads the YAML source, if any, into a checked tree (`None` when it has no settings
    /// or could not be read, which is recorded); `read` gets its name once it is read, and
    /// whether it gave any value (before any other source overrides them).
    fn read_yaml(
        &self,
        vars: &[(String, String)],
        read: &mut Option<(String, bool)>,
        errors: &mut Vec<SettingError>,
    ) -> Option<Node> {
        let (file, text) = match &self.yaml {
            Some(YamlSource::Text { name, text }) => (name.clone(), text.clone()),
            Some(YamlSource::File(path)) => read_file(path, errors)?,
            None => {
                let var = T::OPTIONS.config_env?;
                let (set_as, path) = vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(var))?;
                if path.is_empty() {
                    errors.push(SettingError::new(
                        Origin::env(set_as),
                        ErrorKind::Empty,
                        "empty value (it should name a YAML file)",
                    ));
                    return None;
                }
                read_file(Path::new(path), errors)?
            }
        };
        *read = Some((file.clone(), false));
        let section = T::OPTIONS.yaml_section;
        let (raw, line) = match yaml::section(&text, section) {
            Ok(yaml::Section::Found(raw, line)) => (raw, line),
            Ok(yaml::Section::Absent) => return None,
            Err(failure) => {
                errors.push(SettingError::new(
                    Origin::File {
                        file,
                        line: failure.line,
                    },
                    ErrorKind::Unreadable,
                    failure.reason,
                ));
                return None;
            }
        };
        let base: Vec<String> = section.into_iter().map(str::to_owned).collect();
        let place = |p: &KeyPath, line: Option<usize>| Origin::Yaml {
            file: file.clone(),
            line,
            path: p.under(&base),
        };
        let kind = FieldKind::Struct(T::schema);
        let node = build::build(&kind, raw, line, &place, errors);
        if let Some((_, gave_values)) = read {
            *gave_values = node.as_ref().is_some_and(Node::has_leaves);
        }
        node
    }
}

fn read_file(path: &Path, errors: &mut Vec<SettingError>) -> Option<(String, String)> {
    let name = path.display().to_string();
    match yaml::read_file(path) {
        Ok(text) => Some((name, text)),
        Err(reason) => {
            errors.push(SettingError::new(
                Origin::File {
                    file: name,
                    line: None,
                },
                ErrorKind::Unreadable,
                reason,
            ));
            None
        }
    }
}
