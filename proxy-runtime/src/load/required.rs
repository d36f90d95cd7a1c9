//! The check that every struct present in the merged tree has its required fields, with a
//! message that says how each source would give the missing value.

use crate::schema::{FieldKind, Schema};

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

fn kind(
    kind: &FieldKind,
    node: &Node,
    path: &mut KeyPath,
    names: &Names<'_>,
    errors: &mut Vec<SettingError>,
) {
    match (kind.unwrap_optional(), node) {
        (FieldKind::Struct(schema), node) => structure(schema(), node, path, names, errors),
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
