//! `#[proxied]`: on a struct with named fields, `#[proxied(exchange = "...")]` adds the
//! hidden connectors field and implements `Proxied`; on an `impl` block, `#[proxied]`
//! completes the struct literals of its functions with that field.
//!
//! On any error the user's item is still emitted (with the field, where it can be added),
//! beside the errors, so that one mistake does not cascade into many.

mod args;
mod implementation;
mod structure;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Item;

/// The hidden field's name.
pub(crate) const FIELD: &str = "__proxied";

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(input);
            return out;
        }
    };
    match item {
        Item::Struct(s) => structure::expand(args, s),
        Item::Impl(i) => implementation::expand(args, i),
        Item::Enum(e) => misplaced(
            e.enum_token,
            "`#[proxied(exchange = \"...\")]` goes on a struct with named fields, not on an enum",
            &e,
        ),
        Item::Union(u) => misplaced(
            u.union_token,
            "`#[proxied(exchange = \"...\")]` goes on a struct with named fields, not on a union",
            &u,
        ),
        Item::Fn(f) => misplaced(&f.sig.ident, ELSEWHERE, &f),
        Item::Trait(t) => misplaced(&t.ident, ELSEWHERE, &t),
        Item::Mod(m) => misplaced(&m.ident, ELSEWHERE, &m),
        other => misplaced(&other, ELSEWHERE, &other),
    }
}

const ELSEWHERE: &str = "`#[proxied]` goes on a client struct, as `#[proxied(exchange = \"...\")]`, or on an `impl` block of that struct";

fn misplaced(at: impl ToTokens, message: &str, item: &impl ToTokens) -> TokenStream {
    let mut out = syn::Error::new_spanned(at, message).to_compile_error();
    item.to_tokens(&mut out);
    out
}
