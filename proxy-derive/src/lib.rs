//! Macros of proxy-runtime: `#[derive(Settings)]` and `#[proxied]`.
//!
//! Use them through `proxy-runtime`, which re-exports them and holds the code they
//! generate calls into (`::proxy_runtime::__private`). Each macro is split by phase, as
//! thiserror and serde_derive are: `attr` parses attributes, `ast` builds a model of the
//! input keeping its syn nodes for spans (`#[proxied]` needs none beyond syn's item),
//! `valid` checks meaning, `expand` writes the code; `ctxt` collects every error so the
//! user sees them all at once. The naming rules both macros check are those of the
//! `proxy-rules` crate, which the runtime applies too.

mod ctxt;
mod proxied;
mod settings;

use proc_macro::TokenStream;

/// Derives `proxy_runtime::Settings` for a struct with named fields. See the
/// documentation of `proxy_runtime::Settings`.
#[proc_macro_derive(Settings, attributes(settings))]
pub fn derive_settings(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    settings::derive(&input).into()
}

/// Makes a struct a proxied exchange client (`#[proxied(exchange = "binance")]` on the
/// struct) and completes its constructors (`#[proxied]` on its `impl` blocks). See the
/// documentation of `proxy_runtime::proxied`.
#[proc_macro_attribute]
pub fn proxied(args: TokenStream, input: TokenStream) -> TokenStream {
    proxied::expand(args.into(), input.into()).into()
}
