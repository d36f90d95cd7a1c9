//! `#[derive(Settings)]`. Phases: [`attr`] parses the attributes, [`ast`] builds the model,
//! [`valid`] checks its meaning, [`expand`] writes the code. On error, the errors are
//! emitted with a fallback impl so that the rest of the crate does not fail with follow-up
//! errors.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

pub(crate) fn derive(input: &syn::DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let model = ast::Input::from_syn(&mut cx, input);
    valid::check(&mut cx, &model);
    match cx.finish() {
        Ok(()) => expand::expand(&model),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(input));
            out
        }
    }
}
