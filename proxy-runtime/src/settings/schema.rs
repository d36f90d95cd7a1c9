//! The settings schema that `#[derive(Settings)]` generates, and the traits that give each
//! field type its place in it.
//!
//! This module describes shapes only: which names exist, what is nested, what is a map keyed
//! by id, what is optional and how a leaf is read from text. It reads no source and reports
//! no error itself; the loaders in [`crate::settings::load`] walk the schema to do that.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use super::handoff;
use super::load::{Environment, Origins, SettingError};
use crate::redact::redact_value;

/// A settings struct: a type whose variable names and YAML keys are its field names.
///
/// Implement it with `#[derive(Settings)]` (which needs `serde::Deserialize` derived too);
/// the derive accepts these container options in `#[settings(...)]`:
/// - `env_prefix = "MYAPP_"`: the prefix of its environment variables;
/// - `yaml_section = "name"`: read the top-level `name:` mapping of a YAML file and ignore
///   the file's other keys (without it, the whole document is the settings);
/// - `config_env = "MYAPP_CONFIG"`: a variable naming the YAML file to read;
/// - `complete = "path::to::function"`: completes the settings after the load (see
///   [`Settings::complete`]).
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

    /// Completes the settings once every source is read and merged: what no field
    /// describes (variables outside the prefix, as the system's proxy variables), and
    /// checks across fields. `env` holds the load's variables (the list given, or the
    /// process's), `origins` where each value came from; every problem is returned with
    /// its origin, beside the load's others. Nothing, by default; the derive's
    /// `complete = "path"` option names a function `fn(&mut Self, &Environment,
    /// &mut Origins) -> Result<(), Vec<SettingError>>` that does it.
    fn complete(
        &mut self,
        env: &Environment<'_>,
        origins: &mut Origins,
    ) -> Result<(), Vec<SettingError>> {
        let _ = (env, origins);
        Ok(())
    }
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

/// The fields of one settings struct, as `#[derive(Settings)]` describes them. Read it to
/// list or document settings (as [`crate::settings::load::variables`] does); it is built only by the
/// derive.
#[derive(Debug, Clone)]
pub struct Schema {
    type_name: &'static str,
    fields: Vec<FieldSchema>,
    one_of: &'static [&'static [&'static str]],
    shorthand: Option<&'static str>,
}

impl Schema {
    /// For generated code (through `__private`).
    pub(crate) fn new(
        type_name: &'static str,
        fields: Vec<FieldSchema>,
        one_of: &'static [&'static [&'static str]],
        shorthand: Option<&'static str>,
    ) -> Self {
        Self {
            type_name,
            fields,
            one_of,
            shorthand,
        }
    }

    /// The field a single value given for the whole struct sets (`#[settings(shorthand =
    /// "url")]`: `- socks5h://proxy:1080` in a list is `- url: socks5h://proxy:1080`).
    pub fn shorthand(&self) -> Option<&'static str> {
        self.shorthand
    }

    /// The `one_of` groups: of each, exactly one field must be given (a list, not empty).
    pub fn one_of(&self) -> &'static [&'static [&'static str]] {
        self.one_of
    }

    /// The Rust type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The fields, in declaration order.
    pub fn fields(&self) -> &[FieldSchema] {
        &self.fields
    }

    /// The field called `name`, if any.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of a settings struct.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    name: &'static str,
    doc: &'static str,
    kind: FieldKind,
    required: bool,
    default: Option<fn() -> String>,
}

impl FieldSchema {
    /// For generated code (through `__private`).
    pub(crate) fn new(
        name: &'static str,
        doc: &'static str,
        kind: FieldKind,
        required: bool,
        default: Option<fn() -> String>,
    ) -> Self {
        Self {
            name,
            doc,
            kind,
            required,
            default,
        }
    }

    /// The field's name: its YAML key, and, in upper case, its part of a variable name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The first line of the field's doc comment.
    pub fn doc(&self) -> &'static str {
        self.doc
    }

    /// What the field holds.
    pub fn kind(&self) -> &FieldKind {
        &self.kind
    }

    /// Whether a value must be given once the struct holding the field is (it has no serde
    /// default and is not an `Option`).
    pub fn required(&self) -> bool {
        self.required
    }

    /// The field's default value as `proxy-check --vars` shows it (redacted), when it has a
    /// serde default.
    pub fn default_shown(&self) -> Option<String> {
        self.default.map(|show| show())
    }
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
    /// A list (`Vec<T>`): a YAML sequence, or a JSON array in a variable. It is replaced
    /// whole by a source that gives it, never merged item by item.
    List(Box<FieldKind>),
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
            FieldKind::List(item) => format!("a list of {}", item.expected()),
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
            FieldKind::List(item) => write!(f, "List({item:?})"),
        }
    }
}

/// How a leaf is read: what it must look like, and the [`SettingsLeaf`] that reads it.
#[derive(Clone, Copy)]
pub struct LeafSchema {
    expected: &'static str,
    sensitive: bool,
    parse: fn(&Scalar) -> Result<Box<dyn LeafValue>, String>,
}

impl LeafSchema {
    /// What a value must look like, for messages and `proxy-check --vars`.
    pub fn expected(&self) -> &'static str {
        self.expected
    }

    /// Whether a value is a secret, never repeated in a message
    /// ([`SettingsLeaf::SENSITIVE`]).
    pub fn sensitive(&self) -> bool {
        self.sensitive
    }

    /// Reads a value once, keeping the typed result for serde.
    pub(crate) fn parse(&self, value: &Scalar) -> Result<Box<dyn LeafValue>, String> {
        (self.parse)(value)
    }
}

impl fmt::Debug for LeafSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafSchema")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// A leaf already read by its [`SettingsLeaf`]: the loader keeps it in the merged tree and
/// hands it to the type's `Deserialize` (see [`deserialize_leaf`]), so it is read once.
pub(crate) trait LeafValue: Send {
    /// The value in the form `Deserialize` impls that do not take it typed accept.
    fn to_scalar(&self) -> Scalar;
    /// The typed value, for the handoff.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: SettingsLeaf> LeafValue for T {
    fn to_scalar(&self) -> Scalar {
        SettingsLeaf::to_scalar(self)
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// How a map key is read.
#[derive(Clone, Copy)]
pub struct KeySchema {
    expected: &'static str,
    placeholder: &'static str,
    normalize: fn(&str) -> Result<String, String>,
}

impl KeySchema {
    /// What a key must look like, for messages.
    pub fn expected(&self) -> &'static str {
        self.expected
    }

    /// The placeholder used in variable names, like `<ID>`.
    pub fn placeholder(&self) -> &'static str {
        self.placeholder
    }

    /// Checks a key and returns its canonical form (an exchange id: lowercase).
    pub fn normalize(&self, key: &str) -> Result<String, String> {
        (self.normalize)(key)
    }
}

impl fmt::Debug for KeySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySchema")
            .field("expected", &self.expected)
            .field("placeholder", &self.placeholder)
            .finish_non_exhaustive()
    }
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
    note = "a settings field is one of: a struct that derives `Settings`; an `Option` or a `Vec` of a settings field; a `BTreeMap` or `HashMap` keyed by `ExchangeId` or `String` whose values are settings fields; or a leaf read from text (`bool`, integers, `String`, `PathBuf`, `ProxyUrl`, `ExchangeId`, `TimeoutSeconds`)",
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

/// A value read from a single piece of text (or a YAML scalar): a leaf of the settings
/// tree.
///
/// The loader reads each leaf once, with [`from_scalar`](Self::from_scalar), so that a bad
/// value is reported with where it came from beside every other error of the load. A
/// leaf type's `Deserialize` impl should call [`deserialize_leaf`], which takes that
/// already-read value from the loader instead of reading it again (and reads it with
/// `from_scalar` from any other serde format). A `Deserialize` written otherwise still
/// works; it is then given [`to_scalar`](Self::to_scalar)'s form to read a second time.
///
/// ```
/// use proxy_runtime::schema::{Scalar, deserialize_leaf};
/// use proxy_runtime::{Loader, Settings, SettingsLeaf};
///
/// /// A percentage, written `42%` or `42`.
/// #[derive(Debug, PartialEq)]
/// struct Percent(u8);
///
/// impl SettingsLeaf for Percent {
///     const EXPECTED: &'static str = "a percentage from 0 to 100";
///     fn from_scalar(value: &Scalar) -> Result<Self, String> {
///         let text = value.to_text();
///         let digits = text.strip_suffix('%').unwrap_or(&text);
///         match digits.parse::<u8>() {
///             Ok(n) if n <= 100 => Ok(Percent(n)),
///             _ => Err(format!("expected {}", Self::EXPECTED)),
///         }
///     }
///     fn to_scalar(&self) -> Scalar {
///         Scalar::Int(i128::from(self.0))
///     }
/// }
///
/// impl<'de> serde::Deserialize<'de> for Percent {
///     fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
///         deserialize_leaf(d)
///     }
/// }
///
/// #[derive(serde::Deserialize, Settings)]
/// #[settings(env_prefix = "RISK_")]
/// struct Risk {
///     max_drawdown: Percent,
/// }
///
/// let risk: Risk = Loader::new().env_vars([("RISK_MAX_DRAWDOWN", "15%")]).load()?;
/// assert_eq!(risk.max_drawdown, Percent(15));
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
pub trait SettingsLeaf: Sized + Send + 'static {
    /// What a value must look like, for messages.
    const EXPECTED: &'static str;

    /// Whether a value is a secret as a whole (a header that carries a session or a
    /// token): a message about a rejected value then never shows it, not even redacted.
    /// Values that only contain a secret (a URL's password) are redacted instead.
    const SENSITIVE: bool = false;

    /// Reads a value. The error says what is wrong without repeating the value.
    fn from_scalar(value: &Scalar) -> Result<Self, String>;

    /// The value as a scalar that reads back to it (for `Deserialize` impls that do not use
    /// [`deserialize_leaf`], and for showing defaults).
    fn to_scalar(&self) -> Scalar;
}

impl<T: SettingsLeaf> SettingsField for T {
    fn kind() -> FieldKind {
        FieldKind::Leaf(LeafSchema {
            expected: T::EXPECTED,
            sensitive: T::SENSITIVE,
            parse: |value| T::from_scalar(value).map(|v| Box::new(v) as Box<dyn LeafValue>),
        })
    }
    fn show_default(&self) -> String {
        self.to_scalar().to_string()
    }
}

/// The `Deserialize` of a [`SettingsLeaf`] type: takes the value the settings loader
/// already read, and reads any other serde input (a YAML or JSON value of your own) with
/// [`SettingsLeaf::from_scalar`].
pub fn deserialize_leaf<'de, T: SettingsLeaf, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_newtype_struct(handoff::LEAF_TOKEN, LeafVisitor(PhantomData))
}

struct LeafVisitor<T>(PhantomData<fn() -> T>);

impl<T: SettingsLeaf> LeafVisitor<T> {
    fn read<E: serde::de::Error>(value: Scalar) -> Result<T, E> {
        T::from_scalar(&value).map_err(E::custom)
    }
}

impl<'de, T: SettingsLeaf> serde::de::Visitor<'de> for LeafVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        match handoff::take::<T>() {
            Some(value) => Ok(value),
            None => d.deserialize_any(self),
        }
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
        Self::read(Scalar::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        Self::read(Scalar::Int(i128::from(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        Self::read(Scalar::Int(i128::from(v)))
    }
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<T, E> {
        Self::read(Scalar::Int(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
        Self::read(Scalar::Float(v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Self::read(Scalar::Text(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<T, E> {
        Self::read(Scalar::Text(v))
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

impl<T: SettingsField> SettingsField for Vec<T> {
    fn kind() -> FieldKind {
        FieldKind::List(Box::new(T::kind()))
    }
    fn show_default(&self) -> String {
        if self.is_empty() { "[]" } else { "…" }.to_owned()
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

/// Text keys are case-insensitive and kept in lower case, from every source: a variable
/// name cannot carry case (names are matched case-insensitively), so a key a file writes
/// `BTC-USDT` must be the key a variable writes `..._BTC-USDT` or `..._btc-usdt`. Two
/// keys of one source that differ only in case are an error.
impl SettingsKey for String {
    const EXPECTED: &'static str = "a non-empty name";
    const PLACEHOLDER: &'static str = "<NAME>";
    fn normalize_key(key: &str) -> Result<String, String> {
        if key.is_empty() {
            Err("a key must not be empty".to_owned())
        } else {
            Ok(key.to_lowercase())
        }
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

/// An IPv4 or IPv6 address, IPv6 without brackets (`192.0.2.10`, `2001:db8::10`).
impl SettingsLeaf for std::net::IpAddr {
    const EXPECTED: &'static str = "an IP address, like 192.0.2.10 or 2001:db8::10";
    fn from_scalar(value: &Scalar) -> Result<Self, String> {
        match value {
            Scalar::Text(t) => t
                .parse()
                .map_err(|_| format!("expected {}", Self::EXPECTED)),
            other => Err(format!(
                "expected {}, found {}",
                Self::EXPECTED,
                other.kind_name()
            )),
        }
    }
    fn to_scalar(&self) -> Scalar {
        Scalar::Text(self.to_string())
    }
}
