//! Environment variables: mapping names under a prefix to schema paths, and reading JSON
//! for variables that name an object.
//!
//! Never reads the process environment itself: the caller hands it a list of pairs
//! ([`super::process`] collects the process's).

use std::borrow::Cow;

use crate::settings::schema::{FieldKind, Scalar, Schema};

use super::build::build;
use super::error::{ErrorKind, SettingError};
use super::node::{Entry, Node, Raw};
use super::origin::{KeyPath, Origin};

/// Separates levels in a variable name.
pub(crate) const DELIMITER: &str = "__";

/// Reads every variable under `prefix` into `tree`. Variables are applied from the
/// shortest path to the longest, so `PREFIX_DEFAULT__HTTP__URL` overrides the same leaf
/// inside a JSON `PREFIX_DEFAULT`. `skip` names a variable to leave out (the one naming
/// the config file).
pub(crate) fn read(
    root: fn() -> &'static Schema,
    prefix: &str,
    vars: &[(String, String)],
    skip: Option<&str>,
    tree: &mut Node,
    errors: &mut Vec<SettingError>,
) {
    let n = prefix.len();
    for (name, _) in vars {
        if skip.is_some_and(|s| s.eq_ignore_ascii_case(name)) {
            continue;
        }
        if let Some(suggestion) = near_miss(root, prefix, name) {
            errors.push(SettingError::new(
                Origin::env(name),
                ErrorKind::UnknownKey {
                    suggestion: Some(suggestion.clone()),
                },
                format!(
                    "not under the prefix `{}`, but close to a setting: did you mean `{suggestion}`?",
                    prefix.to_ascii_uppercase()
                ),
            ));
        }
    }
    // (the name after the prefix in lower case, the name as set, the value)
    let mut located: Vec<(String, &str, &str)> = vars
        .iter()
        .filter(|(name, _)| {
            name.as_bytes()
                .get(..n)
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
                && skip.is_none_or(|s| !s.eq_ignore_ascii_case(name))
        })
        .filter_map(|(name, value)| {
            let rest = name.get(n..)?.to_ascii_lowercase();
            Some((rest, name.as_str(), value.as_str()))
        })
        .collect();
    located.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));

    // The same name in several spellings: an error, and none of them is used.
    let mut i = 0;
    let mut unique = Vec::with_capacity(located.len());
    while i < located.len() {
        let same = located[i..]
            .iter()
            .take_while(|l| l.0 == located[i].0)
            .count();
        if same > 1 {
            let names: Vec<&str> = located[i..i + same].iter().map(|l| l.1).collect();
            errors.push(SettingError::new(
                Origin::env(located[i].1),
                ErrorKind::Duplicate,
                format!(
                    "set more than once with different letter case ({}); names are case-insensitive, keep one",
                    names.join(", ")
                ),
            ));
        } else {
            unique.push(i);
        }
        i += same;
    }
    unique.sort_by_cached_key(|&i| located[i].0.matches(DELIMITER).count());
    for i in unique {
        let (rest, var, value) = &located[i];
        read_var(root, prefix, rest, var, value, tree, errors);
    }
}

/// The variable `name` probably meant, when it is not under `prefix` but starts with
/// something a few edits from it and goes on with a top-level setting
/// (`CRYPTOFEED_PROXIES_ENABLED`, `CRYPTOFED_PROXY_DEFAULT__HTTP__URL`): a misspelled prefix
/// must not send traffic direct silently. Names under the prefix are checked elsewhere.
pub(crate) fn near_miss(root: fn() -> &'static Schema, prefix: &str, name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let prefix = prefix.to_ascii_uppercase();
    if prefix.is_empty() || upper.starts_with(&prefix) {
        return None;
    }
    let fields = root().fields();
    let len = prefix.len();
    (len.saturating_sub(3)..=len + 3)
        .filter(|&split| split <= upper.len() && upper.is_char_boundary(split))
        .filter(|&split| proxy_rules::edit_distance(&upper[..split], &prefix) <= 3)
        .find_map(|split| {
            let rest = &upper[split..];
            let first = rest.split(DELIMITER).next()?.to_ascii_lowercase();
            fields
                .iter()
                .any(|f| f.name() == first)
                .then(|| format!("{prefix}{rest}"))
        })
}

/// Reads one variable (`rest` is its name after the prefix, in lower case) into `tree`.
fn read_var(
    root: fn() -> &'static Schema,
    prefix: &str,
    rest: &str,
    var: &str,
    value: &str,
    tree: &mut Node,
    errors: &mut Vec<SettingError>,
) {
    let segments: Vec<&str> = rest.split(DELIMITER).collect();
    let unknown = |errors: &mut Vec<SettingError>, depth: usize, names: Vec<&str>, what: String| {
        let suggestion = proxy_rules::closest(segments[depth], names.iter().copied()).map(|s| {
            let mut fixed = segments.clone();
            fixed[depth] = s;
            format!("{prefix}{}", fixed.join(DELIMITER)).to_ascii_uppercase()
        });
        let msg = match &suggestion {
            Some(s) => format!("{what}; did you mean `{s}`?"),
            None => format!(
                "{what}; valid names here: {}",
                names.join(", ").to_ascii_uppercase()
            ),
        };
        errors.push(SettingError::new(
            Origin::env(var),
            ErrorKind::UnknownKey { suggestion },
            msg,
        ));
    };

    // Walk the schema down to the node the name points at, remembering the keys on the way.
    let root_kind = FieldKind::Struct(root);
    let mut kind: &FieldKind = &root_kind;
    let mut keys: Vec<Cow<'static, str>> = Vec::with_capacity(segments.len());
    for (depth, segment) in segments.iter().enumerate() {
        match kind.unwrap_optional() {
            FieldKind::Struct(schema) => {
                let schema = schema();
                match schema.field(segment) {
                    Some(field) => {
                        keys.push(Cow::Borrowed(field.name()));
                        kind = field.kind();
                    }
                    None => {
                        let names = schema.fields().iter().map(|f| f.name()).collect();
                        unknown(errors, depth, names, "no such setting".to_owned());
                        return;
                    }
                }
            }
            FieldKind::Map { key, value } => match key.normalize(segment) {
                Ok(norm) => {
                    keys.push(Cow::Owned(norm));
                    kind = value;
                }
                Err(why) => {
                    errors.push(SettingError::new(
                        Origin::env(var),
                        ErrorKind::Invalid,
                        format!("invalid key `{segment}` in the name: {why}"),
                    ));
                    return;
                }
            },
            FieldKind::Leaf(_) => {
                errors.push(SettingError::new(
                    Origin::env(var),
                    ErrorKind::UnknownKey { suggestion: None },
                    format!(
                        "no such setting: `{}` holds a single value and has no `{}`",
                        keys.last().map(|k| k.as_ref()).unwrap_or_default(),
                        segment.to_ascii_uppercase()
                    ),
                ));
                return;
            }
            _ => return,
        }
    }
    // From here on the name is valid: a rejected value still marks its path as given, so
    // that it is not also reported as missing.
    let node = if value.is_empty() {
        errors.push(SettingError::new(
            Origin::env(var),
            ErrorKind::Empty,
            "empty value",
        ));
        Node::Invalid
    } else {
        let raw = match kind.unwrap_optional() {
            FieldKind::Leaf(_) => Ok(Raw::Scalar(Scalar::Text(value.to_owned()))),
            _ => serde_json::from_str::<Json>(value).map(|j| j.0),
        };
        match raw {
            Ok(raw) => {
                let place = |p: &KeyPath, _: Option<usize>| Origin::Env {
                    var: var.to_owned(),
                    json_path: p.clone(),
                };
                match build(kind, raw, None, &place, errors) {
                    Some(node) => node,
                    None => return,
                }
            }
            Err(e) => {
                errors.push(SettingError::new(
                    Origin::env(var),
                    ErrorKind::Invalid,
                    format!(
                        "expected JSON for {} (line {} column {}: {})",
                        kind.expected(),
                        e.line(),
                        e.column(),
                        json_error_reason(&e)
                    ),
                ));
                Node::Invalid
            }
        }
    };
    insert(tree, &keys, node, var);
}

/// Puts `node` at `keys` in `tree`, creating the maps on the way (remembered as created by
/// `var`), and merging it with what is there.
fn insert(tree: &mut Node, keys: &[Cow<'static, str>], node: Node, var: &str) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut cur = tree;
    for key in parents {
        if !matches!(cur, Node::Map(..)) {
            *cur = Node::map(Origin::env(var));
        }
        let Node::Map(map, _) = cur else { return };
        if !map.contains_key(key.as_ref()) {
            map.insert(key.to_string(), Node::map(Origin::env(var)));
        }
        let Some(next) = map.get_mut(key.as_ref()) else {
            return;
        };
        cur = next;
    }
    if !matches!(cur, Node::Map(..)) {
        *cur = Node::map(Origin::env(var));
    }
    if let Node::Map(map, _) = cur {
        match map.get_mut(last.as_ref()) {
            Some(existing) => existing.merge(node),
            None => {
                map.insert(last.to_string(), node);
            }
        }
    }
}

/// The kind of error serde_json found, without the input it quotes.
fn json_error_reason(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}

/// A JSON value read straight into a [`Raw`], keeping duplicate keys (so that they can
/// be reported, as YAML's are) and refusing `null` (a variable cannot unset what a file
/// sets; `null` would silently do nothing).
struct Json(Raw);

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor).map(Json)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Scalar(Scalar::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Scalar::Int(i128::from(v))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Scalar::Int(i128::from(v))))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Scalar::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Scalar(Scalar::Text(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Scalar(Scalar::Text(v)))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Unsupported(
            "null is not accepted in variables (a variable cannot unset what the file sets): remove the key",
        ))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(Json(item)) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, Json(value))) = map.next_entry::<String, Json>()? {
            entries.push(Entry {
                key,
                line: None,
                value,
            });
        }
        Ok(Raw::Map(entries))
    }
}
