//! Parsing the arguments of `#[proxied(...)]`: on a struct, one of `exchange = "..."` (a
//! literal), `exchange = <expression>` and `exchange_field = <field>`; on an impl block,
//! nothing at all. Only the form is checked here; what the id may be and whether the
//! field exists are [`super::valid`]'s concern.

use proc_macro2::{Span, TokenStream};
use syn::LitStr;

use crate::ctxt::Ctxt;

/// The argument naming the exchange by a literal or an expression.
pub(crate) const EXCHANGE: &str = "exchange";
/// The argument naming the field that holds the exchange.
pub(crate) const EXCHANGE_FIELD: &str = "exchange_field";

/// How a struct names its exchange.
pub(crate) enum Exchange {
    /// `exchange = "binance"`: checked now.
    Literal(LitStr),
    /// `exchange = <expression of type &str>`: evaluated in each constructor.
    Expr(Box<syn::Expr>),
    /// `exchange_field = venue`: the field's value, as each constructor sets it.
    Field(syn::Ident),
}

/// Parses the struct form's arguments. Returns how the exchange is named, if exactly one
/// form is given once; every other problem is recorded in `cx`.
pub(crate) fn struct_args(cx: &mut Ctxt, args: TokenStream) -> Option<Exchange> {
    let mut exchange: Option<Exchange> = None;
    let mut seen = false;
    let mut unknown = false;
    let parser = syn::meta::parser(|meta| {
        let is_expr = meta.path.is_ident(EXCHANGE);
        if is_expr || meta.path.is_ident(EXCHANGE_FIELD) {
            let given = if is_expr {
                match meta.value()?.parse::<syn::Expr>()? {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(lit),
                        ..
                    }) => Exchange::Literal(lit),
                    other => Exchange::Expr(Box::new(other)),
                }
            } else {
                let value = meta.value()?;
                match value.parse::<syn::Ident>() {
                    Ok(ident) => Exchange::Field(ident),
                    Err(_) => {
                        let other = value.parse::<syn::Expr>()?;
                        cx.error(
                            other,
                            "`exchange_field` takes the name of a field, like `exchange_field = venue`",
                        );
                        seen = true;
                        return Ok(());
                    }
                }
            };
            if seen {
                cx.error(
                    &meta.path,
                    "the exchange is given more than once: write one of `exchange = \"...\"`, `exchange = <expression>` or `exchange_field = <field>`",
                );
                return Ok(());
            }
            seen = true;
            exchange = Some(given);
            return Ok(());
        }
        let name = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let hint = match proxy_rules::closest(&name, [EXCHANGE, EXCHANGE_FIELD]) {
            Some(near) => format!("; did you mean `{near}`?"),
            None => String::new(),
        };
        cx.error(
            &meta.path,
            format!(
                "unknown argument `{name}`: the arguments are `exchange = \"...\"` (or an expression) and `exchange_field = <field>`{hint}"
            ),
        );
        unknown = true;
        // Skip the value, so that the next argument is still read.
        if meta.input.peek(syn::Token![=]) {
            meta.value()?.parse::<syn::Expr>()?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.push(e);
    } else if !seen && !unknown {
        // (After an unknown argument, its message already says what to write.)
        cx.push(syn::Error::new(
            Span::call_site(),
            "missing `exchange`: write `#[proxied(exchange = \"binance\")]` with the id its settings use (or `exchange_field = <field>` for a client that learns it at run time)",
        ));
    }
    exchange
}

/// Checks that the impl form has no arguments.
pub(crate) fn impl_args(cx: &mut Ctxt, args: &TokenStream) {
    if !args.is_empty() {
        cx.error(
            args,
            "`#[proxied]` on an impl block takes no arguments: the exchange belongs on the struct, as `#[proxied(exchange = \"...\")]`",
        );
    }
}
