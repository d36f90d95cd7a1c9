//! The model of a `#[derive(Settings)]` input: the container options and the fields that
//! are settings, each keeping its syn node for spans. Only the shape is checked here (a
//! struct with named fields); what the names may be is [`super::valid`]'s concern.

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use super::attr::{self, SerdeDefault};
use crate::ctxt::Ctxt;

pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) env_prefix: Option<LitStr>,
    pub(crate) yaml_section: Option<LitStr>,
    pub(crate) config_env: Option<LitStr>,
    /// The function `complete = "path"` names, parsed.
    pub(crate) complete: Option<syn::ExprPath>,
    pub(crate) one_of: Vec<attr::OneOf>,
    /// The field a single value given for the struct is read as.
    pub(crate) shorthand: Option<LitStr>,
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
    /// The model, with every attribute and shape problem recorded in `cx`.
    pub(crate) fn from_syn(cx: &mut Ctxt, input: &'a DeriveInput) -> Self {
        let container = attr::container(cx, &input.attrs);
        let mut fields = Vec::new();
        match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => {
                    for field in &named.named {
                        let attrs = attr::field(cx, &field.attrs);
                        if attrs.skip {
                            continue;
                        }
                        let Some(ident) = &field.ident else { continue };
                        fields.push(Field {
                            original: field,
                            name: ident.to_string().trim_start_matches("r#").to_owned(),
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
        Input {
            original: input,
            env_prefix: container.env_prefix,
            yaml_section: container.yaml_section,
            config_env: container.config_env,
            complete: container
                .complete
                .and_then(|lit| match lit.parse::<syn::ExprPath>() {
                    Ok(path) => Some(path),
                    Err(_) => {
                        cx.error(
                            &lit,
                            "`complete` names a function: `complete = \"path::to::function\"`",
                        );
                        None
                    }
                }),
            one_of: container.one_of,
            shorthand: container.shorthand,
            container_default: container.serde_default,
            fields,
        }
    }
}

impl Field<'_> {
    pub(crate) fn span(&self) -> proc_macro2::Span {
        self.original.ty.span()
    }
}
