//! The settings framework: `#[derive(Settings)]`'s schema, the loader (YAML and variables,
//! merged leaf by leaf, every error with its origin) and the origins of every value.
//!
//! Generic over any settings type and driven by its schema: it knows no proxy type. The
//! proxy settings ([`crate::model`]) and the values they hold implement its traits in their
//! own files. Within it, imports go one way: [`handoff`] knows nothing of the others,
//! [`schema`] knows `handoff`, and [`load`] knows both.

pub(crate) mod handoff;
pub mod load;
pub mod schema;
