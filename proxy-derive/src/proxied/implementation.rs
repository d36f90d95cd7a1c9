//! `#[proxied]` on an `impl` block: every `Self { .. }` or `TypeName { .. }` literal in its
//! functions (closures, blocks and async bodies included; nested items not) gets the hidden
//! field, resolved from the proxy system in force when the literal is evaluated.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::visit_mut::{self, VisitMut};
use syn::{ExprStruct, ImplItem, ItemImpl, Type};

use super::FIELD;

pub(crate) fn expand(args: TokenStream, mut item: ItemImpl) -> TokenStream {
    let mut out = TokenStream::new();
    if !args.is_empty() {
        out.extend(
            syn::Error::new_spanned(
                &args,
                "`#[proxied]` on an impl block takes no arguments: the exchange belongs on the struct, as `#[proxied(exchange = \"...\")]`",
            )
            .to_compile_error(),
        );
    }
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
    // The type must be a proxied client: checked even where no literal is completed. The
    // check is a free function, where `Self` means nothing: it is spelled out.
    let self_ty = &item.self_ty;
    let mut generics = item.generics.clone();
    if let Some(where_clause) = &mut generics.where_clause {
        SpellOutSelf { self_ty }.visit_where_clause_mut(where_clause);
    }
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let check = quote::quote_spanned! {self_ty_span(self_ty)=>
        const _: () = {
            #[allow(dead_code)]
            fn __proxied_impl #impl_generics () #where_clause {
                ::proxy_runtime::__private::assert_proxied::<#self_ty>();
            }
        };
    };
    out.extend(quote! {
        #item
        #check
    });
    out
}

fn self_ty_span(ty: &Type) -> proc_macro2::Span {
    syn::spanned::Spanned::span(ty)
}

struct Rewriter {
    /// The impl's type as written (`Binance`, `crate::clients::Binance`), without generics.
    type_path: Vec<syn::Ident>,
    field: syn::Ident,
}

impl Rewriter {
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

impl VisitMut for Rewriter {
    fn visit_expr_struct_mut(&mut self, e: &mut ExprStruct) {
        visit_mut::visit_expr_struct_mut(self, e);
        if e.qself.is_some() || e.rest.is_some() || e.dot2_token.is_some() {
            return;
        }
        if !self.names_the_type(&e.path) {
            return;
        }
        let field = &self.field;
        let given = e.fields.iter().any(|f| match &f.member {
            syn::Member::Named(name) => name == field,
            syn::Member::Unnamed(_) => false,
        });
        if !given {
            e.fields.push(syn::parse_quote! {
                #field: ::proxy_runtime::__private::connectors::<Self>()
            });
        }
    }

    /// Nested items (a `fn` or `impl` inside a function) have their own `Self`, or none:
    /// they are left as written.
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
