//! Macros of proxy-runtime: `#[derive(Settings)]`.
//!
//! Use them through `proxy-runtime`, which re-exports them and holds the code they
//! generate calls into (`::proxy_runtime::__private`). This crate is split by phase:
//! `attr` parses attributes, `ast` builds a checked model of the input, `expand` writes
//! the code, and `ctxt` collects every error so the user sees them all at once.

mod ctxt;
mod settings;

use proc_macro::TokenStream;

/// Derives `proxy_runtime::Settings` for a struct with named fields. See the
/// documentation of `proxy_runtime::Settings`.
#[proc_macro_derive(Settings, attributes(settings))]
pub fn derive_settings(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    settings::derive(&input).into()
}
