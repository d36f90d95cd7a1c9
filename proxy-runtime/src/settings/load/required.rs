//! The check that every struct present in the merged tree has its required fields, with a
//! message that says how each source would give the missing value.

use crate::settings::schema::{FieldKind, Schema};

use super::error::{ErrorKind, SettingError};
use super::node::Node;
use super::origin::KeyPath;

/// How a path is written in each source, for "missing value" messages.
pub(crate) struct Names<'a> {
    pub(crate) env_prefix: &'a str,
    pub(crate) env_delimiter: &'a str,
    pub(crate) yaml_section: Option<&'a str>,
}

impl Names<'_> {
    fn env(&self, path: &KeyPath) -> String {
        format!(
            "{}{}",
            self.env_prefix,
            path.keys().join(self.env_delimiter)
        )
        .to_ascii_uppercase()
    }

    fn yaml(&self, path: &KeyPath) -> String {
        match self.yaml_section {
            Some(section) => format!("{section}.{path}"),
            None => path.dotted(),
        }
    }
}

/// Records an error for every required field missing from a struct of `node`.
pub(crate) fn check(
    schema: &Schema,
    node: &Node,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    structure(schema, node, &mut KeyPath::root(), names, errors);
}

fn structure(
    schema: &Schema,
    node: &Node,
    path: &mut KeyPath,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    let Node::Map(entries, origin) = node else {
        return;
    };
    for group in schema.one_of() {
        one_of(group, entries, origin, path, names, errors);
    }
    for field in schema.fields() {
        path.push(field.name());
        match entries.get(field.name()) {
            Some(child) => kind(field.kind(), child, path, names, errors),
            None if field.required() => {
                let msg = format!(
                    "missing required `{}`: set `{}` or `{}`",
                    field.name(),
                    names.env(path),
                    names.yaml(path)
                );
                errors.push(SettingError::new(origin.clone(), ErrorKind::Missing, msg));
            }
            None => {}
        }
        path.pop();
    }
}

/// Exactly one field of `group` is given, and a list given is not empty.
fn one_of(
    group: &[&str],
    entries: &std::collections::BTreeMap<String, Node>,
    origin: &crate::settings::load::Origin,
    path: &mut KeyPath,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    let given: Vec<&str> = group
        .iter()
        .copied()
        .filter(|name| entries.contains_key(*name))
        .collect();
    match given.as_slice() {
        [] => {
            let (first, others) = group.split_first().unwrap_or((&"", &[]));
            path.push(*first);
            let msg = format!(
                "missing required `{first}` (or {}): set `{}` or `{}`",
                others
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                names.env(path),
                names.yaml(path)
            );
            path.pop();
            errors.push(SettingError::new(origin.clone(), ErrorKind::Missing, msg));
        }
        [one] => {
            if let Some(Node::List(items, list_origin)) = entries.get(*one)
                && items.is_empty()
            {
                let msg = format!("`{one}` is empty: give at least one item");
                errors.push(SettingError::new(
                    list_origin.clone(),
                    ErrorKind::Empty,
                    msg,
                ));
            }
        }
        many => {
            let listed: Vec<String> = many.iter().map(|m| format!("`{m}`")).collect();
            let msg = format!(
                "give only one of {}: {} are all set",
                group
                    .iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                listed.join(" and ")
            );
            errors.push(SettingError::new(origin.clone(), ErrorKind::Invalid, msg));
        }
    }
}

fn kind(
    kind: &FieldKind,
    node: &Node,
    path: &mut KeyPath,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    match (kind.unwrap_optional(), node) {
        (FieldKind::Struct(schema), node) => structure(schema(), node, path, names, errors),
        (FieldKind::List(item), Node::List(items, _)) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                self::kind(item, child, path, names, errors);
                path.pop();
            }
        }
        (FieldKind::Map { value, .. }, Node::Map(entries, _)) => {
            for (k, child) in entries {
                path.push(k.clone());
                self::kind(value, child, path, names, errors);
                path.pop();
            }
        }
        _ => {}
    }
}
