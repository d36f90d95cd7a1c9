//! A canary password must not appear, nor its Basic-auth base64 form, in the `Debug` or
//! `Display` of any settings type, error or report.

mod common;

use common::{load_env, load_yaml};
use proxy_runtime::check::{Report, render};
use proxy_runtime::load::variables;
use proxy_runtime::schema::Scalar;
use proxy_runtime::{ConnectionKind, ProxySettings, ProxyUrl};

const CANARY: &str = "C4nary!Pa55";
/// base64("trader:C4nary!Pa55"), as Basic auth would send it.
const CANARY_B64: &str = "dHJhZGVyOkM0bmFyeSFQYTU1";
/// The percent-encoded form, as written in a URL (and as `Display` would re-encode it).
const CANARY_PCT: &str = "C4nary%21Pa55";

fn assert_clean(what: &str, shown: &str) {
    for secret in [CANARY, CANARY_B64, CANARY_PCT] {
        assert!(
            !shown.contains(secret),
            "{what} shows the password: {shown}"
        );
    }
}

fn valid_settings() -> ProxySettings {
    load_env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
            &format!("http://trader:{CANARY}@p:3128"),
        ),
        (
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
            &format!("socks5h://trader:{CANARY_PCT}@p:1080"),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
            &format!("https://trader:{CANARY}@[::1]:8443"),
        ),
    ])
    .unwrap()
}

#[test]
fn the_canary_is_really_loaded() {
    // Guards the other tests: the password is present, just never shown.
    let s = valid_settings();
    let p = s.get_proxy("binance", ConnectionKind::Http).unwrap();
    assert_eq!(
        p.url().endpoint().unwrap().password().unwrap().expose(),
        CANARY
    );
    let ws = s.get_proxy("x", ConnectionKind::Websocket).unwrap();
    assert_eq!(
        ws.url().endpoint().unwrap().password().unwrap().expose(),
        CANARY
    );
}

#[test]
fn settings_types_never_print_the_password() {
    let s = valid_settings();
    assert_clean("ProxySettings Debug", &format!("{s:?} {s:#?}"));
    assert_clean("ProxySettings Display", &s.to_string());
    for kind in ConnectionKind::ALL {
        let c = s.get_proxy("binance", kind).unwrap();
        assert_clean("ProxyConfig", &format!("{c} {c:?} {c:#?}"));
        let url = c.url();
        assert_clean("ProxyUrl", &format!("{url} {url:?}"));
        let e = url.endpoint().unwrap();
        assert_clean("ProxyEndpoint", &format!("{e} {e:?}"));
        assert_clean(
            "Password",
            &format!("{} {:?}", e.password().unwrap(), e.password().unwrap()),
        );
    }
    for c in s.exchanges().values() {
        assert_clean("ExchangeProxies", &format!("{c} {c:?} {c:#?}"));
    }
    if let Some(c) = s.default_routes() {
        assert_clean("ConnectionProxies", &format!("{c} {c:?} {c:#?}"));
    }
    let scalar = Scalar::Text(format!("socks5://trader:{CANARY}@p:1"));
    assert_clean("Scalar", &format!("{scalar} {scalar:?}"));
    let url: ProxyUrl = format!("http://trader:{CANARY}@p:1").parse().unwrap();
    assert_clean("ProxyUrl of a literal password", &format!("{url} {url:?}"));
    let url: ProxyUrl = "socks4a://trader@p:1".parse().unwrap();
    assert_clean("ProxyUrl without password", &url.to_string());
}

#[test]
fn load_errors_never_print_the_password() {
    let bad_urls = [
        format!("ftp://trader:{CANARY}@p:21"),
        format!("socks5://trader:{CANARY}@p:0"),
        format!("socks5://trader:{CANARY}@p"),
        format!("socks5://trader:{CANARY}@p@q:1"),
        format!("socks5://trader:{CANARY} @p:1"),
        format!("socks5://trader:{CANARY}\r@p:1"),
        format!("socks5://trader:{CANARY}/x@p:1"),
        format!("trader:{CANARY}@p:1"),
        format!("socks4://trader:{CANARY}@p:1"),
        format!("http://trader:{CANARY}%ZZ@p:1"),
        format!("socks5://trader:{CANARY}@p:1/path"),
        // No `@` after the password: a lost host, a doubled encoding, a "scheme" that is not one.
        format!("socks5://trader:{CANARY}"),
        format!("socks5://trader:{CANARY_PCT}%40proxy.example.com:1080"),
        format!("trader:{CANARY}@h:1/x://"),
        format!("trader:{CANARY}://h@p:1"),
        format!("socks5://trader:{CANARY}:1080"),
    ];
    for url in &bad_urls {
        let env = load_env(&[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url)]).unwrap_err();
        assert_clean("LoadError Display (env)", &env.to_string());
        assert_clean("LoadError Debug (env)", &format!("{env:?}"));
        let json = format!(r#"{{"http": {{"url": "{}"}}}}"#, url.escape_default());
        let env = load_env(&[("CRYPTOFEED_PROXY_DEFAULT", &json)]).unwrap_err();
        assert_clean("LoadError (JSON)", &format!("{env} {env:?}"));
        let yaml = format!(
            "proxy:\n  default:\n    http:\n      url: \"{}\"\n",
            url.escape_default()
        );
        let file = load_yaml(&yaml, &[]).unwrap_err();
        assert_clean("LoadError (YAML)", &format!("{file} {file:?}"));
        for e in file.errors() {
            assert_clean("SettingError", &format!("{e} {e:?} {}", e.message()));
        }
    }
    // A YAML syntax error next to a password.
    let yaml = format!(
        "proxy:\n  default:\n    http:\n      url: \"socks5://trader:{CANARY}@p:1\n  bad: [\n"
    );
    let e = load_yaml(&yaml, &[]).unwrap_err();
    assert_clean("YAML syntax error", &format!("{e} {e:?}"));
    // A URL pasted as a key, in YAML and in JSON.
    let yaml =
        format!("proxy:\n  default:\n    http:\n      \"socks5://trader:{CANARY}@h:1\": 1\n");
    let e = load_yaml(&yaml, &[]).unwrap_err();
    assert_clean("key in a YAML path", &format!("{e} {e:?}"));
    let json = format!(r#"{{"http": {{"socks5://trader:{CANARY}@h:1": 1}}}}"#);
    let e = load_env(&[("CRYPTOFEED_PROXY_DEFAULT", &json)]).unwrap_err();
    assert_clean("key in a JSON path", &e.to_string());
    // A URL put where a boolean belongs.
    let e = load_env(&[(
        "CRYPTOFEED_PROXY_ENABLED",
        &format!("socks5://trader:{CANARY}@p:1"),
    )])
    .unwrap_err();
    assert_clean("wrong-field error", &format!("{e} {e:?}"));
}

#[test]
fn reports_never_print_the_password() {
    let s = valid_settings();
    let report = Report::new(&s, None, &[], "CRYPTOFEED_PROXY_");
    assert_clean("report table", &render::report_table(&report));
    assert_clean("report JSON", &render::json(&report));
    assert_clean("report Debug", &format!("{report:?}"));
    let loader = ProxySettings::loader()
        .yaml_str(
            "inline.yaml",
            format!("proxy:\n  default:\n    http:\n      url: http://trader:{CANARY}@p:1\n"),
        )
        .env_vars([(
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
            format!("socks5h://trader:{CANARY}@p:1"),
        )]);
    assert!(loader.load().is_ok());
    assert_clean("Loader Debug", &format!("{loader:?} {loader:#?}"));
    let vars = variables::<ProxySettings>("CRYPTOFEED_PROXY_");
    assert_clean("variables", &format!("{vars:?}"));
}

#[test]
fn a_loader_shows_its_sources_not_their_contents() {
    let url = format!("socks5://trader:{CANARY_PCT}@h:1080");
    let yaml = format!("proxy:\n  default:\n    http:\n      url: {url}\n");
    let loader = ProxySettings::loader()
        .env_prefix("APP_PROXY_")
        .yaml_str("config.yaml", yaml)
        .env_vars([("APP_PROXY_DEFAULT__WEBSOCKET__URL", url.as_str())]);
    let shown = format!("{loader:?}");
    assert_clean("Loader", &shown);
    assert_eq!(
        shown,
        r#"Loader { env_prefix: Some("APP_PROXY_"), yaml: Some("config.yaml"), env: "1 variables" }"#
    );
    let from_file = ProxySettings::loader()
        .yaml_file("/etc/app/proxy.yaml")
        .process_env();
    assert_eq!(
        format!("{from_file:?}"),
        r#"Loader { env_prefix: None, yaml: Some("/etc/app/proxy.yaml"), env: "process" }"#
    );
    assert_eq!(
        format!("{:?}", ProxySettings::loader()),
        r#"Loader { env_prefix: None, yaml: None, env: "none" }"#
    );
}
