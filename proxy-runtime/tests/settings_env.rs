//! Loading from environment variables (injected as pairs).

mod common;

use common::{errors, load_env, one_error};
use proxy_runtime::load::ErrorKind;
use proxy_runtime::{ConnectionKind::*, ProxyScheme};

fn url_of(
    s: &proxy_runtime::ProxySettings,
    ex: &str,
    kind: proxy_runtime::ConnectionKind,
) -> String {
    s.get_proxy(ex, kind)
        .map(|c| c.url().to_string())
        .unwrap_or_else(|| "direct".into())
}

#[test]
fn seed_environment_example() {
    let s = load_env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5://proxy:1080"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "30"),
        (
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
            "socks5://proxy:1081",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
            "http://binance-proxy:8080",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
            "socks5://binance-ws:1081",
        ),
    ])
    .unwrap();
    assert!(s.enabled());
    assert_eq!(url_of(&s, "binance", Http), "http://binance-proxy:8080");
    assert_eq!(url_of(&s, "binance", Websocket), "socks5://binance-ws:1081");
    assert_eq!(url_of(&s, "coinbase", Http), "socks5://proxy:1080");
    assert_eq!(url_of(&s, "coinbase", Websocket), "socks5://proxy:1081");
    let http = s.get_proxy("coinbase", Http).unwrap();
    assert_eq!(http.timeout().get(), 30);
    assert_eq!(http.url().endpoint().unwrap().scheme(), ProxyScheme::Socks5);
}

#[test]
fn underscores_in_exchange_ids() {
    let s = load_env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "1"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE_FUTURES__HTTP__URL",
            "socks5h://f:1",
        ),
    ])
    .unwrap();
    let ids: Vec<&str> = s.exchanges().keys().map(|k| k.as_str()).collect();
    assert_eq!(ids, ["binance_futures"]);
    assert_eq!(url_of(&s, "binance_futures", Http), "socks5h://f:1");
    assert_eq!(url_of(&s, "binance", Http), "direct");
}

#[test]
fn names_are_case_insensitive() {
    let s = load_env(&[
        ("cryptofeed_proxy_enabled", "TRUE"),
        (
            "Cryptofeed_Proxy_Exchanges__Kraken__Http__Url",
            "http://k:3128",
        ),
        (
            "CRYPTOFEED_PROXY_exchanges__KRAKEN__http__TIMEOUT_seconds",
            "7",
        ),
    ])
    .unwrap();
    let c = s.get_proxy("kraken", Http).unwrap();
    assert_eq!(c.url().to_string(), "http://k:3128");
    assert_eq!(c.timeout().get(), 7);
}

#[test]
fn bool_spellings() {
    for (text, expected) in [
        ("true", true),
        ("True", true),
        ("1", true),
        ("yes", true),
        ("YES", true),
        ("on", true),
        ("false", false),
        ("0", false),
        ("no", false),
        ("Off", false),
    ] {
        let s = load_env(&[("CRYPTOFEED_PROXY_ENABLED", text)]).unwrap();
        assert_eq!(s.enabled(), expected, "{text}");
    }
    let e = one_error(load_env(&[("CRYPTOFEED_PROXY_ENABLED", "enabled")]));
    assert!(
        e.contains("`CRYPTOFEED_PROXY_ENABLED` (environment)"),
        "{e}"
    );
    assert!(e.contains("boolean"), "{e}");
}

#[test]
fn default_as_json_and_leaf_overrides_it() {
    let json = r#"{"http": {"url": "socks5h://json-proxy:1080", "timeout_seconds": 12},
                   "websocket": {"url": "socks5h://json-ws:1081"}}"#;
    let s = load_env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        ("CRYPTOFEED_PROXY_DEFAULT", json),
        (
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
            "socks5h://leaf-ws:1081",
        ),
    ])
    .unwrap();
    let http = s.get_proxy("any", Http).unwrap();
    assert_eq!(http.url().to_string(), "socks5h://json-proxy:1080");
    assert_eq!(http.timeout().get(), 12);
    assert_eq!(url_of(&s, "any", Websocket), "socks5h://leaf-ws:1081");
}

#[test]
fn exchanges_as_json() {
    let s = load_env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES",
            r#"{"Binance": {"http": {"url": "http://b:8080"}}, "okx": {"websocket": {"url": "direct://"}}}"#,
        ),
    ])
    .unwrap();
    assert_eq!(url_of(&s, "binance", Http), "http://b:8080");
    assert!(s.route("okx", Websocket).unwrap().url().is_direct());
}

#[test]
fn bad_json_is_an_error_naming_the_variable_without_the_value() {
    let e = one_error(load_env(&[(
        "CRYPTOFEED_PROXY_DEFAULT",
        r#"{"http": {"url": "socks5://u:canary@p:1"}"#,
    )]));
    assert!(
        e.contains("`CRYPTOFEED_PROXY_DEFAULT` (environment)"),
        "{e}"
    );
    assert!(e.contains("JSON"), "{e}");
    assert!(!e.contains("canary"), "{e}");
    // What serde_json found, by kind, without the text it quotes.
    for (json, reason) in [
        (
            r#"{"http": {"url": "socks5://u:canary@p:1"}"#,
            "line 1 column 41: unexpected end of input",
        ),
        (r#"{"http": canary}"#, "line 1 column 10: syntax error"),
    ] {
        let err = load_env(&[("CRYPTOFEED_PROXY_DEFAULT", json)]).unwrap_err();
        let message = err.errors()[0].message();
        assert!(message.starts_with("expected JSON for "), "{message}");
        assert!(message.ends_with(&format!("({reason})")), "{message}");
        assert!(!message.contains("canary"), "{message}");
    }

    let e = one_error(load_env(&[(
        "CRYPTOFEED_PROXY_DEFAULT",
        r#"{"http": {"url": "socks5://p:1", "timeout": 3}}"#,
    )]));
    assert!(e.contains("JSON at `http.timeout`"), "{e}");
    assert!(e.contains("did you mean `timeout_seconds`"), "{e}");
}

#[test]
fn json_null_and_duplicate_keys_are_errors() {
    for json in [
        "null",
        r#"{"http": null}"#,
        r#"{"http": {"url": "http://a:1"}, "http": {"url": "http://b:1"}}"#,
    ] {
        let e = one_error(load_env(&[("CRYPTOFEED_PROXY_DEFAULT", json)]));
        assert!(
            e.contains("null is not accepted") || e.contains("more than once"),
            "{json}: {e}"
        );
    }
    let e = one_error(load_env(&[("CRYPTOFEED_PROXY_DEFAULT__HTTP", "null")]));
    assert!(
        e.contains("a variable cannot unset what the file sets"),
        "{e}"
    );
}

#[test]
fn an_empty_name_part_gets_no_misleading_suggestion() {
    let e = one_error(load_env(&[(
        "CRYPTOFEED_PROXY_DEFAULT__HTTP____URL",
        "http://p:1",
    )]));
    assert!(!e.contains("did you mean"), "{e}");
    assert!(
        e.contains("valid names here: URL, URLS, STRATEGY, TIMEOUT_SECONDS"),
        "{e}"
    );
}

#[test]
fn typos_are_rejected_with_a_suggestion() {
    let cases = [
        ("CRYPTOFEED_PROXY_ENABLE", "CRYPTOFEED_PROXY_ENABLED"),
        (
            "CRYPTOFEED_PROXY_DEFUALT__HTTP__URL",
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
        ),
        (
            "CRYPTOFEED_PROXY_DEFAULT__HTTPS__URL",
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
        ),
        (
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URI",
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT",
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGE__BINANCE__HTTP__URL",
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
        ),
    ];
    for (name, suggestion) in cases {
        let result = load_env(&[(name, "socks5://p:1")]);
        let err = result.unwrap_err();
        let first = &err.errors()[0];
        assert!(
            matches!(first.kind(), ErrorKind::UnknownKey { .. }),
            "{name}: {first}"
        );
        let shown = first.to_string();
        assert!(
            shown.contains(&format!("`{name}` (environment)")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("did you mean `{suggestion}`?")),
            "{name}: {shown}"
        );
    }
}

#[test]
fn a_name_past_a_leaf_is_rejected() {
    let e = one_error(load_env(&[("CRYPTOFEED_PROXY_ENABLED__X", "true")]));
    assert!(e.contains("no such setting"), "{e}");
}

#[test]
fn variables_outside_the_prefix_are_ignored() {
    let s = load_env(&[
        ("CRYPTOFEED_OTHER", "x"),
        ("PATH", "/bin"),
        ("CRYPTOFEED_PROXYX", "1"),
    ])
    .unwrap();
    assert!(!s.enabled());
}

#[test]
fn empty_values_are_errors_not_unset() {
    for name in [
        "CRYPTOFEED_PROXY_ENABLED",
        "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
        "CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS",
        "CRYPTOFEED_PROXY_DEFAULT",
    ] {
        // The URL is given, so that only the empty value is wrong.
        let url = ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://p:1");
        let vars = if name == url.0 {
            vec![(name, "")]
        } else {
            vec![(name, ""), url]
        };
        let e = load_env(&vars).unwrap_err();
        assert_eq!(e.errors().len(), 1, "{e}");
        assert_eq!(e.errors()[0].kind(), &ErrorKind::Empty, "{e}");
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn same_variable_in_two_spellings_is_an_error() {
    let e = one_error(load_env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        ("cryptofeed_proxy_enabled", "false"),
    ]));
    assert!(e.contains("more than once"), "{e}");
}

#[test]
fn timeout_without_url_is_a_missing_value() {
    let e = one_error(load_env(&[(
        "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__TIMEOUT_SECONDS",
        "5",
    )]));
    assert!(e.contains("missing required `url`"), "{e}");
    assert!(
        e.contains("CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__URL"),
        "{e}"
    );
    assert!(e.contains("proxy.exchanges.okx.http.url"), "{e}");
}

#[test]
fn another_prefix() {
    let s = proxy_runtime::ProxySettings::loader()
        .env_prefix("MYBOT_PROXY_")
        .env_vars([
            ("MYBOT_PROXY_ENABLED", "yes"),
            ("CRYPTOFEED_PROXY_ENABLED", "no"),
        ])
        .load()
        .unwrap();
    assert!(s.enabled());
}

#[test]
fn all_errors_of_one_load_are_reported_together() {
    let all = errors(load_env(&[
        ("CRYPTOFEED_PROXY_ENABLE", "true"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "ftp://p:21"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "0"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE-FUTURES__HTTP__URL",
            "http://p:1",
        ),
        ("CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__WEBSOCKET__URL", ""),
    ]));
    assert_eq!(all.len(), 5, "{all:#?}");
}

#[test]
fn a_rejected_value_is_not_also_reported_missing() {
    for url in ["", "ftp://p:1"] {
        let e = one_error(load_env(&[
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "5"),
        ]));
        assert!(
            e.contains("`CRYPTOFEED_PROXY_DEFAULT__HTTP__URL` (environment)"),
            "{e}"
        );
    }
}

#[test]
fn one_name_in_two_letter_cases_is_an_error_naming_both() {
    // The duplicate sorted first among the names, then after another: the error names
    // both spellings wherever they fall.
    for other in ["CRYPTOFEED_PROXY_ENABLED", "CRYPTOFEED_PROXY_AAA_UNKNOWN"] {
        let result = load_env(&[
            (other, "true"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5://a:1080"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__url", "socks5://b:1080"),
        ]);
        let all = errors(result);
        let dup = all
            .iter()
            .find(|e| e.contains("different letter case"))
            .unwrap_or_else(|| panic!("{all:#?}"));
        assert!(
            dup.contains(
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL, CRYPTOFEED_PROXY_DEFAULT__HTTP__url"
            ),
            "{dup}"
        );
    }
}
