//! `#[derive(Settings)]` on a settings struct of the tests' own: nested structs, maps,
//! optionals and leaves load from variables and YAML with the same rules as the proxy
//! settings.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use proxy_runtime::load::{ErrorKind, variables};
use proxy_runtime::{ExchangeId, Loader, ProxyUrl, Settings, TimeoutSeconds};
use serde::Deserialize;

#[derive(Debug, Deserialize, Settings)]
#[settings(env_prefix = "BOT_", yaml_section = "bot", config_env = "BOT_CONFIG")]
#[serde(deny_unknown_fields)]
struct BotSettings {
    /// The bot's name.
    name: String,
    /// Orders per second.
    #[serde(default = "default_rate")]
    rate: u32,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    journal: Option<PathBuf>,
    /// Where to store fills.
    #[serde(default)]
    database: Option<Database>,
    #[serde(default)]
    venues: BTreeMap<ExchangeId, Venue>,
    #[serde(default)]
    tags: HashMap<String, String>,
    limits: Limits,
}

fn default_rate() -> u32 {
    10
}

#[derive(Debug, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
struct Database {
    url: String,
    #[serde(default)]
    pool: Option<u16>,
}

#[derive(Debug, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
struct Venue {
    #[serde(default)]
    proxy: Option<ProxyUrl>,
    #[serde(default)]
    timeout: TimeoutSeconds,
}

#[derive(Debug, Default, Deserialize, Settings)]
#[serde(default, deny_unknown_fields)]
struct Limits {
    max_position: i64,
    max_orders: u16,
}

fn from_env(vars: &[(&str, &str)]) -> Result<BotSettings, proxy_runtime::LoadError> {
    Loader::<BotSettings>::new()
        .env_vars(vars.iter().copied())
        .load()
}

#[test]
fn loads_from_variables() {
    let s = from_env(&[
        ("BOT_NAME", "alpha"),
        ("bot_dry_run", "on"),
        ("BOT_JOURNAL", "/var/log/bot.journal"),
        ("BOT_DATABASE__URL", "postgres://db/fills"),
        ("BOT_DATABASE__POOL", "8"),
        ("BOT_VENUES__BINANCE_FUTURES__PROXY", "socks5h://p:1080"),
        ("BOT_VENUES__KRAKEN__TIMEOUT", "12"),
        ("BOT_TAGS__DESK", "emea"),
        ("BOT_LIMITS", r#"{"max_position": -5}"#),
        ("BOT_LIMITS__MAX_ORDERS", "100"),
    ])
    .unwrap();
    assert_eq!(s.name, "alpha");
    assert_eq!(s.rate, 10);
    assert!(s.dry_run);
    assert_eq!(s.journal, Some(PathBuf::from("/var/log/bot.journal")));
    let db = s.database.unwrap();
    assert_eq!((db.url.as_str(), db.pool), ("postgres://db/fills", Some(8)));
    let bf = &s.venues[&ExchangeId::new("binance_futures").unwrap()];
    assert_eq!(bf.proxy.as_ref().unwrap().to_string(), "socks5h://p:1080");
    assert_eq!(bf.timeout.get(), 30);
    assert_eq!(
        s.venues[&ExchangeId::new("kraken").unwrap()].timeout.get(),
        12
    );
    assert_eq!(s.tags["desk"], "emea");
    assert_eq!((s.limits.max_position, s.limits.max_orders), (-5, 100));
}

#[test]
fn loads_from_yaml_with_env_on_top() {
    let yaml = "other: true\nbot:\n  name: beta\n  rate: 3\n  venues:\n    OKX:\n      proxy: direct://\n  limits:\n    max_orders: 7\n";
    let s = Loader::<BotSettings>::new()
        .yaml_str("bot.yaml", yaml)
        .env_vars([("BOT_RATE", "4")])
        .load()
        .unwrap();
    assert_eq!((s.name.as_str(), s.rate), ("beta", 4));
    assert!(
        s.venues[&ExchangeId::new("okx").unwrap()]
            .proxy
            .as_ref()
            .unwrap()
            .is_direct()
    );
    assert_eq!((s.limits.max_position, s.limits.max_orders), (0, 7));
    assert!(s.database.is_none());
}

#[test]
fn same_rules_for_errors() {
    let err = from_env(&[
        ("BOT_NAM", "x"),
        ("BOT_RATE", "-1"),
        ("BOT_DATABASE__POOL", "70000"),
        ("BOT_VENUES__BIN-ANCE__PROXY", "http://p:1"),
        ("BOT_LIMITS__MAX_ORDER", "1"),
        ("BOT_DRY_RUN", ""),
    ])
    .unwrap_err();
    let all: Vec<String> = err.errors().iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 9, "{all:#?}");
    let has = |needle: &str| all.iter().any(|e| e.contains(needle));
    assert!(has("did you mean `BOT_NAME`"));
    assert!(has("did you mean `BOT_LIMITS__MAX_ORDERS`"));
    assert!(has(
        "`BOT_RATE` (environment): expected an integer from 0 to 4294967295"
    ));
    assert!(has(
        "`BOT_DATABASE__POOL` (environment): expected an integer from 0 to 65535"
    ));
    assert!(has("invalid key `bin-ance`"));
    assert!(has("`BOT_DRY_RUN` (environment): empty value"));
    // `name` and `limits` are required; `database.url` is required once `database` is given.
    assert!(has(
        "settings: missing required `name`: set `BOT_NAME` or `bot.name`"
    ));
    assert!(has(
        "settings: missing required `limits`: set `BOT_LIMITS` or `bot.limits`"
    ));
    assert!(has(
        "`BOT_DATABASE__POOL` (environment): missing required `url`: set `BOT_DATABASE__URL` or `bot.database.url`"
    ));
    assert!(err.errors().iter().any(|e| e.kind() == &ErrorKind::Missing));
}

#[test]
fn config_file_variable_of_the_type() {
    let dir = std::env::temp_dir().join(format!("derive-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bot.yaml");
    std::fs::write(&path, "bot:\n  name: gamma\n  limits: {}\n").unwrap();
    let s = from_env(&[("BOT_CONFIG", path.to_str().unwrap())]).unwrap();
    assert_eq!(s.name, "gamma");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn variables_listing_comes_from_the_schema() {
    let vars = variables::<BotSettings>("BOT_");
    let names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "BOT_NAME",
            "BOT_RATE",
            "BOT_DRY_RUN",
            "BOT_JOURNAL",
            "BOT_DATABASE",
            "BOT_DATABASE__URL",
            "BOT_DATABASE__POOL",
            "BOT_VENUES",
            "BOT_VENUES__<ID>",
            "BOT_VENUES__<ID>__PROXY",
            "BOT_VENUES__<ID>__TIMEOUT",
            "BOT_TAGS",
            "BOT_TAGS__<NAME>",
            "BOT_LIMITS",
            "BOT_LIMITS__MAX_POSITION",
            "BOT_LIMITS__MAX_ORDERS",
        ]
    );
    let rate = &vars[1];
    assert_eq!(rate.default.as_deref(), Some("10"));
    assert_eq!(rate.doc, "Orders per second.");
    assert!(vars[0].required && !rate.required);
    assert_eq!(vars[14].default.as_deref(), Some("0"), "container default");
    assert_eq!(BotSettings::OPTIONS.yaml_section, Some("bot"));
}

/// A leaf that counts how often it is read.
#[derive(Debug, PartialEq)]
struct Lot(u32);

static LOT_READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl proxy_runtime::SettingsLeaf for Lot {
    const EXPECTED: &'static str = "a lot size";
    fn from_scalar(value: &proxy_runtime::schema::Scalar) -> Result<Self, String> {
        LOT_READS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        value
            .to_text()
            .parse()
            .map(Lot)
            .map_err(|_| "expected a lot size".to_owned())
    }
    fn to_scalar(&self) -> proxy_runtime::schema::Scalar {
        proxy_runtime::schema::Scalar::Int(i128::from(self.0))
    }
}

impl<'de> Deserialize<'de> for Lot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        proxy_runtime::schema::deserialize_leaf(d)
    }
}

fn even<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n % 2 == 0 {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!("{n} is odd")))
    }
}

#[derive(Debug, Deserialize, Settings)]
#[settings(env_prefix = "DESK_", yaml_section = "desk")]
#[serde(deny_unknown_fields)]
struct Desk {
    lot: Lot,
    #[serde(default)]
    books: BTreeMap<ExchangeId, Book>,
}

#[derive(Debug, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
struct Book {
    #[serde(deserialize_with = "even")]
    depth: u32,
}

#[test]
fn each_leaf_is_read_once_and_serde_errors_keep_their_origin() {
    // `deserialize_leaf` takes the value the loader read: one read per load, not two.
    LOT_READS.store(0, std::sync::atomic::Ordering::SeqCst);
    let desk: Desk = Loader::new()
        .env_vars([("DESK_LOT", "100"), ("DESK_BOOKS__OKX__DEPTH", "20")])
        .load()
        .unwrap();
    assert_eq!(desk.lot, Lot(100));
    assert_eq!(desk.books["okx"].depth, 20);
    assert_eq!(LOT_READS.load(std::sync::atomic::Ordering::SeqCst), 1);

    // An error a `Deserialize` impl raises after the merge names where the value was set.
    let yaml = "desk:\n  lot: 5\n  books:\n    okx:\n      depth: 3\n";
    let err = Loader::<Desk>::new()
        .yaml_str("desk.yaml", yaml)
        .load()
        .unwrap_err();
    assert_eq!(
        err.errors()[0].to_string(),
        "desk.yaml:5: `desk.books.okx.depth`: 3 is odd"
    );
    let err = Loader::<Desk>::new()
        .yaml_str("desk.yaml", yaml)
        .env_vars([("DESK_BOOKS__OKX__DEPTH", "7")])
        .load()
        .unwrap_err();
    assert_eq!(
        err.errors()[0].to_string(),
        "`DESK_BOOKS__OKX__DEPTH` (environment): 7 is odd"
    );
}

#[test]
fn text_keys_are_one_rule_in_every_source_case_insensitive_and_lowercase() {
    // A file's capitals and a variable's (lower-cased) name are the same key: the
    // variable overrides the file's value.
    let yaml = "bot:\n  name: a\n  limits: {}\n  tags:\n    BTC-USDT: five\n    Desk: emea\n";
    let s = Loader::<BotSettings>::new()
        .yaml_str("bot.yaml", yaml)
        .env_vars([("BOT_TAGS__BTC-USDT", "one")])
        .load()
        .unwrap();
    assert_eq!(s.tags.len(), 2, "{:?}", s.tags);
    assert_eq!(s.tags["btc-usdt"], "one");
    assert_eq!(s.tags["desk"], "emea");
    // Two spellings in one source are one key given twice.
    let err = Loader::<BotSettings>::new()
        .yaml_str(
            "bot.yaml",
            "bot:\n  name: a\n  limits: {}\n  tags: {BTC-USDT: 5, btc-usdt: 1}\n",
        )
        .load()
        .unwrap_err();
    assert_eq!(err.errors()[0].kind(), &ErrorKind::Duplicate, "{err}");
}

#[test]
fn variables_need_a_prefix_and_a_type_without_one_loads_from_yaml() {
    let err = Loader::<Limits>::new()
        .env_vars([("MAX_ORDERS", "3")])
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("no environment prefix"), "{err}");
    let limits = Loader::<Limits>::new()
        .yaml_str("limits.yaml", "max_orders: 3\n")
        .load()
        .unwrap();
    assert_eq!(limits.max_orders, 3);
    let limits = Loader::<Limits>::new()
        .env_prefix("LIM_")
        .env_vars([("LIM_MAX_ORDERS", "4")])
        .load()
        .unwrap();
    assert_eq!(limits.max_orders, 4);
}

#[derive(Debug, Deserialize, Settings)]
#[settings(env_prefix = "FLEET_")]
#[serde(deny_unknown_fields)]
struct Fleet {
    #[serde(default)]
    databases: Vec<Database>,
}

#[test]
fn a_required_field_inside_a_list_item_is_missing_at_its_index() {
    let err = Loader::<Fleet>::new()
        .yaml_str("fleet.yaml", "databases:\n  - url: a\n  - pool: 3\n")
        .load()
        .unwrap_err();
    assert_eq!(err.errors().len(), 1, "{err}");
    let e = &err.errors()[0];
    assert_eq!(e.kind(), &ErrorKind::Missing, "{err}");
    assert!(e.to_string().contains("databases.1.url"), "{e}");
    let fleet = Loader::<Fleet>::new()
        .yaml_str(
            "fleet.yaml",
            "databases:\n  - url: a\n  - url: b\n    pool: 3\n",
        )
        .load()
        .unwrap();
    assert_eq!(fleet.databases[1].pool, Some(3));
}

/// A list whose items are a mapping or, for short, the value of one field.
#[derive(Debug, Deserialize, Settings)]
#[settings(env_prefix = "FEEDS_")]
struct Feeds {
    #[serde(default)]
    mirrors: Vec<Mirror>,
}

#[derive(Debug, PartialEq, Deserialize, Settings)]
#[settings(shorthand = "url")]
#[serde(deny_unknown_fields)]
struct Mirror {
    url: String,
    #[serde(default)]
    weight: Option<u32>,
}

#[test]
fn a_shorthand_struct_takes_a_value_alone_or_a_mapping_from_every_source() {
    let yaml = "mirrors:\n  - wss://a.example\n  - url: wss://b.example\n    weight: 3\n";
    let feeds: Feeds = Loader::new().yaml_str("feeds.yaml", yaml).load().unwrap();
    let want = [
        Mirror {
            url: "wss://a.example".into(),
            weight: None,
        },
        Mirror {
            url: "wss://b.example".into(),
            weight: Some(3),
        },
    ];
    assert_eq!(feeds.mirrors, want);
    let feeds: Feeds = Loader::new()
        .env_vars([(
            "FEEDS_MIRRORS",
            r#"["wss://a.example", {"url": "wss://b.example", "weight": 3}]"#,
        )])
        .load()
        .unwrap();
    assert_eq!(feeds.mirrors, want);
    // A value of the wrong kind for the shorthand field is that field's error, at the item.
    let err = Loader::<Feeds>::new()
        .env_vars([("FEEDS_MIRRORS", r#"[["nested"]]"#)])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected a mapping (Mirror), found a list"),
        "{err}"
    );
    let err = Loader::<Feeds>::new()
        .yaml_str("feeds.yaml", "mirrors:\n  - url: wss://a\n    wieght: 1\n")
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `weight`"), "{err}");
}
