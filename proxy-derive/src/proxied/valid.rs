//! What `#[proxied]` checks about its input's meaning: that the exchange id follows the rule
//! the runtime applies to `ExchangeId` (so that an environment variable can name it), and
//! that the struct can take the hidden field.

use syn::{Fields, ItemStruct, LitStr};

use super::FIELD;
use super::attr::Exchange;
use crate::ctxt::Ctxt;

/// How messages state the exchange-id rule.
fn rule() -> String {
    format!(
        "exchange ids are {}, so that a variable like `CRYPTOFEED_PROXY_EXCHANGES__<ID>__HTTP__URL` can name them",
        proxy_rules::WORDS_RULE
    )
}

/// Checks how the struct names its exchange: a literal must be a valid id, a field must
/// be one of the struct's named fields. Returns it when it is valid. (An expression is
/// checked by the compiler, for its type, and at run time, for its value.)
pub(crate) fn exchange(cx: &mut Ctxt, given: Exchange, item: &ItemStruct) -> Option<Exchange> {
    match given {
        Exchange::Literal(lit) => literal(cx, lit).map(Exchange::Literal),
        Exchange::Expr(expr) => {
            if names_self(quote::ToTokens::to_token_stream(&expr)) {
                cx.error(
                    &expr,
                    "an `exchange` expression is evaluated before the client exists, so it cannot read `self` or its fields: write `exchange_field = <field>` to take the exchange from a field",
                );
                return None;
            }
            Some(Exchange::Expr(expr))
        }
        Exchange::Field(ident) => field(cx, ident, item).map(Exchange::Field),
    }
}

/// Whether `tokens` mention the value `self` anywhere (`self::` starts a path, which may).
fn names_self(tokens: proc_macro2::TokenStream) -> bool {
    let mut trees = tokens.into_iter().peekable();
    while let Some(tree) = trees.next() {
        let found = match tree {
            proc_macro2::TokenTree::Ident(ident) => {
                ident == "self"
                    && !matches!(trees.peek(), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':')
            }
            proc_macro2::TokenTree::Group(group) => names_self(group.stream()),
            _ => false,
        };
        if found {
            return true;
        }
    }
    false
}

/// Checks that `ident` names a field of the struct.
fn field(cx: &mut Ctxt, ident: syn::Ident, item: &ItemStruct) -> Option<syn::Ident> {
    let Fields::Named(named) = &item.fields else {
        // The struct's shape is reported on its own.
        return None;
    };
    let names: Vec<String> = named
        .named
        .iter()
        .filter_map(|f| f.ident.as_ref().map(ToString::to_string))
        .collect();
    let wanted = ident.to_string();
    if names.contains(&wanted) {
        return Some(ident);
    }
    let hint = match proxy_rules::closest(&wanted, names.iter().map(String::as_str)) {
        Some(near) => format!("; did you mean `{near}`?"),
        None => String::new(),
    };
    cx.error(
        &ident,
        format!(
            "`{}` has no field `{wanted}`: `exchange_field` names the field that holds the exchange id{hint}",
            item.ident
        ),
    );
    None
}

/// Checks the exchange id; returns it when it is valid.
fn literal(cx: &mut Ctxt, lit: LitStr) -> Option<LitStr> {
    use proxy_rules::Flaw;
    let id = lit.value();
    let message = match proxy_rules::check_words(&id) {
        Ok(()) => return Some(lit),
        Err(Flaw::Empty) => format!("the exchange id is empty; {}", rule()),
        Err(Flaw::Uppercase) => format!(
            "exchange ids are written in lower case (variable names match them case-insensitively): write `{}`",
            id.to_ascii_lowercase()
        ),
        Err(Flaw::Dash) => format!(
            "`-` cannot appear in a variable name: write `{}`; {}",
            id.to_ascii_lowercase().replace('-', "_"),
            rule()
        ),
        Err(Flaw::DoubleUnderscore) => format!(
            "`__` separates levels in variable names and cannot appear in an exchange id; {}",
            rule()
        ),
        Err(Flaw::EdgeUnderscore) => {
            format!("an exchange id cannot start or end with `_`; {}", rule())
        }
        Err(_) => format!("`{id}` is not a valid exchange id; {}", rule()),
    };
    cx.error(&lit, message);
    None
}

/// Checks that the struct has named fields and none called like the hidden field. Returns
/// whether the field can be added.
pub(crate) fn takes_field(cx: &mut Ctxt, item: &ItemStruct) -> bool {
    match &item.fields {
        Fields::Named(named) => match named
            .named
            .iter()
            .find(|f| f.ident.as_ref().is_some_and(|ident| ident == FIELD))
        {
            Some(clash) => {
                cx.error(
                    clash.ident.as_ref(),
                    format!("`{FIELD}` is the field `#[proxied]` adds; rename this field"),
                );
                false
            }
            None => true,
        },
        Fields::Unnamed(fields) => {
            cx.error(
                fields,
                "`#[proxied(exchange = \"...\")]` needs a struct with named fields, not a tuple struct",
            );
            false
        }
        Fields::Unit => {
            cx.error(
                &item.ident,
                "`#[proxied(exchange = \"...\")]` needs a struct with named fields, not a unit struct",
            );
            false
        }
    }
}
