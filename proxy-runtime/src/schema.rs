//! The settings schema that `#[derive(Settings)]` generates, and the traits that give each
//! field type its place in it.
//!
//! This module describes shapes only: which names exist, what is nested, what is a map keyed
//! by id, what is optional and how a leaf is read from text. It reads no source and reports
//! no error itself; the loaders in [`crate::load`] walk the schema to do that.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use crate::redact::redact_value;

/// A settings struct: a type whose variable names and YAML keys are its field names.
///
/// Implement it with `#[derive(Settings)]` (which needs `serde::Deserialize` derived too);
/// the derive accepts these container options in `#[settings(...)]`:
/// - `env_prefix = "MYAPP_"`: the prefix of its environment variables;
/// - `yaml_section = "name"`: read the top-level `name:` mapping of a YAML file and ignore
///   the file's other keys (without it, the whole document is the settings);
/// - `config_env = "MYAPP_CONFIG"`: a variable naming the YAML file to read.
///
/// ```
/// use proxy_runtime::{Settings, Loader};
///
/// #[derive(Debug, serde::Deserialize, Settings)]
/// #[settings(env_prefix = "MYAPP_", yaml_section = "myapp")]
/// struct AppSettings {
///     /// Whether to trade for real.
///     #[serde(default)]
///     live: bool,
///     /// Request budget per second.
///     #[serde(default = "default_rate")]
///     rate: u32,
/// }
/// fn default_rate() -> u32 { 10 }
///
/// let s: AppSettings = Loader::new().env_vars([("MYAPP_LIVE", "yes")]).load()?;
/// assert!(s.live);
/// assert_eq!(s.rate, 10);
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
pub trait Settings: DeserializeOwned {
    /// The container options given to the derive.
    const OPTIONS: SettingsOptions;

    /// The fields of this struct, built once per type.
    fn schema() -> &'static Schema;
}

/// Container options of a [`Settings`] struct, from `#[settings(...)]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsOptions {
    /// Prefix of the environment variables, like `CRYPTOFEED_PROXY_`.
    pub env_prefix: Option<&'static str>,
    /// Top-level YAML key whose mapping holds the settings, like `proxy`.
    pub yaml_section: Option<&'static str>,
    /// Variable that names a YAML file to read, like `CRYPTOFEED_CONFIG`.
    pub config_env: Option<&'static str>,
}

/// The fields of one settings struct.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The Rust type's name, for messages.
    pub type_name: &'static str,
    /// The fields, in declaration order.
    pub fields: Vec<FieldSchema>,
}

impl Schema {
    /// The field called `name`, if any.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of a settings struct.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// The field's name: its YAML key, and, in upper case, its part of a variable name.
    pub name: &'static str,
    /// The first line of the field's doc comment.
    pub doc: &'static str,
    /// What the field holds.
    pub kind: FieldKind,
    /// Whether the field may be left out (it has a serde default, or it is an `Option`).
    pub required: bool,
    /// Shows the field's default value, when it has a serde default.
    pub default: Option<fn() -> String>,
}

/// What a settings field holds.
#[derive(Clone)]
#[non_exhaustive]
pub enum FieldKind {
    /// A value read from text (or a YAML scalar).
    Leaf(LeafSchema),
    /// A nested settings struct.
    Struct(fn() -> &'static Schema),
    /// An optional value (`Option<T>`).
    Optional(Box<FieldKind>),
    /// A map keyed by id (`BTreeMap<ExchangeId, T>`, ...).
    Map {
        /// How keys are checked and normalized.
        key: KeySchema,
        /// What each value holds.
        value: Box<FieldKind>,
    },
}

impl FieldKind {
    /// The kind with any `Optional` layers removed.
    pub fn unwrap_optional(&self) -> &FieldKind {
        match self {
            FieldKind::Optional(inner) => inner.unwrap_optional(),
            other => other,
        }
    }

    /// A short description of what a value of this kind looks like.
    pub fn expected(&self) -> String {
        match self {
            FieldKind::Leaf(l) => l.expected.to_owned(),
            FieldKind::Struct(s) => format!("a mapping ({})", s().type_name),
            FieldKind::Optional(inner) => inner.expected(),
            FieldKind::Map { key, .. } => format!("a mapping keyed by {}", key.expected),
        }
    }
}

impl fmt::Debug for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldKind::Leaf(l) => write!(f, "Leaf({:?})", l.expected),
            FieldKind::Struct(s) => write!(f, "Struct({})", s().type_name),
            FieldKind::Optional(inner) => write!(f, "Optional({inner:?})"),
            FieldKind::Map { key, value } => write!(f, "Map({:?} => {value:?})", key.expected),
        }
    }
}

/// How a leaf is read.
#[derive(Debug, Clone, Copy)]
pub struct LeafSchema {
    /// What a value must look like, for messages and `proxy-check --vars`.
    pub expected: &'static str,
    /// Checks a value and returns it in the canonical form serde deserializes.
    pub parse: fn(&Scalar) -> Result<Scalar, String>,
}

/// How a map key is read.
#[derive(Debug, Clone, Copy)]
pub struct KeySchema {
    /// What a key must look like, for messages.
    pub expected: &'static str,
    /// The placeholder used in variable names, like `<ID>`.
    pub placeholder: &'static str,
    /// Checks a key and returns its canonical form (an exchange id: lowercase).
    pub normalize: fn(&str) -> Result<String, String>,
}

/// A single value from a source: text from a variable, or a YAML or JSON scalar.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Text(String),
}

impl Scalar {
    /// A word for the kind of value, for messages ("found a boolean").
    pub fn kind_name(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) => "an integer",
            Scalar::Float(_) => "a number with a fraction",
            Scalar::Text(_) => "text",
        }
    }

    /// The value as text, the way a variable would hold it (passwords included: never
    /// print it, use `Display`).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(x) => format!("{x:?}"),
            Scalar::Text(t) => t.clone(),
        }
    }
}

/// Shows the value as text with any URL password replaced by `***`.
impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_value(&self.to_text()))
    }
}

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scalar({self})")
    }
}

/// A type that can be a field of a `#[derive(Settings)]` struct.
///
/// Implemented for every [`SettingsLeaf`], for `Option<T>`, for maps keyed by a
/// [`SettingsKey`], and by `#[derive(Settings)]` for the struct it derives.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a `#[derive(Settings)]` struct",
    label = "this type has no settings schema",
    note = "a settings field is one of: a struct that derives `Settings`; an `Option` of a settings field; a `BTreeMap` or `HashMap` keyed by `ExchangeId` or `String` whose values are settings fields; or a leaf read from text (`bool`, integers, `String`, `PathBuf`, `ProxyUrl`, `ExchangeId`, `TimeoutSeconds`)",
    note = "to read a type of your own from text, implement `proxy_runtime::SettingsLeaf` for it"
)]
pub trait SettingsField {
    /// What this field holds.
    fn kind() -> FieldKind;

    /// Shows a value of this type as a default, in `proxy-check --vars` (redacted).
    fn show_default(&self) -> String {
        String::new()
    }
}

/// A value read from a single piece of text (or a YAML scalar).
pub trait SettingsLeaf: Sized {
    /// What a value must look like, for messages.
    const EXPECTED: &'static str;

    /// Reads a value. The error says what is wrong without repeating the value.
    fn from_scalar(value: &Scalar) -> Result<Self, String>;

    /// The value in the form this type's `Deserialize` accepts.
    fn to_scalar(&self) -> Scalar;

    /// Checks a value and returns it in the form this type's `Deserialize` accepts. The
    /// default reads it and writes it back; a type whose `Deserialize` takes the text as
    /// given may return it unchanged and save the second conversion.
    fn check_scalar(value: &Scalar) -> Result<Scalar, String> {
        Self::from_scalar(value).map(|v| v.to_scalar())
    }
}

impl<T: SettingsLeaf> SettingsField for T {
    fn kind() -> FieldKind {
        FieldKind::Leaf(LeafSchema {
            expected: T::EXPECTED,
            parse: T::check_scalar,
        })
    }
    fn show_default(&self) -> String {
        self.to_scalar().to_string()
    }
}

impl<T: SettingsField> SettingsField for Option<T> {
    fn kind() -> FieldKind {
        FieldKind::Optional(Box::new(T::kind()))
    }
    fn show_default(&self) -> String {
        match self {
            Some(v) => v.show_default(),
            None => "none".to_owned(),
        }
    }
}

/// A type that can key a settings map.
pub trait SettingsKey {
    /// What a key must look like, for messages.
    const EXPECTED: &'static str;
    /// The placeholder used in variable names, like `<ID>`.
    const PLACEHOLDER: &'static str;
    /// Checks a key and returns its canonical form.
    fn normalize_key(key: &str) -> Result<String, String>;
}

impl SettingsKey for String {
    const EXPECTED: &'static str = "a non-empty name";
    const PLACEHOLDER: &'static str = "<NAME>";
    fn normalize_key(key: &str) -> Result<String, String> {
        if key.is_empty() {
            Err("a key must not be empty".to_owned())
        } else {
            Ok(key.to_owned())
        }
    }
}

impl SettingsKey for crate::ExchangeId {
    const EXPECTED: &'static str = "an exchange id";
    const PLACEHOLDER: &'static str = "<ID>";
    fn normalize_key(key: &str) -> Result<String, String> {
        crate::ExchangeId::new(key)
            .map(|id| id.as_str().to_owned())
            .map_err(|e| e.to_string())
    }
}

fn map_kind<K: SettingsKey, V: SettingsField>() -> FieldKind {
    FieldKind::Map {
        key: KeySchema {
            expected: K::EXPECTED,
            placeholder: K::PLACEHOLDER,
            normalize: K::normalize_key,
        },
        value: Box::new(V::kind()),
    }
}

impl<K: SettingsKey, V: SettingsField> SettingsField for BTreeMap<K, V> {
    fn kind() -> FieldKind {
        map_kind::<K, V>()
    }
    fn show_default(&self) -> String {
        if self.is_empty() { "{}" } else { "…" }.to_owned()
    }
}

impl<K: SettingsKey, V: SettingsField, S> SettingsField for HashMap<K, V, S> {
    fn kind() -> FieldKind {
        map_kind::<K, V>()
    }
    fn show_default(&self) -> String {
        if self.is_empty() { "{}" } else { "…" }.to_owned()
    }
}

impl SettingsLeaf for bool {
    const EXPECTED: &'static str = "a boolean (true/false, 1/0, yes/no, on/off)";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Bool(b) => Ok(*b),
            Scalar::Int(0) => Ok(false),
            Scalar::Int(1) => Ok(true),
            Scalar::Text(t) => match t.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(format!("expected {}", Self::EXPECTED)),
            },
            other => Err(format!(
                "expected {}, found {}",
                Self::EXPECTED,
                other.kind_name()
            )),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Bool(*self)
    }
}

/// Reads a decimal integer from text or an integer scalar.
pub(crate) fn parse_int(value: &Scalar) -> Result<i128, String> {
    match value {
        Scalar::Int(i) => Ok(*i),
        Scalar::Text(t) => {
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err("expected a decimal integer".to_owned());
            }
            t.parse::<i128>()
                .map_err(|_| "integer out of range".to_owned())
        }
        other => Err(format!("expected an integer, found {}", other.kind_name())),
    }
}

macro_rules! int_leaf {
    ($($t:ty),*) => {$(
        impl SettingsLeaf for $t {
            const EXPECTED: &'static str = concat!("an integer (", stringify!($t), ")");
            fn from_scalar(value: &Scalar) -> Result<Self, String> {
                let i = parse_int(value)?;
                <$t>::try_from(i).map_err(|_| {
                    format!("expected an integer from {} to {}", <$t>::MIN, <$t>::MAX)
                })
            }
            fn to_scalar(&self) -> Scalar {
                Scalar::Int(i128::from(*self))
            }
        }
    )*};
}
int_leaf!(u8, u16, u32, u64, i8, i16, i32, i64);

impl SettingsLeaf for String {
    const EXPECTED: &'static str = "text";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        Ok(value.to_text())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.clone())
    }
}

impl SettingsLeaf for PathBuf {
    const EXPECTED: &'static str = "a file path";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Text(t) => Ok(PathBuf::from(t)),
            other => Err(format!("expected a file path, found {}", other.kind_name())),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.to_string_lossy().into_owned())
    }
}

impl SettingsLeaf for crate::ProxyUrl {
    const EXPECTED: &'static str = "a proxy URL (SCHEME://[USER:PASSWORD@]HOST:PORT with scheme http, https, socks4, socks4a, socks5 or socks5h) or direct://";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Text(t) => crate::ProxyUrl::parse(t).map_err(|e| e.to_string()),
            other => Err(format!("expected a proxy URL, found {}", other.kind_name())),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.to_unredacted_string())
    }
    fn check_scalar(value: &Scalar) -> Result<Scalar, String> {
        Self::from_scalar(value).map(|_| value.clone())
    }
}

impl SettingsLeaf for crate::ExchangeId {
    const EXPECTED: &'static str = "an exchange id";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        crate::ExchangeId::new(&value.to_text()).map_err(|e| e.to_string())
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.as_str().to_owned())
    }
}
