//! Loading from YAML, and YAML merged with variables.

mod common;

use common::{errors, load_yaml, one_error};
use proxy_runtime::ConnectionKind::*;
use proxy_runtime::ProxySettings;
use proxy_runtime::load::{ErrorKind, Origin};

/// The YAML example of the original Python specification (cryptofeed's proxy system),
/// application keys included.
const SEED_YAML: &str = r#"
# config.yaml - Simple proxy configuration
proxy:
  enabled: true

  default:
    http:
      url: "socks5://proxy.company.com:1080"
      timeout_seconds: 30
    websocket:
      url: "socks5://proxy.company.com:1081"
      timeout_seconds: 30

  exchanges:
    binance:
      http:
        url: "http://binance-proxy.company.com:8080"
        timeout_seconds: 15
      websocket:
        url: "socks5://binance-ws.company.com:1081"

    coinbase:
      # Only HTTP proxy for Coinbase
      http:
        url: "socks5://coinbase-proxy:1080"
      # websocket: null (uses direct connection)

# Your existing exchange config - NO CHANGES
exchanges:
  binance:
    symbols: ["BTC-USDT"]
    channels: [TRADES]
"#;

fn url_of(s: &ProxySettings, ex: &str, kind: proxy_runtime::ConnectionKind) -> String {
    s.get_proxy(ex, kind)
        .map(|c| c.url().to_string())
        .unwrap_or_else(|| "direct".into())
}

#[test]
fn seed_yaml_loads_and_ignores_application_keys() {
    let s = load_yaml(SEED_YAML, &[]).unwrap();
    assert!(s.enabled());
    let b = s.get_proxy("binance", Http).unwrap();
    assert_eq!(b.url().to_string(), "http://binance-proxy.company.com:8080");
    assert_eq!(b.timeout().get(), 15);
    let bw = s.get_proxy("binance", Websocket).unwrap();
    assert_eq!(bw.url().to_string(), "socks5://binance-ws.company.com:1081");
    assert_eq!(bw.timeout().get(), 30);
    assert_eq!(url_of(&s, "coinbase", Http), "socks5://coinbase-proxy:1080");
    // The original specification's comment says "direct"; the resolution rules (and its own code) fall back
    // to the default. `direct://` is how to get a direct connection.
    assert_eq!(
        url_of(&s, "coinbase", Websocket),
        "socks5://proxy.company.com:1081"
    );
    assert_eq!(
        url_of(&s, "kraken", Http),
        "socks5://proxy.company.com:1080"
    );
}

#[test]
fn file_from_the_config_variable_and_from_disk() {
    let dir = std::env::temp_dir().join(format!("proxy-runtime-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, SEED_YAML).unwrap();
    let s = ProxySettings::loader()
        .env_vars([("CRYPTOFEED_CONFIG", path.to_str().unwrap())])
        .load()
        .unwrap();
    assert!(s.enabled());
    let s = ProxySettings::loader().yaml_file(&path).load().unwrap();
    assert_eq!(s.exchanges().len(), 2);

    let missing = dir.join("missing.yaml");
    let e = ProxySettings::loader()
        .yaml_file(&missing)
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.yaml") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_keys_are_rejected_with_path_line_and_suggestion() {
    let yaml = "app: {}\nproxy:\n  enabled: true\n  default:\n    http:\n      url: socks5h://p:1\n      timeout: 5\n  exchange:\n    binance: {}\n";
    let err = load_yaml(yaml, &[]).unwrap_err();
    let all: Vec<String> = err.errors().iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].starts_with("config.yaml:7: `proxy.default.http.timeout`: unknown key; did you mean `timeout_seconds`?"),
        "{}",
        all[0]
    );
    assert!(
        all[1]
            .starts_with("config.yaml:8: `proxy.exchange`: unknown key; did you mean `exchanges`?"),
        "{}",
        all[1]
    );
    match err.errors()[1].origin() {
        Origin::Yaml { file, path, line } => {
            assert_eq!(
                (file.as_str(), path.keys(), *line),
                (
                    "config.yaml",
                    &["proxy".to_owned(), "exchange".to_owned()][..],
                    Some(8)
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        err.errors()[1].kind(),
        ErrorKind::UnknownKey { suggestion: Some(s) } if s == "exchanges"
    ));
}

#[test]
fn bad_values_name_path_and_line() {
    let yaml = "proxy:\n  enabled: maybe\n  default:\n    websocket:\n      url: ftp://u:canary@p:21\n      timeout_seconds: 301\n";
    let all = errors(load_yaml(yaml, &[]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].starts_with("config.yaml:2: `proxy.enabled`"),
        "{}",
        all[0]
    );
    assert!(
        all[1].starts_with("config.yaml:5: `proxy.default.websocket.url`"),
        "{}",
        all[1]
    );
    assert!(
        all[1].contains("Unsupported proxy scheme: ftp"),
        "{}",
        all[1]
    );
    assert!(all[1].contains("ftp://u:***@p:21"), "{}", all[1]);
    assert!(
        all[2].starts_with("config.yaml:6: `proxy.default.websocket.timeout_seconds`"),
        "{}",
        all[2]
    );
    assert!(all.iter().all(|e| !e.contains("canary")));
}

#[test]
fn env_overrides_yaml_leaf_by_leaf() {
    let yaml = "proxy:\n  enabled: false\n  exchanges:\n    binance:\n      http:\n        url: http://file:8080\n        timeout_seconds: 15\n      websocket:\n        url: socks5h://file-ws:1081\n";
    let s = load_yaml(
        yaml,
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                "socks5h://env:1080",
            ),
        ],
    )
    .unwrap();
    assert!(s.enabled());
    let http = s.get_proxy("binance", Http).unwrap();
    assert_eq!(http.url().to_string(), "socks5h://env:1080");
    assert_eq!(http.timeout().get(), 15, "timeout kept from the file");
    assert_eq!(url_of(&s, "binance", Websocket), "socks5h://file-ws:1081");
}

#[test]
fn exchange_keys_are_case_insensitive_and_merge_with_env() {
    let yaml = "proxy:\n  enabled: true\n  exchanges:\n    Binance:\n      http:\n        url: http://file:8080\n";
    let s = load_yaml(
        yaml,
        &[(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
            "9",
        )],
    )
    .unwrap();
    let http = s.get_proxy("binance", Http).unwrap();
    assert_eq!(http.url().to_string(), "http://file:8080");
    assert_eq!(http.timeout().get(), 9);

    let dup = "proxy:\n  exchanges:\n    binance: {}\n    BINANCE: {}\n";
    let e = one_error(load_yaml(dup, &[]));
    assert!(
        e.contains("config.yaml:4: `proxy.exchanges.BINANCE`") && e.contains("more than once"),
        "{e}"
    );
}

#[test]
fn invalid_exchange_ids_in_yaml() {
    let yaml = "proxy:\n  exchanges:\n    binance-futures: {}\n    a__b: {}\n    _x: {}\n";
    let all = errors(load_yaml(yaml, &[]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].contains("config.yaml:3") && all[0].contains("invalid key `binance-futures`"),
        "{}",
        all[0]
    );
}

#[test]
fn yaml_shapes_and_syntax() {
    // No section, or an empty one: defaults.
    assert!(!load_yaml("other: 1\n", &[]).unwrap().enabled());
    assert!(!load_yaml("proxy:\n", &[]).unwrap().enabled());
    assert!(!load_yaml("", &[]).unwrap().enabled());
    // A key without a value where a value is needed.
    let e = one_error(load_yaml("proxy:\n  enabled:\n", &[]));
    assert!(
        e.contains("`proxy.enabled`") && e.contains("empty value"),
        "{e}"
    );
    let e = one_error(load_yaml(
        "proxy:\n  default:\n    http:\n      url: ''\n",
        &[],
    ));
    assert!(e.contains("empty value"), "{e}");
    // Wrong shapes.
    let e = one_error(load_yaml("proxy:\n  default: socks5://p:1\n", &[]));
    assert!(e.contains("expected a mapping"), "{e}");
    let e = one_error(load_yaml("proxy:\n  enabled: [true]\n", &[]));
    assert!(e.contains("found a mapping or list"), "{e}");
    let e = one_error(load_yaml("- a\n- b\n", &[]));
    assert!(e.contains("`proxy:` key"), "{e}");
    // Syntax errors carry the line.
    let e = one_error(load_yaml("proxy:\n  enabled: true\n   bad: [\n", &[]));
    assert!(e.starts_with("config.yaml:"), "{e}");
    assert!(e.contains("invalid YAML"), "{e}");
    // YAML duplicate keys, with the line of the second.
    let e = one_error(load_yaml(
        "proxy:\n  enabled: true\n  enabled: false\n",
        &[],
    ));
    assert!(
        e.starts_with("config.yaml:3: `proxy.enabled`: `enabled` is given more than once"),
        "{e}"
    );
}

#[test]
fn merge_keys_and_anchors_are_applied() {
    let yaml = "common: &proxy\n  enabled: true\n  default:\n    http: {url: 'socks5h://p:1'}\n<<: {proxy: *proxy}\n";
    let s = load_yaml(yaml, &[]).unwrap();
    assert!(s.enabled());
    let yaml = "base: &route {url: 'socks5h://p:1', timeout_seconds: 7}\nproxy:\n  enabled: true\n  exchanges:\n    okx:\n      http:\n        <<: *route\n        timeout_seconds: 9\n";
    let s = load_yaml(yaml, &[]).unwrap();
    let http = s.get_proxy("okx", Http).unwrap();
    assert_eq!(
        (http.url().to_string().as_str(), http.timeout().get()),
        ("socks5h://p:1", 9)
    );
}

#[test]
fn yaml_scalars_are_coerced_like_variables() {
    let s = load_yaml(
        "proxy:\n  enabled: 'yes'\n  default:\n    http:\n      url: socks5h://p:1\n      timeout_seconds: '45'\n",
        &[],
    )
    .unwrap();
    assert!(s.enabled());
    assert_eq!(s.get_proxy("x", Http).unwrap().timeout().get(), 45);
    let e = one_error(load_yaml(
        "proxy:\n  default:\n    http:\n      url: socks5h://p:1\n      timeout_seconds: 2.5\n",
        &[],
    ));
    assert!(e.contains("from 1 to 300"), "{e}");
}

#[test]
fn every_given_value_has_its_origin_and_defaults_have_none() {
    let yaml = "proxy:\n  enabled: true\n  default:\n    http:\n      url: socks5h://a:1080\n";
    let (_, origins) = proxy_runtime::ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .env_vars([("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "9")])
        .load_with_origins()
        .unwrap();
    let all: Vec<(String, String)> = origins
        .iter()
        .map(|(path, origin)| (path.dotted(), origin.to_string()))
        .collect();
    assert_eq!(
        all,
        [
            (
                "default.http.timeout_seconds".to_owned(),
                "`CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS` (environment)".to_owned()
            ),
            (
                "default.http.url".to_owned(),
                "config.yaml:5: `proxy.default.http.url`".to_owned()
            ),
            (
                "enabled".to_owned(),
                "config.yaml:2: `proxy.enabled`".to_owned()
            ),
        ]
    );
    assert_eq!(
        origins
            .get(&["enabled"])
            .map(ToString::to_string)
            .as_deref(),
        Some("config.yaml:2: `proxy.enabled`")
    );
}

#[test]
fn the_loader_names_the_file_it_reads() {
    use std::path::PathBuf;
    let named = |vars: &[(&str, &str)]| ProxySettings::loader().env_vars(vars.to_vec()).file();
    assert_eq!(
        ProxySettings::loader()
            .yaml_file("/etc/feed/settings.yaml")
            .file(),
        Some(PathBuf::from("/etc/feed/settings.yaml"))
    );
    assert_eq!(
        named(&[("CRYPTOFEED_CONFIG", "/etc/feed/from-env.yaml")]),
        Some(PathBuf::from("/etc/feed/from-env.yaml"))
    );
    assert_eq!(
        named(&[("cryptofeed_config", "/etc/feed/lower.yaml")]),
        Some(PathBuf::from("/etc/feed/lower.yaml")),
        "matched as the load matches it"
    );
    assert_eq!(
        named(&[("CRYPTOFEED_CONFIG", "")]),
        None,
        "empty names none"
    );
    assert_eq!(named(&[]), None);
    let text = ProxySettings::loader()
        .yaml_str("inline.yaml", "proxy: {}")
        .env_vars([("CRYPTOFEED_CONFIG", "/etc/feed/ignored.yaml")]);
    assert_eq!(text.file(), None, "text given is no file");
    // The file given wins over the variable, as in the load.
    let both = ProxySettings::loader()
        .env_vars([("CRYPTOFEED_CONFIG", "/etc/feed/from-env.yaml")])
        .yaml_file("/etc/feed/given.yaml");
    assert_eq!(both.file(), Some(PathBuf::from("/etc/feed/given.yaml")));
}
