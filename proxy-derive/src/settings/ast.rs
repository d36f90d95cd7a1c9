//! The checked model of a `#[derive(Settings)]` input. Every problem is collected; the
//! model exists only when there is none.

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use super::attr::{self, SerdeDefault};
use crate::ctxt::Ctxt;

pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) env_prefix: Option<LitStr>,
    pub(crate) yaml_section: Option<LitStr>,
    pub(crate) config_env: Option<LitStr>,
    pub(crate) container_default: Option<SerdeDefault>,
    pub(crate) fields: Vec<Field<'a>>,
}

pub(crate) struct Field<'a> {
    pub(crate) original: &'a syn::Field,
    /// The name as variables and YAML keys use it (`r#type` is `type`).
    pub(crate) name: String,
    pub(crate) doc: String,
    pub(crate) default: Option<SerdeDefault>,
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(input: &'a DeriveInput) -> syn::Result<Self> {
        let mut cx = Ctxt::default();
        let container = attr::container(&mut cx, &input.attrs);
        check_env_name(&mut cx, container.env_prefix.as_ref(), "env_prefix");
        check_env_name(&mut cx, container.config_env.as_ref(), "config_env");
        if let Some(section) = &container.yaml_section {
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
        if let Some(lt) = input.generics.lifetimes().next() {
            cx.error(lt, "settings are owned values: a `#[derive(Settings)]` struct cannot have lifetime parameters");
        }
        let mut fields = Vec::new();
        match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => {
                    for field in &named.named {
                        let attrs = attr::field(&mut cx, &field.attrs);
                        if attrs.skip {
                            continue;
                        }
                        let Some(ident) = &field.ident else { continue };
                        let name = ident.to_string().trim_start_matches("r#").to_owned();
                        if let Err(why) = check_field_name(&name) {
                            cx.error(ident, why);
                        }
                        fields.push(Field {
                            original: field,
                            name,
                            doc: attrs.doc,
                            default: attrs.serde_default,
                        });
                    }
                }
                Fields::Unnamed(f) => cx.error(
                    f,
                    "`#[derive(Settings)]` needs named fields: their names are the variable names and YAML keys",
                ),
                Fields::Unit => cx.error(
                    &input.ident,
                    "`#[derive(Settings)]` needs a struct with named fields; a unit struct has nothing to configure",
                ),
            },
            Data::Enum(e) => cx.push(syn::Error::new(
                e.enum_token.span(),
                "`#[derive(Settings)]` supports only structs with named fields, not enums",
            )),
            Data::Union(u) => cx.push(syn::Error::new(
                u.union_token.span(),
                "`#[derive(Settings)]` supports only structs with named fields, not unions",
            )),
        }
        cx.finish()?;
        Ok(Input {
            original: input,
            env_prefix: container.env_prefix,
            yaml_section: container.yaml_section,
            config_env: container.config_env,
            container_default: container.serde_default,
            fields,
        })
    }
}

fn check_env_name(cx: &mut Ctxt, lit: Option<&LitStr>, option: &str) {
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

fn check_field_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with('_')
        && !name.ends_with('_')
        && !name.contains("__");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "settings field `{name}` cannot be named by a variable: use lowercase letters, digits and single `_` (no leading, trailing or double `_`, which separates levels)"
        ))
    }
}

impl Field<'_> {
    pub(crate) fn span(&self) -> proc_macro2::Span {
        self.original.ty.span()
    }
}
