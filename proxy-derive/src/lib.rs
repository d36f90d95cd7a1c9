//! Macros of proxy-runtime: `#[derive(Settings)]` and `#[proxied]`.
//!
//! Use them through `proxy-runtime`, which re-exports them and holds the code they
//! generate calls into (`::proxy_runtime::__private`). This crate is split by phase:
//! `attr` parses attributes, `ast` builds a checked model of the input, `expand` writes
//! the code, and `ctxt` collects every error so the user sees them all at once.

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
