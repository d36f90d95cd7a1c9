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

/// Checks that every struct present has its required fields, and converts the tree into
/// the value serde deserializes.
pub(crate) fn finish(
    schema: &Schema,
    node: Node,
    path: &mut Vec<String>,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) -> serde_yaml::Value {
    let Node::Map(mut entries, source) = node else {
        // A leaf where a struct belongs cannot be built; `Invalid` is already reported.
        return serde_yaml::Value::Null;
    };
    let mut out = serde_yaml::Mapping::new();
    for field in &schema.fields {
        path.push(field.name.to_owned());
        match entries.remove(field.name) {
            Some(child) => {
                let value = finish_kind(&field.kind, child, path, names, errors);
                out.insert(serde_yaml::Value::String(field.name.to_owned()), value);
            }
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
    serde_yaml::Value::Mapping(out)
}

fn finish_kind(
    kind: &FieldKind,
    node: Node,
    path: &mut Vec<String>,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) -> serde_yaml::Value {
    match (kind.unwrap_optional(), node) {
        (_, Node::Leaf(s)) => scalar_value(s),
        (FieldKind::Struct(schema), node) => finish(schema(), node, path, names, errors),
        (FieldKind::Map { value, .. }, Node::Map(entries, _)) => {
            let mut out = serde_yaml::Mapping::new();
            for (k, child) in entries {
                path.push(k.clone());
                let v = finish_kind(value, child, path, names, errors);
                path.pop();
                out.insert(serde_yaml::Value::String(k), v);
            }
            serde_yaml::Value::Mapping(out)
        }
        (_, Node::Map(..) | Node::Invalid) => serde_yaml::Value::Null,
    }
}

fn scalar_value(s: Scalar) -> serde_yaml::Value {
    use serde_yaml::{Number, Value};
    match s {
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
            (Ok(i), _) => Value::Number(Number::from(i)),
            (_, Ok(u)) => Value::Number(Number::from(u)),
            _ => Value::String(i.to_string()),
        },
        Scalar::Float(x) => Value::Number(Number::from(x)),
        Scalar::Text(t) => Value::String(t),
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
