//! Every shape `#[derive(Settings)]` supports compiles and loads.

use std::collections::{BTreeMap, HashMap};

use proxy_runtime::{ExchangeId, Loader, ProxyUrl, Settings};

/// Container options, doc comments, other attributes and raw identifiers.
#[derive(Debug, Clone, serde::Deserialize, Settings)]
#[settings(env_prefix = "APP_", yaml_section = "app", config_env = "APP_CONFIG")]
#[serde(deny_unknown_fields)]
pub struct App {
    /// A leaf.
    pub r#type: String,
    #[serde(default)]
    pub optional: Option<u8>,
    #[serde(default)]
    pub nested: Option<Nested>,
    #[serde(default)]
    pub by_id: BTreeMap<ExchangeId, Nested>,
    #[serde(default)]
    pub by_name: HashMap<String, u32>,
    #[serde(skip)]
    pub not_loaded: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, Settings)]
#[serde(default)]
pub struct Nested {
    pub proxy: Option<ProxyUrl>,
    pub enabled: bool,
}

/// Lists, and a group of fields of which exactly one must be given.
#[derive(Debug, serde::Deserialize, Settings)]
#[settings(env_prefix = "MIRRORS_", one_of("url", "urls"))]
pub struct Mirrors {
    pub url: Option<ProxyUrl>,
    #[serde(default)]
    pub urls: Vec<ProxyUrl>,
    #[serde(default)]
    pub weights: Vec<Nested>,
}

/// Generic settings.
#[derive(Debug, serde::Deserialize, Settings)]
#[settings(env_prefix = "GEN_")]
pub struct Generic<T> {
    pub value: T,
}

fn main() {
    let app: App = Loader::new()
        .env_vars([("APP_TYPE", "x"), ("APP_BY_ID__OKX__ENABLED", "yes")])
        .load()
        .unwrap();
    assert_eq!(app.r#type, "x");
    assert!(app.by_id.values().all(|n| n.enabled));
    let g: Generic<u16> = Loader::new().env_vars([("GEN_VALUE", "7")]).load().unwrap();
    assert_eq!(g.value, 7);
    assert_eq!(<Generic<bool> as Settings>::schema().fields().len(), 1);
    let m: Mirrors = Loader::new()
        .env_vars([("MIRRORS_URLS", r#"["socks5h://a:1", "direct://"]"#)])
        .load()
        .unwrap();
    assert_eq!(m.urls.len(), 2);
    assert!(m.url.is_none() && m.weights.is_empty());
    let both: Result<Mirrors, _> = Loader::new()
        .env_vars([("MIRRORS_URL", "socks5h://a:1"), ("MIRRORS_URLS", "[]")])
        .load();
    assert!(both.is_err());
}
