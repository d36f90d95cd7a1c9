//! `#[derive(Settings)]`: parse, check, expand; on error, emit the errors and a fallback
//! impl so that the rest of the crate does not fail with follow-up errors.

mod ast;
mod attr;
mod expand;

use proc_macro2::TokenStream;

pub(crate) fn derive(input: &syn::DeriveInput) -> TokenStream {
    match ast::Input::from_syn(input) {
        Ok(model) => expand::expand(&model),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(input));
            out
        }
    }
}
