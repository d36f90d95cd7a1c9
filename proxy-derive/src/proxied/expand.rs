//! Code generation for `#[proxied]`: on a struct, the hidden field and the `Proxied` impl;
//! on an impl block, the completion of its struct literals. Generated code names only
//! absolute paths.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::visit_mut::{self, VisitMut};
use syn::{ExprStruct, Fields, ImplItem, ItemImpl, ItemStruct, Type};

use super::FIELD;
use super::attr::Exchange;

/// The struct with its hidden field, and the `Proxied` impl. `exchange` is `None` after an
/// invalid argument (already reported): the impl then gets an empty id, so that the
/// struct's `#[proxied]` impl blocks still compile and only the real mistake is reported.
/// Without `add_field` (a struct that cannot take it) the struct is emitted as written.
pub(crate) fn client(
    mut item: ItemStruct,
    exchange: Option<&Exchange>,
    add_field: bool,
) -> TokenStream {
    let field = format_ident!("{}", FIELD);
    if !add_field {
        return quote!(#item);
    }
    if let Fields::Named(named) = &mut item.fields {
        // As visible as the struct (so that its impl blocks can be anywhere it can be
        // built), but never beyond the crate.
        let vis = match &item.vis {
            syn::Visibility::Public(_) => syn::parse_quote!(pub(crate)),
            other => other.clone(),
        };
        named.named.push(syn::parse_quote! {
            #[doc(hidden)]
            #vis #field: ::proxy_runtime::__private::Connectors<Self>
        });
    }
    // The client is named by a mixed-site identifier: the user's expression cannot refer
    // to it (nor to `self`, which this function does not have), so an expression cannot
    // read the struct's fields; `exchange_field` is the form for that.
    let client = syn::Ident::new("client", proc_macro2::Span::mixed_site());
    let resolve = match exchange {
        None => quote!(::proxy_runtime::__private::connectors::<Self>("")),
        Some(Exchange::Literal(lit)) => {
            quote!(::proxy_runtime::__private::connectors::<Self>(#lit))
        }
        Some(Exchange::Expr(expr)) => {
            let span = syn::spanned::Spanned::span(expr);
            let typed = quote_spanned!(span=> let exchange: &str = #expr;);
            quote!({
                #typed
                ::proxy_runtime::__private::connectors::<Self>(exchange)
            })
        }
        Some(Exchange::Field(name)) => {
            let span = name.span();
            let read = quote_spanned!(span=>
                ::proxy_runtime::__private::ExchangeName::exchange_name(&#client.#name)
            );
            quote!(::proxy_runtime::__private::connectors::<Self>(#read))
        }
    };
    // The literal form keeps its id as a constant of the type.
    let constant = match exchange {
        Some(Exchange::Literal(lit)) => quote! {
            /// The exchange id whose proxy routes this client uses.
            pub const EXCHANGE: &'static str = #lit;
        },
        _ => TokenStream::new(),
    };
    let ident = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    quote! {
        #item

        #[automatically_derived]
        impl #impl_generics ::proxy_runtime::Proxied for #ident #ty_generics #where_clause {
            fn __connectors(&self) -> &::proxy_runtime::__private::Connectors<Self> {
                &self.#field
            }
            fn __connectors_mut(&mut self) -> &mut ::proxy_runtime::__private::Connectors<Self> {
                &mut self.#field
            }
            #[allow(unused_variables)]
            fn __resolve(#client: &Self) -> ::proxy_runtime::__private::Connectors<Self> {
                #resolve
            }
        }

        // The trait's methods, callable without importing `Proxied`.
        #[automatically_derived]
        #[allow(dead_code)]
        impl #impl_generics #ident #ty_generics #where_clause {
            #constant

            /// The exchange id whose proxy routes this client uses.
            pub fn exchange(&self) -> &str {
                <Self as ::proxy_runtime::Proxied>::exchange(self)
            }

            /// The HTTP client of this exchange's HTTP route.
            pub fn http(&self) -> &::proxy_runtime::HttpClient {
                <Self as ::proxy_runtime::Proxied>::http(self)
            }

            /// Opens a WebSocket on this exchange's WebSocket route: `request` is a URL or
            /// an `http::Request`, as for `tokio_tungstenite::connect_async`.
            pub fn websocket(
                &self,
                request: impl ::proxy_runtime::tungstenite::client::IntoClientRequest,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    (::proxy_runtime::WebSocket, ::proxy_runtime::WebSocketResponse),
                    ::proxy_runtime::ProxyError,
                >,
            > + ::core::marker::Send + 'static {
                <Self as ::proxy_runtime::Proxied>::websocket(self, request)
            }

            /// `websocket` with tungstenite's frame and message size limits.
            pub fn websocket_with_config(
                &self,
                request: impl ::proxy_runtime::tungstenite::client::IntoClientRequest,
                config: ::core::option::Option<::proxy_runtime::tungstenite::protocol::WebSocketConfig>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    (::proxy_runtime::WebSocket, ::proxy_runtime::WebSocketResponse),
                    ::proxy_runtime::ProxyError,
                >,
            > + ::core::marker::Send + 'static {
                <Self as ::proxy_runtime::Proxied>::websocket_with_config(self, request, config)
            }

            /// A resilient WebSocket session on this exchange's WebSocket route: it keeps
            /// itself alive, reconnects through the route and runs `on_connect` after every
            /// connection.
            pub fn websocket_session(
                &self,
                request: impl ::proxy_runtime::tungstenite::client::IntoClientRequest,
            ) -> ::proxy_runtime::WebSocketSessionBuilder {
                <Self as ::proxy_runtime::Proxied>::websocket_session(self, request)
            }
        }
    }
}

/// The impl block with every `Self { .. }` or `TypeName { .. }` literal of its functions
/// (closures, blocks and async bodies included; nested items not) completed with the hidden
/// field, and a check that the type is a proxied client (made even where no literal is
/// completed).
pub(crate) fn constructors(mut item: ItemImpl) -> TokenStream {
    let type_path = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.iter().map(|s| s.ident.clone()).collect()
        }
        _ => Vec::new(),
    };
    let mut rewriter = Rewriter {
        type_path,
        field: format_ident!("{}", FIELD),
    };
    for impl_item in &mut item.items {
        if let ImplItem::Fn(f) = impl_item {
            rewriter.visit_block_mut(&mut f.block);
        }
    }
    // The check is a free function, where `Self` means nothing: it is spelled out.
    let self_ty = &item.self_ty;
    let mut generics = item.generics.clone();
    if let Some(where_clause) = &mut generics.where_clause {
        SpellOutSelf { self_ty }.visit_where_clause_mut(where_clause);
    }
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let span = syn::spanned::Spanned::span(self_ty);
    let check = quote_spanned! {span=>
        const _: () = {
            #[allow(dead_code)]
            fn __proxied_impl #impl_generics () #where_clause {
                ::proxy_runtime::__private::assert_proxied::<#self_ty>();
            }
        };
    };
    quote! {
        #item
        #check
    }
}

struct Rewriter {
    /// The impl's type as written (`Binance`, `crate::clients::Binance`), without generics.
    type_path: Vec<syn::Ident>,
    field: syn::Ident,
}

impl Rewriter {
    /// How a literal is completed: `None` when it is not a literal of the impl's type or
    /// sets the hidden field itself; else whether the field is to be added (`false` for
    /// `..base`, which gives it: the connectors are resolved again all the same, since the
    /// literal may name another exchange than the base did).
    fn completion(&self, e: &ExprStruct) -> Option<bool> {
        if e.qself.is_some() || (e.dot2_token.is_some() && e.rest.is_none()) {
            return None;
        }
        if !self.names_the_type(&e.path) {
            return None;
        }
        let given = e.fields.iter().any(|f| match &f.member {
            syn::Member::Named(name) => *name == self.field,
            syn::Member::Unnamed(_) => false,
        });
        (!given).then_some(e.rest.is_none())
    }

    /// `Self`, the type's path as the impl writes it, or its bare name. Any other path
    /// (`super::Binance`, `Venue::Binance`, `wire::Binance`) names something else, even
    /// when its last segment is the same.
    fn names_the_type(&self, path: &syn::Path) -> bool {
        let idents: Vec<&syn::Ident> = path.segments.iter().map(|s| &s.ident).collect();
        match idents.as_slice() {
            [only] if *only == "Self" => true,
            [only] => self.type_path.last() == Some(*only),
            many => path.leading_colon.is_none() && many.iter().copied().eq(self.type_path.iter()),
        }
    }
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, e: &mut syn::Expr) {
        visit_mut::visit_expr_mut(self, e);
        let syn::Expr::Struct(literal) = e else {
            return;
        };
        let Some(add_field) = self.completion(literal) else {
            return;
        };
        let field = &self.field;
        // Spanned at the literal's path, so that a literal of another type is reported
        // where it is written. The placeholder (or the base's connectors) is replaced, once
        // the literal is built, by the connectors of the exchange the client names (which
        // may be one of its fields, set anew beside `..base`).
        let at = syn::spanned::Spanned::span(&literal.path);
        if add_field {
            literal.fields.push(syn::parse_quote_spanned! {at=>
                #field: ::proxy_runtime::__private::pending::<Self>()
            });
        }
        let built = std::mem::replace(e, syn::Expr::Verbatim(TokenStream::new()));
        *e = syn::parse_quote_spanned! {at=>
            ::proxy_runtime::__private::complete(#built)
        };
    }

    /// Nested items (a `fn` or `impl` inside a function) have their own `Self`, or none:
    /// they are left as written.
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

/// Replaces `Self` with the impl's type, for code outside the impl.
struct SpellOutSelf<'a> {
    self_ty: &'a Type,
}

impl VisitMut for SpellOutSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty
            && p.qself.is_none()
            && p.path.segments.first().is_some_and(|s| s.ident == "Self")
        {
            let self_ty = self.self_ty;
            let rest: Vec<_> = p.path.segments.iter().skip(1).collect();
            *ty = if rest.is_empty() {
                self_ty.clone()
            } else {
                syn::parse_quote!(<#self_ty>::#(#rest)::*)
            };
            return;
        }
        visit_mut::visit_type_mut(self, ty);
    }
}
