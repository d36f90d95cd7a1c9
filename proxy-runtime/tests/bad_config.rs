//! Every bad-configuration case (unsupported or missing scheme, host or port, control
//! characters, percent escapes, SOCKS credential limits, timeouts, unknown keys, empty
//! values, exchange ids a variable cannot name): each is a load-time error that names
//! the variable or YAML path, and none shows a password.

mod common;

use common::{errors, load_env, load_yaml, one_error};
use proxy_runtime::ConnectionKind::Http;

const VAR: &str = "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL";

fn url_error(url: &str) -> String {
    let e = one_error(load_env(&[(VAR, url)]));
    assert!(e.starts_with(&format!("`{VAR}` (environment): ")), "{e}");
    e
}

#[test]
fn unsupported_schemes() {
    assert!(url_error("ftp://p:21").contains("Unsupported proxy scheme: ftp"));
    assert!(url_error("socks6://p:1080").contains("Unsupported proxy scheme: socks6"));
    assert!(url_error("ws://p:80").contains("Unsupported proxy scheme: ws"));
}

#[test]
fn missing_scheme_host_or_port() {
    assert!(url_error("proxy:1080").contains("must include scheme"));
    assert!(url_error("invalid-url").contains("must include scheme"));
    assert!(url_error("socks5://:1080").contains("must include hostname"));
    assert!(url_error("socks5://u:p@:1080").contains("must include hostname"));
    assert!(url_error("socks5://proxy").contains("must include port"));
    assert!(url_error("http://proxy/").contains("must include port"));
}

#[test]
fn bad_ports() {
    for port in ["0", "99999", "65536", "http", "-1", "1e3", "08080x"] {
        let e = url_error(&format!("socks5://proxy:{port}"));
        assert!(
            e.contains("port must be a number from 1 to 65535"),
            "{port}: {e}"
        );
    }
}

#[test]
fn control_characters_and_inner_whitespace_are_errors() {
    for (url, what) in [
        ("socks5://proxy:1080\r", "carriage return"),
        ("socks5://proxy:1080\n", "line feed"),
        ("socks5://pro\txy:1080", "tab"),
        ("socks5://proxy:1080\0", "NUL"),
        ("socks5://pro xy:1080", "space"),
        ("socks5://proxy:10\u{7f}80", "U+007F"),
    ] {
        let e = url_error(url);
        assert!(e.contains(what), "{url:?}: {e}");
        assert!(e.contains("never stripped"), "{e}");
    }
}

#[test]
fn percent_encoded_credentials_are_decoded_exactly_once() {
    for (encoded, decoded) in [
        ("p%40ss%3Aw0rd", "p@ss:w0rd"),
        ("a%2Fb", "a/b"),
        ("100%25", "100%"),
        ("%2540", "%40"),
    ] {
        let s = load_env(&[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (VAR, &format!("http://user:{encoded}@proxy:3128")),
        ])
        .unwrap();
        let endpoint = s
            .get_proxy("x", Http)
            .unwrap()
            .url()
            .endpoint()
            .unwrap()
            .clone();
        assert_eq!(endpoint.password().unwrap().expose(), decoded);
        assert_eq!(endpoint.username(), Some("user"));
    }
}

#[test]
fn invalid_escapes_and_ambiguous_at_are_errors() {
    assert!(
        url_error("http://user:%ZZ@proxy:3128").contains("invalid percent escape in the password")
    );
    assert!(
        url_error("http://us%4@proxy:3128").contains("invalid percent escape in the user name")
    );
    assert!(url_error("http://user:p@ss@proxy:3128").contains("more than one `@`"));
    assert!(url_error("http://user:%FF@proxy:3128").contains("not UTF-8"));
}

#[test]
fn socks5_credential_limits() {
    let long = "x".repeat(256);
    assert!(
        url_error(&format!("socks5://{long}:p@proxy:1080"))
            .contains("user name is longer than 255 bytes")
    );
    assert!(
        url_error(&format!("socks5h://u:{long}@proxy:1080"))
            .contains("password is longer than 255 bytes")
    );
    assert!(url_error("socks5://:secret@proxy:1080").contains("user name is empty"));
    // Bytes, not characters: 128 two-byte characters are 256 bytes.
    let wide = "é".repeat(128);
    assert!(url_error(&format!("socks5://u:{wide}@proxy:1080")).contains("255 bytes"));
    let ok = "x".repeat(255);
    assert!(load_env(&[(VAR, &format!("socks5://{ok}:{ok}@proxy:1080"))]).is_ok());
    assert!(url_error("socks4://user:pw@proxy:1080").contains("no password"));
    // SOCKS5 sends user and password together; a password of 0 bytes cannot be sent.
    assert!(url_error("socks5://user@proxy:1080").contains("password of 1 to 255 bytes"));
    assert!(url_error("socks5h://user:@proxy:1080").contains("password of 1 to 255 bytes"));
    assert!(url_error("http://@proxy:3128").contains("user name is empty"));
    assert!(url_error("http://:pw@proxy:3128").contains("user name is empty"));
}

#[test]
fn timeouts_out_of_range_or_not_integers() {
    for t in [
        "0",
        "301",
        "-5",
        "1.5",
        "thirty",
        "30s",
        "99999999999999999999999999",
    ] {
        let e = one_error(load_env(&[
            (VAR, "socks5h://p:1"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", t),
        ]));
        assert!(
            e.contains("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS"),
            "{e}"
        );
        assert!(e.contains("from 1 to 300"), "{t}: {e}");
    }
    for t in ["1", "300"] {
        assert!(
            load_env(&[
                (VAR, "socks5h://p:1"),
                ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", t)
            ])
            .is_ok()
        );
    }
}

#[test]
fn unknown_keys_at_every_depth() {
    let yaml = "proxy:\n  enabeld: true\n  default:\n    htp: {}\n    http:\n      url: socks5h://p:1\n      extra: 1\n  exchanges:\n    binance:\n      rest: {}\n";
    let all = errors(load_yaml(yaml, &[]));
    assert_eq!(all.len(), 4, "{all:#?}");
    for (e, path) in all.iter().zip([
        "proxy.enabeld",
        "proxy.default.htp",
        "proxy.default.http.extra",
        "proxy.exchanges.binance.rest",
    ]) {
        assert!(e.contains(&format!("`{path}`: unknown key")), "{e}");
    }
}

#[test]
fn exchange_ids_a_variable_cannot_name() {
    for id in [
        "binance-futures",
        "a__b",
        "_a",
        "a_",
        "bin ance",
        "bìnance",
        "",
    ] {
        let yaml =
            format!("proxy:\n  exchanges:\n    \"{id}\":\n      http:\n        url: http://p:1\n");
        let e = one_error(load_yaml(&yaml, &[]));
        assert!(e.contains("invalid key"), "{id:?}: {e}");
    }
    let e = one_error(load_env(&[(
        "CRYPTOFEED_PROXY_EXCHANGES__BINANCE-FUTURES__HTTP__URL",
        "http://p:1",
    )]));
    assert!(e.contains("invalid key `binance-futures`"), "{e}");
}

#[test]
fn every_problem_of_both_sources_is_reported_in_one_load() {
    let yaml = "proxy:\n  enabled: perhaps\n  default:\n    http:\n      url: socks5://p:0\n";
    let all = errors(load_yaml(
        yaml,
        &[
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET__URL",
                "socks5://p:1\n",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET__TIMEOUT_SECONDS",
                "301",
            ),
            ("CRYPTOFEED_PROXY_DEFAULTS", "{}"),
        ],
    ));
    assert_eq!(all.len(), 5, "{all:#?}");
    assert!(all.iter().any(|e| e.starts_with("config.yaml:2:")));
    assert!(all.iter().any(|e| e.starts_with("config.yaml:5:")));
    assert!(
        all.iter()
            .any(|e| e.contains("did you mean `CRYPTOFEED_PROXY_DEFAULT`"))
    );
}
