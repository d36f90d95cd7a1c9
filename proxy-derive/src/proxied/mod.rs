//! `#[proxied]`: on a struct with named fields, `#[proxied(exchange = "...")]` adds the
//! hidden connectors field and implements `Proxied`; on an `impl` block, `#[proxied]`
//! completes the struct literals of its functions with that field.
//!
//! Phases: [`attr`] parses the arguments, [`valid`] checks the exchange id and the
//! struct's shape, [`expand`] writes the code. The input needs no model of its own beyond
//! syn's item. On any error the user's item is still emitted (with the field, where it can
//! be added) beside the errors, so that one mistake does not cascade into many.

mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Item;

use crate::ctxt::Ctxt;

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
    let mut cx = Ctxt::default();
    let code = match item {
        Item::Struct(s) => {
            let exchange = attr::struct_args(&mut cx, args)
                .and_then(|given| valid::exchange(&mut cx, given, &s));
            let add_field = valid::takes_field(&mut cx, &s);
            expand::client(s, exchange.as_ref(), add_field)
        }
        Item::Impl(i) => {
            attr::impl_args(&mut cx, &args);
            expand::constructors(i)
        }
        Item::Enum(e) => {
            cx.error(
                e.enum_token,
                "`#[proxied(exchange = \"...\")]` goes on a struct with named fields, not on an enum",
            );
            e.into_token_stream()
        }
        Item::Union(u) => {
            cx.error(
                u.union_token,
                "`#[proxied(exchange = \"...\")]` goes on a struct with named fields, not on a union",
            );
            u.into_token_stream()
        }
        Item::Fn(f) => misplaced(&mut cx, &f.sig.ident, &f),
        Item::Trait(t) => misplaced(&mut cx, &t.ident, &t),
        Item::Mod(m) => misplaced(&mut cx, &m.ident, &m),
        other => misplaced(&mut cx, &other, &other),
    };
    let mut out = match cx.finish() {
        Ok(()) => TokenStream::new(),
        Err(e) => e.to_compile_error(),
    };
    out.extend(code);
    out
}

fn misplaced(cx: &mut Ctxt, at: impl ToTokens, item: &impl ToTokens) -> TokenStream {
    cx.error(
        at,
        "`#[proxied]` goes on a client struct, as `#[proxied(exchange = \"...\")]`, or on an `impl` block of that struct",
    );
    item.to_token_stream()
}
