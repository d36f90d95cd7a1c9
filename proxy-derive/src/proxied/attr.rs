//! Parsing the arguments of `#[proxied(...)]`: on a struct, `exchange = "..."` and nothing
//! else; on an impl block, nothing at all. Only the form is checked here; what the id may
//! be is [`super::valid`]'s concern.

use proc_macro2::{Span, TokenStream};
use syn::LitStr;

use crate::ctxt::Ctxt;

/// The one argument of the struct form.
pub(crate) const EXCHANGE: &str = "exchange";

/// Parses the struct form's arguments. Returns the exchange literal as written, if there is
/// exactly one given as a string literal; every other problem is recorded in `cx`.
pub(crate) fn struct_args(cx: &mut Ctxt, args: TokenStream) -> Option<LitStr> {
    let mut exchange: Option<LitStr> = None;
    let mut seen = false;
    let mut unknown = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(EXCHANGE) {
            let value = meta.value()?.parse::<syn::Expr>()?;
            if seen {
                cx.error(&meta.path, "`exchange` is given more than once");
                return Ok(());
            }
            seen = true;
            match value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(lit),
                    ..
                }) => exchange = Some(lit),
                other => cx.error(
                    other,
                    "`exchange` takes a string literal, like `exchange = \"binance\"`",
                ),
            }
            return Ok(());
        }
        let name = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let hint = match proxy_rules::closest(&name, [EXCHANGE]) {
            Some(_) => "; did you mean `exchange`?",
            None => "",
        };
        cx.error(
            &meta.path,
            format!("unknown argument `{name}`: the only argument is `exchange = \"...\"`{hint}"),
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
            "missing `exchange`: write `#[proxied(exchange = \"binance\")]` with the id its settings use",
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
