//! The list of every environment variable a settings type accepts, generated from its
//! schema (for `proxy-check --vars` and documentation).

use crate::settings::schema::Settings;
use crate::settings::schema::{FieldKind, Schema};

use super::env::DELIMITER;

/// One variable name the schema accepts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VarInfo {
    /// The name, with `<ID>`-style placeholders for map keys.
    pub name: String,
    /// What the value must be (JSON for a variable that names an object).
    pub expected: String,
    /// The default, shown redacted; `None` when there is none.
    pub default: Option<String>,
    /// Whether the value must be given once its parent is.
    pub required: bool,
    /// The field's doc comment, first line.
    pub doc: &'static str,
}

/// Every variable name `T` accepts under `prefix`, in schema order.
///
/// ```
/// use proxy_runtime::{ProxySettings, load::variables};
/// let names: Vec<String> = variables::<ProxySettings>("CRYPTOFEED_PROXY_")
///     .into_iter()
///     .map(|v| v.name)
///     .collect();
/// assert!(names.contains(&"CRYPTOFEED_PROXY_ENABLED".to_owned()));
/// assert!(names.contains(&"CRYPTOFEED_PROXY_EXCHANGES__<ID>__WEBSOCKET__URL".to_owned()));
/// ```
pub fn variables<T: Settings>(prefix: &str) -> Vec<VarInfo> {
    let mut out = Vec::new();
    walk(T::schema(), &prefix.to_ascii_uppercase(), &mut out);
    out
}

fn walk(schema: &Schema, prefix: &str, out: &mut Vec<VarInfo>) {
    for field in schema.fields() {
        let name = format!("{prefix}{}", field.name().to_ascii_uppercase());
        let kind = field.kind().unwrap_optional();
        let expected = match kind {
            FieldKind::Leaf(leaf) => leaf.expected().to_owned(),
            other => format!("JSON: {}", other.expected()),
        };
        // A field of a `one_of` group is required with the group, not alone.
        out.push(VarInfo {
            name: name.clone(),
            expected,
            default: field.default_shown(),
            required: field.required(),
            doc: field.doc(),
        });
        match kind {
            FieldKind::Struct(inner) => walk(inner(), &format!("{name}{DELIMITER}"), out),
            FieldKind::Map { key, value } => {
                let at = format!("{name}{DELIMITER}{}", key.placeholder());
                let value = value.unwrap_optional();
                match value {
                    FieldKind::Struct(inner) => {
                        out.push(VarInfo {
                            name: at.clone(),
                            expected: format!("JSON: {}", value.expected()),
                            default: None,
                            required: false,
                            doc: "",
                        });
                        walk(inner(), &format!("{at}{DELIMITER}"), out);
                    }
                    other => out.push(VarInfo {
                        name: at,
                        expected: other.expected(),
                        default: None,
                        required: false,
                        doc: "",
                    }),
                }
            }
            _ => {}
        }
    }
}
