//! What `#[derive(Settings)]` checks about its input's meaning: names that an environment
//! variable can express (field names with the rule exchange ids follow, upper-case
//! prefixes), a YAML section that is one key, and an owned struct.

use syn::LitStr;

use super::ast::Input;
use crate::ctxt::Ctxt;

pub(crate) fn check(cx: &mut Ctxt, input: &Input<'_>) {
    env_name(cx, input.env_prefix.as_ref(), "env_prefix");
    env_name(cx, input.config_env.as_ref(), "config_env");
    if let Some(section) = &input.yaml_section {
        let v = section.value();
        if v.is_empty()
            || v.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '.')
        {
            cx.error(
                section,
                "`yaml_section` must be a non-empty key without spaces or dots",
            );
        }
    }
    if let Some(lt) = input.original.generics.lifetimes().next() {
        cx.error(
            lt,
            "settings are owned values: a `#[derive(Settings)]` struct cannot have lifetime parameters",
        );
    }
    for group in &input.one_of {
        one_of(cx, input, group);
    }
    if let Some(lit) = &input.shorthand {
        shorthand(cx, input, lit);
    }
    for field in &input.fields {
        if proxy_rules::check_words(&field.name).is_err() {
            let ident = field.original.ident.as_ref();
            cx.error(
                ident,
                format!(
                    "settings field `{}` cannot be named by a variable: use lowercase letters, digits and single `_` (no leading, trailing or double `_`, which separates levels)",
                    field.name
                ),
            );
        }
    }
}

fn env_name(cx: &mut Ctxt, lit: Option<&LitStr>, option: &str) {
    let Some(lit) = lit else { return };
    let v = lit.value();
    if v.is_empty() {
        cx.error(lit, format!("`{option}` must not be empty"));
    } else if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        cx.error(
            lit,
            format!(
                "`{option}` may contain only ASCII letters, digits and `_`, as variable names do"
            ),
        );
    } else if v.bytes().any(|b| b.is_ascii_lowercase()) {
        cx.error(
            lit,
            format!(
                "`{option}` is matched case-insensitively but written in upper case: `{option} = \"{}\"`",
                v.to_ascii_uppercase()
            ),
        );
    }
}

/// `shorthand` names a field of the struct; the other fields may be left out (a value given
/// alone sets only that one).
fn shorthand(cx: &mut Ctxt, input: &Input<'_>, lit: &LitStr) {
    let name = lit.value();
    if !input.fields.iter().any(|f| f.name == name) {
        let names: Vec<&str> = input.fields.iter().map(|f| f.name.as_str()).collect();
        cx.error(
            lit,
            format!(
                "`shorthand` names no field of this struct (its fields: {})",
                names.join(", ")
            ),
        );
        return;
    }
    for field in input.fields.iter().filter(|f| f.name != name) {
        let optional = matches!(
            &field.original.ty,
            syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option")
        );
        if !optional && field.default.is_none() && input.container_default.is_none() {
            cx.error(
                field.original.ident.as_ref(),
                format!(
                    "`{}` is required, but a value given alone sets only `{name}` (the `shorthand`): make it an `Option` or give it `#[serde(default)]`",
                    field.name
                ),
            );
        }
    }
}

/// A `one_of` group names two or more distinct fields of the struct, each of which may be
/// left out on its own (an `Option`, or a field with a serde default).
fn one_of(cx: &mut Ctxt, input: &Input<'_>, group: &super::attr::OneOf) {
    if group.names.len() < 2 {
        cx.push(syn::Error::new(
            group.span,
            "`one_of` names two or more fields, like `one_of(\"url\", \"urls\")`",
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for lit in &group.names {
        let name = lit.value();
        if seen.contains(&name) {
            cx.error(lit, format!("`{name}` is named twice in this `one_of`"));
            continue;
        }
        seen.push(name.clone());
        let Some(field) = input.fields.iter().find(|f| f.name == name) else {
            let names: Vec<&str> = input.fields.iter().map(|f| f.name.as_str()).collect();
            cx.error(
                lit,
                format!(
                    "no field `{name}` in this struct (its fields: {})",
                    names.join(", ")
                ),
            );
            continue;
        };
        let optional = matches!(
            &field.original.ty,
            syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option")
        );
        if !optional && field.default.is_none() && input.container_default.is_none() {
            cx.error(
                lit,
                format!("`{name}` is in a `one_of`, so it may be left out: make it an `Option` or give it `#[serde(default)]`"),
            );
        }
    }
}
