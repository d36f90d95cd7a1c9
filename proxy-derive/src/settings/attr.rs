//! Attribute parsing for `#[derive(Settings)]`: our own `#[settings(...)]` options, and the
//! parts of `#[serde(...)]` that change what the schema must say (defaults, skipped
//! fields, and the renaming options we refuse because names must be the field names).

use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr, Token};

use crate::ctxt::Ctxt;

pub(crate) const ENV_PREFIX: &str = "env_prefix";
pub(crate) const YAML_SECTION: &str = "yaml_section";
pub(crate) const CONFIG_ENV: &str = "config_env";
pub(crate) const ONE_OF: &str = "one_of";
pub(crate) const COMPLETE: &str = "complete";
pub(crate) const SHORTHAND: &str = "shorthand";
const CONTAINER_OPTIONS: &str =
    "`env_prefix`, `yaml_section`, `config_env`, `complete`, `shorthand` and `one_of(...)`";

/// serde options that would make a name differ from the field's name, or change the shape
/// the schema describes.
const SERDE_REFUSED: &[&str] = &[
    "rename",
    "rename_all",
    "rename_all_fields",
    "alias",
    "flatten",
    "tag",
    "content",
    "untagged",
    "transparent",
    "from",
    "try_from",
    "remote",
];

/// A serde default: `#[serde(default)]` or `#[serde(default = "path")]`.
#[derive(Clone)]
pub(crate) enum SerdeDefault {
    Trait,
    Path(syn::ExprPath),
}

/// Container options.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) env_prefix: Option<LitStr>,
    pub(crate) yaml_section: Option<LitStr>,
    pub(crate) config_env: Option<LitStr>,
    /// `complete = "path"`: a function that completes the settings after the load.
    pub(crate) complete: Option<LitStr>,
    /// `shorthand = "field"`: a single value given for the struct is that field's.
    pub(crate) shorthand: Option<LitStr>,
    /// `one_of("a", "b")` groups: exactly one of those fields must be given.
    pub(crate) one_of: Vec<OneOf>,
    pub(crate) serde_default: Option<SerdeDefault>,
}

/// One `one_of(...)` group, with the span of the option for messages.
pub(crate) struct OneOf {
    pub(crate) names: Vec<LitStr>,
    pub(crate) span: proc_macro2::Span,
}

/// Field options.
#[derive(Default)]
pub(crate) struct Field {
    pub(crate) serde_default: Option<SerdeDefault>,
    pub(crate) skip: bool,
    pub(crate) doc: String,
}

pub(crate) fn container(cx: &mut Ctxt, attrs: &[Attribute]) -> Container {
    let mut out = Container::default();
    for attr in attrs {
        if attr.path().is_ident("settings") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(ONE_OF) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let names = content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
                    out.one_of.push(OneOf {
                        names: names.into_iter().collect(),
                        span: syn::spanned::Spanned::span(&meta.path),
                    });
                    return Ok(());
                }
                let slot = if meta.path.is_ident(ENV_PREFIX) {
                    &mut out.env_prefix
                } else if meta.path.is_ident(YAML_SECTION) {
                    &mut out.yaml_section
                } else if meta.path.is_ident(CONFIG_ENV) {
                    &mut out.config_env
                } else if meta.path.is_ident(COMPLETE) {
                    &mut out.complete
                } else if meta.path.is_ident(SHORTHAND) {
                    &mut out.shorthand
                } else {
                    let name = path_name(&meta);
                    cx.push(meta.error(format!(
                        "unknown settings option `{name}`; the options are {CONTAINER_OPTIONS}"
                    )));
                    return skip_value(&meta);
                };
                let name = path_name(&meta);
                let value = string_value(&meta, &name)?;
                if slot.is_some() {
                    cx.error(&meta.path, format!("`{name}` is given more than once"));
                } else {
                    *slot = Some(value);
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.push(e);
            }
        } else if attr.path().is_ident("serde") {
            serde_attr(cx, attr, &mut out.serde_default, None);
        }
    }
    out
}

pub(crate) fn field(cx: &mut Ctxt, attrs: &[Attribute]) -> Field {
    let mut out = Field::default();
    for attr in attrs {
        if attr.path().is_ident("settings") {
            cx.error(
                attr,
                "`#[settings]` takes no options on a field; container options go on the struct",
            );
        } else if attr.path().is_ident("serde") {
            serde_attr(cx, attr, &mut out.serde_default, Some(&mut out.skip));
        } else if attr.path().is_ident("doc")
            && out.doc.is_empty()
            && let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            out.doc = s.value().trim().to_owned();
        }
    }
    out
}

/// Reads what matters to us in a `#[serde(...)]` attribute. Malformed serde attributes
/// are left for serde's derive to report.
fn serde_attr(
    cx: &mut Ctxt,
    attr: &Attribute,
    default: &mut Option<SerdeDefault>,
    mut skip: Option<&mut bool>,
) {
    let _ = attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("default") {
            if meta.input.peek(Token![=]) {
                let lit: LitStr = meta.value()?.parse()?;
                *default = Some(SerdeDefault::Path(lit.parse()?));
            } else {
                *default = Some(SerdeDefault::Trait);
            }
            return Ok(());
        }
        if let Some(skip) = skip.as_deref_mut()
            && (meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing"))
        {
            *skip = true;
            return Ok(());
        }
        let name = path_name(&meta);
        if SERDE_REFUSED.contains(&name.as_str()) {
            cx.error(
                &meta.path,
                format!(
                    "`#[serde({name})]` is not supported with `#[derive(Settings)]`: variable names and YAML keys are the field names as written"
                ),
            );
        }
        skip_value(&meta)
    });
}

fn path_name(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| "?".to_owned())
}

fn string_value(meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<LitStr> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!("`{name}` takes a string: `{name} = \"...\"`")));
    }
    let value = meta.value()?;
    match value.parse::<syn::Expr>()? {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Ok(s),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a string literal: `{name} = \"...\"`"),
        )),
    }
}

/// Consumes `= value` or `(...)` after an option we do not interpret.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Lit>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}
