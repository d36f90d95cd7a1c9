//! `#[proxied(exchange = "...")]` on a struct: the hidden field and the `Proxied` impl.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Fields, ItemStruct};

use super::{FIELD, args};
use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, mut item: ItemStruct) -> TokenStream {
    let mut cx = Ctxt::default();
    let exchange = args::parse(&mut cx, args);
    let field = format_ident!("{}", FIELD);
    let named = match &mut item.fields {
        Fields::Named(named) => {
            match named
                .named
                .iter()
                .find(|f| f.ident.as_ref() == Some(&field))
            {
                Some(clash) => {
                    cx.error(
                        clash.ident.as_ref(),
                        format!("`{FIELD}` is the field `#[proxied]` adds; rename this field"),
                    );
                    false
                }
                None => {
                    // As visible as the struct (so that its impl blocks can be anywhere it
                    // can be built), but never beyond the crate.
                    let vis = match &item.vis {
                        syn::Visibility::Public(_) => syn::parse_quote!(pub(crate)),
                        other => other.clone(),
                    };
                    named.named.push(syn::parse_quote! {
                        #[doc(hidden)]
                        #vis #field: ::proxy_runtime::__private::Connectors
                    });
                    true
                }
            }
        }
        Fields::Unnamed(fields) => {
            cx.error(
                &*fields,
                "`#[proxied(exchange = \"...\")]` needs a struct with named fields, not a tuple struct",
            );
            false
        }
        Fields::Unit => {
            cx.error(
                &item.ident,
                "`#[proxied(exchange = \"...\")]` needs a struct with named fields, not a unit struct",
            );
            false
        }
    };
    let mut out = match cx.finish() {
        Ok(()) => TokenStream::new(),
        Err(e) => e.to_compile_error(),
    };
    // With a bad argument the struct still gets its field and impl (with an empty id), so
    // that its `#[proxied]` impl blocks compile and only the real mistake is reported.
    let exchange = exchange.map_or_else(|| quote!(""), |lit| quote!(#lit));
    let ident = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let proxied = named.then(|| {
        quote! {
            #[automatically_derived]
            impl #impl_generics ::proxy_runtime::Proxied for #ident #ty_generics #where_clause {
                const EXCHANGE: &'static str = #exchange;
                fn __connectors(&self) -> &::proxy_runtime::__private::Connectors {
                    &self.#field
                }
            }

            // The trait's methods, callable without importing `Proxied`.
            #[automatically_derived]
            #[allow(dead_code)]
            impl #impl_generics #ident #ty_generics #where_clause {
                /// The exchange id whose proxy routes this client uses.
                pub fn exchange(&self) -> &'static str {
                    <Self as ::proxy_runtime::Proxied>::EXCHANGE
                }

                /// The HTTP client of this exchange's HTTP route.
                pub fn http(&self) -> &::proxy_runtime::HttpClient {
                    <Self as ::proxy_runtime::Proxied>::http(self)
                }

                /// Opens a WebSocket to `url` on this exchange's WebSocket route.
                pub fn websocket(
                    &self,
                    url: &str,
                ) -> impl ::core::future::Future<
                    Output = ::core::result::Result<::proxy_runtime::WebSocket, ::proxy_runtime::ProxyError>,
                > + ::core::marker::Send + 'static {
                    <Self as ::proxy_runtime::Proxied>::websocket(self, url)
                }
            }
        }
    });
    out.extend(quote! {
        #item
        #proxied
    });
    out
}
