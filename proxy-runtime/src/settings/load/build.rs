//! Reading one source's [`Raw`] values into a [`Node`] tree, guided by the schema: names,
//! map keys and leaf values are checked, each leaf is read once by its type, and every
//! problem is recorded with its [`Origin`]. Nothing here knows which kind of source it
//! reads, beyond the `place` callback that names a path.

use std::collections::{BTreeMap, btree_map};

use crate::redact::{redact_text, redact_value};
use crate::settings::schema::{FieldKind, Scalar, Schema};

use super::error::{ErrorKind, SettingError};
use super::node::{Entry, Node, Raw};
use super::origin::{KeyPath, Origin};

/// Names a path of a source (keys as the source wrote them), at a line where it has one.
pub(crate) type Place<'a> = &'a dyn Fn(&KeyPath, Option<usize>) -> Origin;

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

/// Where the walk is: the path so far, the line of its last key, and how to name them.
struct Walk<'a, 'e> {
    path: KeyPath,
    line: Option<usize>,
    place: Place<'a>,
    errors: &'e mut Vec<SettingError>,
}

impl Walk<'_, '_> {
    fn here(&self) -> Origin {
        (self.place)(&self.path, self.line)
    }

    fn error(&mut self, kind: ErrorKind, message: impl Into<String>) {
        let origin = self.here();
        self.errors.push(SettingError::new(origin, kind, message));
    }
}

/// Reads `raw` as a value of `kind`: `None` when absent, [`Node::Invalid`] when rejected.
/// `line` is the line of the key holding `raw`, if the source has lines.
pub(crate) fn build(
    kind: &FieldKind,
    raw: Raw,
    line: Option<usize>,
    place: Place<'_>,
    errors: &mut Vec<SettingError>,
) -> Option<Node> {
    let mut walk = Walk {
        path: KeyPath::root(),
        line,
        place,
        errors,
    };
    value(&mut walk, kind, raw)
}

fn value(walk: &mut Walk<'_, '_>, kind: &FieldKind, raw: Raw) -> Option<Node> {
    let before = walk.errors.len();
    match checked(walk, kind, raw) {
        None if walk.errors.len() > before => Some(Node::Invalid),
        node => node,
    }
}

fn checked(walk: &mut Walk<'_, '_>, kind: &FieldKind, raw: Raw) -> Option<Node> {
    match (kind, raw) {
        (FieldKind::Optional(inner), raw) => match raw {
            Raw::Null => None,
            raw => checked(walk, inner, raw),
        },
        (_, Raw::Unsupported(what)) => {
            walk.error(ErrorKind::Invalid, what);
            None
        }
        (FieldKind::Leaf(_), Raw::Null) => {
            walk.error(ErrorKind::Empty, "empty value");
            None
        }
        (FieldKind::Leaf(_), Raw::Scalar(Scalar::Text(t))) if t.is_empty() => {
            walk.error(ErrorKind::Empty, "empty value");
            None
        }
        (FieldKind::Leaf(leaf), Raw::Scalar(s)) => match leaf.parse(&s) {
            Ok(v) => Some(Node::Leaf(v, walk.here())),
            Err(why) if leaf.sensitive() => {
                walk.error(
                    ErrorKind::Invalid,
                    format!("{why} (the value is secret: not shown)"),
                );
                None
            }
            Err(why) => {
                walk.error(
                    ErrorKind::Invalid,
                    format!("{why}; got {}", show(&s.to_text())),
                );
                None
            }
        },
        (FieldKind::Leaf(leaf), Raw::Map(_) | Raw::Seq(_)) => {
            let msg = format!("expected {}, found a mapping or list", leaf.expected());
            walk.error(ErrorKind::Invalid, msg);
            None
        }
        (FieldKind::Struct(_) | FieldKind::Map { .. } | FieldKind::List(_), Raw::Null) => None,
        (FieldKind::List(item), Raw::Seq(items)) => {
            let here = walk.here();
            let mut out = Vec::with_capacity(items.len());
            for (i, raw) in items.into_iter().enumerate() {
                walk.path.push(i.to_string());
                match value(walk, item, raw) {
                    Some(node) => out.push(node),
                    None => {
                        walk.error(ErrorKind::Empty, "empty list item");
                        out.push(Node::Invalid);
                    }
                }
                walk.path.pop();
            }
            Some(Node::List(out, here))
        }
        (FieldKind::Struct(schema), Raw::Scalar(s)) if shorthand(schema()).is_some() => {
            // A value given alone is the shorthand field's, read (and named in errors) at
            // the struct's own place.
            let here = walk.here();
            let field = shorthand(schema())?;
            let node = value(walk, field.kind(), Raw::Scalar(s))?;
            Some(Node::Map(
                BTreeMap::from([(field.name().to_owned(), node)]),
                here,
            ))
        }
        (FieldKind::Struct(schema), Raw::Map(entries)) => {
            let schema = schema();
            let node = mapping(
                walk,
                entries,
                |walk, key| match schema.field(key) {
                    Some(field) => Some((field.name().to_owned(), field.kind())),
                    None => {
                        let names = schema.fields().iter().map(|f| f.name());
                        let suggestion = proxy_rules::closest(key, names);
                        let msg = unknown_key_message(schema, suggestion);
                        let suggestion = suggestion.map(str::to_owned);
                        walk.error(ErrorKind::UnknownKey { suggestion }, msg);
                        None
                    }
                },
                |name| format!("`{name}` is given more than once"),
            );
            Some(node)
        }
        (
            FieldKind::Map {
                key: key_schema,
                value: value_kind,
            },
            Raw::Map(entries),
        ) => {
            let node = mapping(
                walk,
                entries,
                |walk, key| match key_schema.normalize(key) {
                    Ok(norm) => Some((norm, &**value_kind)),
                    Err(why) => {
                        walk.error(
                            ErrorKind::Invalid,
                            // The reason may quote the key: redacted as the key is.
                            format!("invalid key {}: {}", show(key), redact_text(&why)),
                        );
                        None
                    }
                },
                |name| format!("`{name}` is given more than once (keys are case-insensitive)"),
            );
            Some(node)
        }
        (FieldKind::List(_), Raw::Map(_)) => {
            let msg = format!("expected {}, found a mapping", kind.expected());
            walk.error(ErrorKind::Invalid, msg);
            None
        }
        (kind, Raw::Scalar(s)) => {
            let msg = format!("expected {}, found {}", kind.expected(), s.kind_name());
            walk.error(ErrorKind::Invalid, msg);
            None
        }
        (kind, Raw::Seq(_)) => {
            let msg = format!("expected {}, found a list", kind.expected());
            walk.error(ErrorKind::Invalid, msg);
            None
        }
    }
}

/// Reads each entry of a mapping at its own path and line. `resolve` names an entry in
/// the tree and gives its kind (or records why the key is wrong); a name given twice is
/// reported with `duplicate`.
fn mapping<'k>(
    walk: &mut Walk<'_, '_>,
    entries: Vec<Entry>,
    mut resolve: impl FnMut(&mut Walk<'_, '_>, &str) -> Option<(String, &'k FieldKind)>,
    duplicate: impl Fn(&str) -> String,
) -> Node {
    let here = walk.here();
    let line = walk.line;
    let mut out = BTreeMap::new();
    for entry in entries {
        walk.path.push(entry.key);
        walk.line = entry.line;
        let key = walk.path.last().unwrap_or_default().to_owned();
        if let Some((name, kind)) = resolve(walk, &key) {
            match out.entry(name) {
                btree_map::Entry::Occupied(given) => {
                    walk.error(ErrorKind::Duplicate, duplicate(given.key()));
                }
                btree_map::Entry::Vacant(slot) => {
                    if let Some(node) = value(walk, kind, entry.value) {
                        slot.insert(node);
                    }
                }
            }
        }
        walk.path.pop();
    }
    walk.line = line;
    Node::Map(out, here)
}

/// The field a value given alone for a struct of `schema` sets, if it has one.
fn shorthand(schema: &Schema) -> Option<&crate::settings::schema::FieldSchema> {
    schema.field(schema.shorthand()?)
}

fn unknown_key_message(schema: &Schema, suggestion: Option<&str>) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name()).collect();
    match suggestion {
        Some(s) => format!(
            "unknown key; did you mean `{s}`? ({} has: {})",
            schema.type_name(),
            names.join(", ")
        ),
        None => format!(
            "unknown key ({} has: {})",
            schema.type_name(),
            names.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{SHOWN_MAX, show};

    #[test]
    fn values_are_shown_redacted_and_at_most_120_characters() {
        assert_eq!(show("socks5://u:pw@h:1"), "`socks5://u:***@h:1`");
        let longest = "é".repeat(SHOWN_MAX);
        assert_eq!(show(&longest), format!("`{longest}`"));
        assert_eq!(show(&format!("{longest}x")), format!("`{longest}…`"));
    }
}
