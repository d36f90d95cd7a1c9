//! What `#[proxied]` checks about its input's meaning: that the exchange id follows the rule
//! the runtime applies to `ExchangeId` (so that an environment variable can name it), and
//! that the struct can take the hidden field.

use syn::{Fields, ItemStruct, LitStr};

use super::FIELD;
use crate::ctxt::Ctxt;

/// How messages state the exchange-id rule.
fn rule() -> String {
    format!(
        "exchange ids are {}, so that a variable like `CRYPTOFEED_PROXY_EXCHANGES__<ID>__HTTP__URL` can name them",
        proxy_rules::WORDS_RULE
    )
}

/// Checks the exchange id; returns it when it is valid.
pub(crate) fn exchange(cx: &mut Ctxt, lit: LitStr) -> Option<LitStr> {
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
