//! Code generation for `#[derive(Settings)]`. Generated code names only absolute paths.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::LitStr;

use super::ast::{Field, Input};
use super::attr::SerdeDefault;

pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let original = input.original;
    let ident = &original.ident;
    let type_name = ident.to_string();
    let (impl_generics, ty_generics, where_clause) = original.generics.split_for_impl();
    let mut where_clause = where_clause.cloned();
    // `Settings: DeserializeOwned`. For a concrete type, the bound is written with `for<'a>`
    // (legal on a concrete type) and checked once by the assertion below, so a forgotten
    // `#[derive(Deserialize)]` is one error at the struct rather than one per impl item.
    let mut assertion = TokenStream::new();
    if original.generics.params.is_empty() {
        where_clause
            .get_or_insert_with(|| syn::parse_quote!(where))
            .predicates
            .push(syn::parse_quote!(
                for<'__settings> #ident: ::proxy_runtime::__private::DeserializeOwned
            ));
        assertion = quote_spanned! {ident.span()=>
            const _: () = {
                fn __settings_need_deserialize<T: for<'de> ::proxy_runtime::__private::Deserialize<'de>>() {}
                #[allow(dead_code)]
                fn __check() {
                    __settings_need_deserialize::<#ident>();
                }
            };
        };
    } else {
        let predicates = &mut where_clause
            .get_or_insert_with(|| syn::parse_quote!(where))
            .predicates;
        for field in &input.fields {
            let ty = &field.original.ty;
            predicates.push(syn::parse_quote!(#ty: ::proxy_runtime::__private::SettingsField));
        }
        predicates.push(syn::parse_quote!(Self: ::proxy_runtime::__private::DeserializeOwned));
        predicates.push(syn::parse_quote!(Self: 'static));
    }
    let option = |lit: &Option<LitStr>| match lit {
        Some(lit) => quote!(::proxy_runtime::__private::Some(#lit)),
        None => quote!(::proxy_runtime::__private::None),
    };
    let env_prefix = option(&input.env_prefix);
    let yaml_section = option(&input.yaml_section);
    let config_env = option(&input.config_env);
    let fields = input.fields.iter().map(|f| field(input, f));
    let complete = input.complete.as_ref().map(|path| {
        quote! {
            fn complete(
                &mut self,
                env: &::proxy_runtime::load::Environment<'_>,
                origins: &mut ::proxy_runtime::load::Origins,
            ) -> ::core::result::Result<(), ::std::vec::Vec<::proxy_runtime::load::SettingError>> {
                #path(self, env, origins)
            }
        }
    });
    let groups = input.one_of.iter().map(|g| {
        let names = &g.names;
        quote!(&[#(#names),*])
    });
    let shorthand = option(&input.shorthand);

    quote! {
        #[automatically_derived]
        impl #impl_generics ::proxy_runtime::Settings for #ident #ty_generics #where_clause {
            const OPTIONS: ::proxy_runtime::__private::SettingsOptions =
                ::proxy_runtime::__private::SettingsOptions {
                    env_prefix: #env_prefix,
                    yaml_section: #yaml_section,
                    config_env: #config_env,
                };

            fn schema() -> &'static ::proxy_runtime::__private::Schema {
                ::proxy_runtime::__private::cached_schema::<Self>(|| {
                    ::proxy_runtime::__private::schema(
                        #type_name,
                        ::proxy_runtime::__private::vec![#(#fields),*],
                        &[#(#groups),*],
                        #shorthand,
                    )
                })
            }

            #complete
        }

        #[automatically_derived]
        impl #impl_generics ::proxy_runtime::SettingsField for #ident #ty_generics #where_clause {
            fn kind() -> ::proxy_runtime::__private::FieldKind {
                ::proxy_runtime::__private::FieldKind::Struct(
                    <Self as ::proxy_runtime::Settings>::schema,
                )
            }
        }

        #assertion
    }
}

fn field(input: &Input<'_>, field: &Field<'_>) -> TokenStream {
    let ty = &field.original.ty;
    let name = &field.name;
    let doc = &field.doc;
    let member = field.original.ident.as_ref();
    let show = |value: TokenStream| {
        quote! {
            ::proxy_runtime::__private::Some(|| ::proxy_runtime::__private::show_default::<#ty>(&#value))
        }
    };
    let default = match (&field.default, &input.container_default) {
        (Some(SerdeDefault::Trait), _) => {
            show(quote!(<#ty as ::core::default::Default>::default()))
        }
        (Some(SerdeDefault::Path(path)), _) => show(quote!(#path())),
        (None, Some(SerdeDefault::Trait)) => {
            show(quote!(<Self as ::core::default::Default>::default().#member))
        }
        (None, Some(SerdeDefault::Path(path))) => show(quote!(#path().#member)),
        (None, None) => quote!(::proxy_runtime::__private::None),
    };
    // The span of the field's type, so that a type without a schema is reported there.
    quote_spanned! {field.span()=>
        ::proxy_runtime::__private::field::<#ty>(#name, #doc, #default)
    }
}

/// What to emit beside the errors: impls that satisfy the rest of the crate, so that one
/// mistake does not cascade into many. They are never run (the crate does not compile).
pub(crate) fn fallback(input: &syn::DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    // Applies only where the type deserializes, so a missing `Deserialize` derive is not
    // reported a second time here (`for<'a>` makes the bound legal on a concrete type).
    where_clause.predicates.push(syn::parse_quote!(
        for<'__settings> #ident #ty_generics: ::proxy_runtime::__private::DeserializeOwned
    ));
    quote! {
        #[automatically_derived]
        impl #impl_generics ::proxy_runtime::Settings for #ident #ty_generics #where_clause {
            const OPTIONS: ::proxy_runtime::__private::SettingsOptions =
                ::proxy_runtime::__private::SettingsOptions {
                    env_prefix: ::proxy_runtime::__private::None,
                    yaml_section: ::proxy_runtime::__private::None,
                    config_env: ::proxy_runtime::__private::None,
                };
            fn schema() -> &'static ::proxy_runtime::__private::Schema {
                ::core::unreachable!()
            }
        }
    }
}
