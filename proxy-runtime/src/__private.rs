//! What the macros' generated code calls. Not public API: it may change in any release.
//!
//! `#[derive(Settings)]` builds schemas through it, and `#[proxied]` fills its hidden field
//! and checks its impl blocks with it; each name here is spelled
//! `::proxy_runtime::__private::..` by the generated code.

pub use crate::proxied::Connectors;
use crate::proxied::Proxied;
pub use crate::settings::schema::{FieldKind, FieldSchema, Schema, SettingsField, SettingsOptions};

/// A struct's schema, from its name, fields, `one_of` groups and `shorthand` field.
pub fn schema(
    type_name: &'static str,
    fields: Vec<FieldSchema>,
    one_of: &'static [&'static [&'static str]],
    shorthand: Option<&'static str>,
) -> Schema {
    Schema::new(type_name, fields, one_of, shorthand)
}

pub use crate::proxied::ExchangeName;

/// The connectors of `exchange`, from the proxy system in force now.
pub fn connectors<T: Proxied + ?Sized>(exchange: &str) -> Connectors<T> {
    Connectors::resolve(exchange)
}

/// The placeholder of a constructor's struct literal, completed by [`complete`].
pub fn pending<T: Proxied + ?Sized>() -> Connectors<T> {
    Connectors::pending()
}

/// A client from a constructor's struct literal, with the connectors of the exchange it
/// names (resolved once, now).
pub fn complete<T: Proxied>(mut client: T) -> T {
    let connectors = T::__resolve(&client);
    *client.__connectors_mut() = connectors;
    client
}

/// Compiles only for proxied clients (checked by `#[proxied]` impl blocks).
pub const fn assert_proxied<T: Proxied + ?Sized>() {}
pub use ::core::option::Option::{None, Some};
pub use ::serde::Deserialize;
pub use ::serde::de::DeserializeOwned;
pub use ::std::vec;

/// The schema of `T`, built by `build` on first use and kept for the life of the
/// process (one small allocation per settings type).
pub fn cached_schema<T: 'static>(build: fn() -> Schema) -> &'static Schema {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{OnceLock, PoisonError, RwLock};

    static CACHE: OnceLock<RwLock<HashMap<TypeId, &'static Schema>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(schema) = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        return schema;
    }
    let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
    cache
        .entry(id)
        .or_insert_with(|| Box::leak(Box::new(build())))
}

/// Shows a field's default value, for `proxy-check --vars`.
pub fn show_default<T: SettingsField>(value: &T) -> String {
    value.show_default()
}

/// One field's schema. A field is required when it has no serde default and is not an
/// `Option`.
pub fn field<T: SettingsField>(
    name: &'static str,
    doc: &'static str,
    default: Option<fn() -> String>,
) -> FieldSchema {
    let kind = T::kind();
    let required = default.is_none() && !matches!(kind, FieldKind::Optional(_));
    FieldSchema::new(name, doc, kind, required, default)
}
