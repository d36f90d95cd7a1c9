//! The arguments of `#[proxied(...)]` on a struct, and the compile-time check of the
//! exchange id (the same rule as `proxy_runtime::ExchangeId`, so that every id can be named
//! by an environment variable).

use proc_macro2::{Span, TokenStream};
use syn::LitStr;

use crate::ctxt::Ctxt;

const EXCHANGE: &str = "exchange";

/// Parses the struct form's arguments; returns the exchange literal when there is a valid
/// one.
pub(crate) fn parse(cx: &mut Ctxt, args: TokenStream) -> Option<LitStr> {
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
                }) => match check_id(&lit.value()) {
                    Ok(()) => exchange = Some(lit),
                    Err(why) => cx.error(&lit, why),
                },
                other => cx.error(
                    other,
                    "`exchange` takes a string literal, like `exchange = \"binance\"`",
                ),
            }
            Ok(())
        } else {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let hint = if close_to(&name, EXCHANGE) {
                "; did you mean `exchange`?"
            } else {
                ""
            };
            cx.error(
                &meta.path,
                format!(
                    "unknown argument `{name}`: the only argument is `exchange = \"...\"`{hint}"
                ),
            );
            unknown = true;
            // Skip the value, so that the next argument is still read.
            if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            }
            Ok(())
        }
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

/// The exchange-id rule: lowercase ASCII letters and digits in words joined by single
/// underscores.
fn check_id(id: &str) -> Result<(), String> {
    const RULE: &str = "exchange ids are lowercase ASCII letters and digits in words joined by single `_`, so that a variable like `CRYPTOFEED_PROXY_EXCHANGES__<ID>__HTTP__URL` can name them";
    if id.is_empty() {
        return Err(format!("the exchange id is empty; {RULE}"));
    }
    let lower = id.to_ascii_lowercase();
    let valid = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
    };
    if valid(id) {
        return Ok(());
    }
    if valid(&lower) {
        return Err(format!(
            "exchange ids are written in lower case (variable names match them case-insensitively): write `{lower}`"
        ));
    }
    let dashed = lower.replace('-', "_");
    if id.contains('-') && valid(&dashed) {
        return Err(format!(
            "`-` cannot appear in a variable name: write `{dashed}`; {RULE}"
        ));
    }
    if id.contains("__") {
        return Err(format!(
            "`__` separates levels in variable names and cannot appear in an exchange id; {RULE}"
        ));
    }
    if id.starts_with('_') || id.ends_with('_') {
        return Err(format!(
            "an exchange id cannot start or end with `_`; {RULE}"
        ));
    }
    Err(format!("`{id}` is not a valid exchange id; {RULE}"))
}

/// Whether `a` is within two edits of `b` (for "did you mean").
fn close_to(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}
