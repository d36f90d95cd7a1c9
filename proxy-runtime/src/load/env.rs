//! Environment variables: mapping names under a prefix to schema paths, reading JSON for
//! variables that name an object, and listing every name the schema accepts.
//!
//! Never reads the process environment itself: the caller hands it a list of pairs.

use std::collections::BTreeMap;

use crate::schema::{FieldKind, Scalar, Schema};

use super::error::{ErrorKind, SettingError, Source};
use super::tree::{Node, Raw, build, closest, merge};

/// Separates levels in a variable name.
pub(crate) const DELIMITER: &str = "__";

/// Reads every variable under `prefix` into one tree. Variables are applied from the
/// shortest path to the longest, so `PREFIX_DEFAULT__HTTP__URL` overrides the same leaf
/// inside a JSON `PREFIX_DEFAULT`.
pub(crate) fn read(
    root: fn() -> Schema,
    prefix: &str,
    vars: &[(String, String)],
    skip: Option<&str>,
    errors: &mut Vec<SettingError>,
) -> Option<Node> {
    let upper_prefix = prefix.to_ascii_uppercase();
    let mut by_name: BTreeMap<String, Vec<&(String, String)>> = BTreeMap::new();
    for pair in vars {
        let upper = pair.0.to_ascii_uppercase();
        if upper.starts_with(&upper_prefix) && skip.is_none_or(|s| !s.eq_ignore_ascii_case(&upper))
        {
            by_name.entry(upper).or_default().push(pair);
        }
    }
    let mut located = Vec::new();
    for (upper, spellings) in by_name {
        let (var, value) = spellings[0];
        if spellings.len() > 1 {
            let names: Vec<&str> = spellings.iter().map(|p| p.0.as_str()).collect();
            errors.push(SettingError::new(
                env_source(var),
                ErrorKind::Duplicate,
                format!(
                    "set more than once with different letter case ({}); names are case-insensitive, keep one",
                    names.join(", ")
                ),
            ));
            continue;
        }
        let rest = upper[upper_prefix.len()..].to_ascii_lowercase();
        let segments: Vec<String> = rest.split(DELIMITER).map(str::to_owned).collect();
        located.push((segments, var, value));
    }
    located.sort_by_key(|(segments, _, _)| segments.len());
    let mut tree: Option<Node> = None;
    for (segments, var, value) in located {
        let node = read_var(root, prefix, &segments, var, value, errors);
        match (&mut tree, node) {
            (Some(t), Some(n)) => merge(t, n),
            (t @ None, Some(n)) => *t = Some(n),
            (_, None) => {}
        }
    }
    tree
}

fn env_source(var: &str) -> Source {
    Source::Env {
        var: var.to_owned(),
        json_path: None,
    }
}

/// Reads one variable into a tree that holds just its path.
fn read_var(
    root: fn() -> Schema,
    prefix: &str,
    segments: &[String],
    var: &str,
    value: &str,
    errors: &mut Vec<SettingError>,
) -> Option<Node> {
    let unknown = |errors: &mut Vec<SettingError>, depth: usize, names: Vec<&str>, what: String| {
        let suggestion = closest(&segments[depth], names.iter().copied()).map(|s| {
            let mut fixed: Vec<&str> = segments.iter().map(String::as_str).collect();
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
            env_source(var),
            ErrorKind::UnknownKey { suggestion },
            msg,
        ));
    };

    // Walk the schema down to the node the name points at, remembering the keys on the way.
    let mut kind = FieldKind::Struct(root);
    let mut keys: Vec<String> = Vec::new();
    for (depth, segment) in segments.iter().enumerate() {
        match kind.unwrap_optional() {
            FieldKind::Struct(schema) => {
                let schema = schema();
                match schema.field(segment) {
                    Some(field) => {
                        keys.push(field.name.to_owned());
                        kind = field.kind.clone();
                    }
                    None => {
                        let names = schema.fields.iter().map(|f| f.name).collect();
                        unknown(errors, depth, names, "no such setting".to_owned());
                        return None;
                    }
                }
            }
            FieldKind::Map { key, value } => match (key.normalize)(segment) {
                Ok(norm) => {
                    keys.push(norm);
                    kind = (**value).clone();
                }
                Err(why) => {
                    errors.push(SettingError::new(
                        env_source(var),
                        ErrorKind::Invalid,
                        format!("invalid key `{segment}` in the name: {why}"),
                    ));
                    return None;
                }
            },
            FieldKind::Leaf(_) => {
                errors.push(SettingError::new(
                    env_source(var),
                    ErrorKind::UnknownKey { suggestion: None },
                    format!(
                        "no such setting: `{}` holds a single value and has no `{}`",
                        keys.last().map(String::as_str).unwrap_or_default(),
                        segment.to_ascii_uppercase()
                    ),
                ));
                return None;
            }
            _ => return None,
        }
    }
    if keys.is_empty() {
        let root = root();
        let names = root.fields.iter().map(|f| f.name).collect();
        unknown(errors, 0, names, "no such setting".to_owned());
        return None;
    }

    // From here on the name is valid: a rejected value still marks its path as given, so
    // that it is not also reported as missing.
    let node = if value.is_empty() {
        errors.push(SettingError::new(
            env_source(var),
            ErrorKind::Empty,
            "empty value",
        ));
        Node::Invalid
    } else {
        let raw = match kind.unwrap_optional() {
            FieldKind::Leaf(_) => Ok(Raw::Scalar(Scalar::Text(value.to_owned()))),
            _ => serde_json::from_str::<serde_json::Value>(value).map(from_json),
        };
        match raw {
            Ok(raw) => {
                let place = |p: &[String]| Source::Env {
                    var: var.to_owned(),
                    json_path: (!p.is_empty()).then(|| p.join(".")),
                };
                build(&kind, raw, &mut Vec::new(), &place, errors)?
            }
            Err(e) => {
                errors.push(SettingError::new(
                    env_source(var),
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
    // Wrap the node in the maps of its path, innermost first.
    let mut node = node;
    for key in keys.into_iter().rev() {
        node = Node::Map(BTreeMap::from([(key, node)]), env_source(var));
    }
    Some(node)
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

pub(crate) fn from_json(value: serde_json::Value) -> Raw {
    use serde_json::Value;
    match value {
        Value::Null => Raw::Null,
        Value::Bool(b) => Raw::Scalar(Scalar::Bool(b)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Raw::Scalar(Scalar::Int(i128::from(i))),
            (_, Some(u), _) => Raw::Scalar(Scalar::Int(i128::from(u))),
            (_, _, Some(x)) => Raw::Scalar(Scalar::Float(x)),
            _ => Raw::Unsupported("this number"),
        },
        Value::String(s) => Raw::Scalar(Scalar::Text(s)),
        Value::Array(_) => Raw::Seq,
        Value::Object(map) => Raw::Map(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}
