//! The schema-guided value tree that every source is read into, merged leaf by leaf, and
//! finally handed to serde.
//!
//! Reading a source into a [`Node`] checks names, map keys and leaf values against the
//! schema and records each problem with its [`Source`]; nothing here knows which kind of
//! source it reads, beyond the `place` callback that names a path.

use std::collections::BTreeMap;

use crate::redact::redact_value;
use crate::schema::{FieldKind, Scalar, Schema};

use super::error::{ErrorKind, SettingError, Source};

/// A value as a source holds it, before the schema is applied.
#[derive(Debug)]
pub(crate) enum Raw {
    Null,
    Scalar(Scalar),
    Map(Vec<(String, Raw)>),
    Seq,
    /// Something the source cannot express as a setting (a YAML tag, a non-text key, ...):
    /// the message saying so.
    Unsupported(&'static str),
}

/// A checked value: leaves are in canonical form, struct and map keys are final.
#[derive(Debug)]
pub(crate) enum Node {
    Leaf(Scalar),
    Map(BTreeMap<String, Node>, Source),
    /// A value that was given but rejected (its error is already recorded): it counts as
    /// present, so it is not reported missing as well.
    Invalid,
}

/// Names a path of a source (segments as the source wrote them).
pub(crate) type Place<'a> = &'a dyn Fn(&[String]) -> Source;

/// Longest value shown in a message.
const SHOWN_MAX: usize = 120;

/// A value for a message: redacted, and shortened if long.
pub(crate) fn show(value: &str) -> String {
    let redacted = redact_value(value);
    if redacted.chars().count() > SHOWN_MAX {
        let cut: String = redacted.chars().take(SHOWN_MAX).collect();
        format!("`{cut}…`")
    } else {
        format!("`{redacted}`")
    }
}

/// Reads `raw` as a value of `kind`: `None` when absent, [`Node::Invalid`] when rejected.
pub(crate) fn build(
    kind: &FieldKind,
    raw: Raw,
    path: &mut Vec<String>,
    place: Place<'_>,
    errors: &mut Vec<SettingError>,
) -> Option<Node> {
    let before = errors.len();
    let node = build_inner(kind, raw, path, place, errors);
    match node {
        None if errors.len() > before => Some(Node::Invalid),
        node => node,
    }
}

fn build_inner(
    kind: &FieldKind,
    raw: Raw,
    path: &mut Vec<String>,
    place: Place<'_>,
    errors: &mut Vec<SettingError>,
) -> Option<Node> {
    let error = |errors: &mut Vec<SettingError>, path: &[String], kind, msg: String| {
        errors.push(SettingError::new(place(path), kind, msg));
    };
    match (kind, raw) {
        (FieldKind::Optional(inner), raw) => match raw {
            Raw::Null => None,
            raw => build_inner(inner, raw, path, place, errors),
        },
        (_, Raw::Unsupported(what)) => {
            error(errors, path, ErrorKind::Invalid, (*what).to_owned());
            None
        }
        (FieldKind::Leaf(_), Raw::Null) => {
            error(errors, path, ErrorKind::Empty, "empty value".to_owned());
            None
        }
        (FieldKind::Leaf(_), Raw::Scalar(Scalar::Text(t))) if t.is_empty() => {
            error(errors, path, ErrorKind::Empty, "empty value".to_owned());
            None
        }
        (FieldKind::Leaf(leaf), Raw::Scalar(s)) => match (leaf.parse)(&s) {
            Ok(v) => Some(Node::Leaf(v)),
            Err(why) => {
                let msg = format!("{why}; got {}", show(&s.to_text()));
                error(errors, path, ErrorKind::Invalid, msg);
                None
            }
        },
        (FieldKind::Leaf(leaf), Raw::Map(_) | Raw::Seq) => {
            let msg = format!("expected {}, found a mapping or list", leaf.expected);
            error(errors, path, ErrorKind::Invalid, msg);
            None
        }
        (FieldKind::Struct(_) | FieldKind::Map { .. }, Raw::Null) => None,
        (FieldKind::Struct(schema), Raw::Map(entries)) => {
            let schema = schema();
            let mut out = BTreeMap::new();
            for (key, value) in entries {
                path.push(key);
                let key = path.last().map(String::as_str).unwrap_or_default();
                match schema.field(key) {
                    Some(field) if out.contains_key(field.name) => {
                        let msg = format!("`{}` is given more than once", field.name);
                        error(errors, path, ErrorKind::Duplicate, msg);
                    }
                    Some(field) => {
                        let name = field.name.to_owned();
                        if let Some(node) = build(&field.kind, value, path, place, errors) {
                            out.insert(name, node);
                        }
                    }
                    None => {
                        let suggestion = closest(key, schema.fields.iter().map(|f| f.name));
                        let msg = unknown_key_message(schema, suggestion);
                        errors.push(SettingError::new(
                            place(path),
                            ErrorKind::UnknownKey {
                                suggestion: suggestion.map(str::to_owned),
                            },
                            msg,
                        ));
                    }
                }
                path.pop();
            }
            Some(Node::Map(out, place(path)))
        }
        (
            FieldKind::Map {
                key: key_schema,
                value: value_kind,
            },
            Raw::Map(entries),
        ) => {
            let mut out = BTreeMap::new();
            for (key, value) in entries {
                path.push(key);
                let raw_key = path.last().map(String::as_str).unwrap_or_default();
                match (key_schema.normalize)(raw_key) {
                    Ok(norm) if out.contains_key(&norm) => {
                        let msg =
                            format!("`{norm}` is given more than once (keys are case-insensitive)");
                        error(errors, path, ErrorKind::Duplicate, msg);
                    }
                    Ok(norm) => {
                        if let Some(node) = build(value_kind, value, path, place, errors) {
                            out.insert(norm, node);
                        }
                    }
                    Err(why) => {
                        let msg = format!("invalid key {}: {why}", show(raw_key));
                        error(errors, path, ErrorKind::Invalid, msg);
                    }
                }
                path.pop();
            }
            Some(Node::Map(out, place(path)))
        }
        (kind, Raw::Scalar(s)) => {
            let msg = format!("expected {}, found {}", kind.expected(), s.kind_name());
            error(errors, path, ErrorKind::Invalid, msg);
            None
        }
        (kind, Raw::Seq) => {
            let msg = format!("expected {}, found a list", kind.expected());
            error(errors, path, ErrorKind::Invalid, msg);
            None
        }
    }
}

fn unknown_key_message(schema: &Schema, suggestion: Option<&str>) -> String {
    let names: Vec<&str> = schema.fields.iter().map(|f| f.name).collect();
    match suggestion {
        Some(s) => format!(
            "unknown key; did you mean `{s}`? ({} has: {})",
            schema.type_name,
            names.join(", ")
        ),
        None => format!(
            "unknown key ({} has: {})",
            schema.type_name,
            names.join(", ")
        ),
    }
}

/// Puts `over` on top of `base`, leaf by leaf.
pub(crate) fn merge(base: &mut Node, over: Node) {
    match (base, over) {
        (Node::Map(base, _), Node::Map(over, _)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// How a path is written in each source, for "missing value" messages.
pub(crate) struct Names<'a> {
    pub(crate) env_prefix: &'a str,
    pub(crate) yaml_section: Option<&'a str>,
}

impl Names<'_> {
    fn env(&self, path: &[String]) -> String {
        format!("{}{}", self.env_prefix, path.join("__")).to_ascii_uppercase()
    }
    fn yaml(&self, path: &[String]) -> String {
        let mut parts: Vec<&str> = self.yaml_section.into_iter().collect();
        parts.extend(path.iter().map(String::as_str));
        parts.join(".")
    }
}

/// Checks that every struct present in the tree has its required fields.
pub(crate) fn check_required(
    schema: &Schema,
    node: &Node,
    path: &mut Vec<String>,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    let Node::Map(entries, source) = node else {
        return;
    };
    for field in &schema.fields {
        path.push(field.name.to_owned());
        match entries.get(field.name) {
            Some(child) => check_kind(&field.kind, child, path, names, errors),
            None if field.required => {
                let msg = format!(
                    "missing required `{}`: set `{}` or `{}`",
                    field.name,
                    names.env(path),
                    names.yaml(path)
                );
                errors.push(SettingError::new(source.clone(), ErrorKind::Missing, msg));
            }
            None => {}
        }
        path.pop();
    }
}

fn check_kind(
    kind: &FieldKind,
    node: &Node,
    path: &mut Vec<String>,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    match (kind.unwrap_optional(), node) {
        (FieldKind::Struct(schema), node) => check_required(schema(), node, path, names, errors),
        (FieldKind::Map { value, .. }, Node::Map(entries, _)) => {
            for (k, child) in entries {
                path.push(k.clone());
                check_kind(value, child, path, names, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Hands a checked tree to serde: the typed value is built straight from it.
pub(crate) struct NodeDeserializer(pub(crate) Node);

type DeError = serde::de::value::Error;

impl<'de> serde::Deserializer<'de> for NodeDeserializer {
    type Error = DeError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Node::Leaf(Scalar::Bool(b)) => visitor.visit_bool(b),
            Node::Leaf(Scalar::Int(i)) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(i), _) => visitor.visit_i64(i),
                (_, Ok(u)) => visitor.visit_u64(u),
                _ => visitor.visit_i128(i),
            },
            Node::Leaf(Scalar::Float(x)) => visitor.visit_f64(x),
            Node::Leaf(Scalar::Text(t)) => visitor.visit_string(t),
            Node::Map(entries, _) => visitor.visit_map(serde::de::value::MapDeserializer::new(
                entries.into_iter().map(|(k, v)| (k, NodeDeserializer(v))),
            )),
            Node::Invalid => Err(serde::de::Error::custom("a rejected value")),
        }
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> serde::de::IntoDeserializer<'de, DeError> for NodeDeserializer {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// The candidate closest to `given`, if it is close enough to be what was meant.
pub(crate) fn closest<'a>(
    given: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    if given.is_empty() {
        return None;
    }
    candidates
        .map(|c| (edit_distance(&given, c), c))
        .filter(|(d, c)| {
            *d <= 2.max(given.len() / 3) || c.starts_with(&given) || given.starts_with(c)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = ["enabled", "default", "exchanges"];
        assert_eq!(closest("enable", names.into_iter()), Some("enabled"));
        assert_eq!(closest("exchange", names.into_iter()), Some("exchanges"));
        assert_eq!(closest("defualt", names.into_iter()), Some("default"));
        assert_eq!(closest("zzzzzzzz", names.into_iter()), None);
        let fields = ["url", "timeout_seconds"];
        assert_eq!(
            closest("timeout", fields.into_iter()),
            Some("timeout_seconds")
        );
        assert_eq!(closest("uri", fields.into_iter()), Some("url"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
