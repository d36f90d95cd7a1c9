//! The `websocket_session` knobs as operators write them: variables and YAML, each knob
//! falling back alone to the default entry's and then to the built-in value, validation
//! with the source named, and `proxy-check` showing what is in force.

use std::time::Duration;

use proxy_runtime::check::Report;
use proxy_runtime::{ConnectionProxies, ExchangeId, ProxySettings, SessionSettings};

#[test]
fn an_exchange_tunes_one_knob_and_keeps_the_default_s_others_without_a_route() {
    let settings = ProxySettings::loader()
        .env_vars([
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__PING_INTERVAL_MS",
                "5000",
            ),
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__MAX_LIFETIME_MS",
                "85800000",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__IDLE_AFTER_MS",
                "60000",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET_SESSION__MAX_LIFETIME_MS",
                "0",
            ),
        ])
        .load()
        .unwrap();
    let binance = settings.websocket_session("BINANCE");
    assert_eq!(binance.idle_after(), Some(Duration::from_secs(60)));
    assert_eq!(binance.ping_interval(), Some(Duration::from_secs(5)));
    assert_eq!(binance.max_lifetime(), Some(Duration::from_secs(85_800)));
    assert_eq!(
        binance.dead_after(),
        Some(Duration::from_secs(30)),
        "built in"
    );
    let okx = settings.websocket_session("okx");
    assert_eq!(
        okx.max_lifetime(),
        None,
        "0 turns the default's rotation off"
    );
    let other = settings.websocket_session("kraken");
    assert_eq!(other.idle_after(), None);
    assert_eq!(other.ping_interval(), Some(Duration::from_secs(5)));
    // No route was configured: tuning a knob repeats no URL.
    assert!(!settings.has_routes());
}

#[test]
fn yaml_gives_the_same_knobs() {
    let yaml = "proxy:\n  default:\n    websocket_session:\n      connects: 50\n      window_ms: 10000\n  exchanges:\n    binance:\n      websocket_session:\n        backoff_initial_ms: 100\n        backoff_max_ms: 5000\n        max_attempts: 10\n        stable_after_ms: 30000\n";
    let settings = ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .load()
        .unwrap();
    let binance = settings.websocket_session("binance");
    assert_eq!(
        binance.connect_budget(),
        Some((50, Duration::from_secs(10)))
    );
    assert_eq!(binance.backoff_initial(), Duration::from_millis(100));
    assert_eq!(binance.backoff_max(), Duration::from_secs(5));
    assert_eq!(binance.max_attempts(), Some(10));
    assert_eq!(binance.stable_after(), Duration::from_secs(30));
}

#[test]
fn contradicting_knobs_fail_the_load_naming_where_they_were_set() {
    let err = ProxySettings::loader()
        .env_vars([
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__DEAD_AFTER_MS",
                "5000",
            ),
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__PING_INTERVAL_MS",
                "10000",
            ),
        ])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dead_after_ms (5000) must be greater than ping_interval_ms (10000)"),
        "{err}"
    );
    assert!(
        err.contains("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__DEAD_AFTER_MS"),
        "{err}"
    );
}

#[test]
fn bad_values_and_misspelt_keys_are_errors_with_suggestions() {
    let err = ProxySettings::loader()
        .env_vars([
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__PING_INTERVAL_MS",
                "10s",
            ),
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__MAX_LIFETIME_MS",
                "99999999999999",
            ),
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__CONNECTS",
                "-1",
            ),
        ])
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("PING_INTERVAL_MS"), "{err}");
    assert!(err.contains("MAX_LIFETIME_MS"), "{err}");
    assert!(err.contains("CONNECTS"), "{err}");
    assert!(err.contains("30 days"), "{err}");
    let yaml = "proxy:\n  default:\n    websocket_session:\n      ping_interval: 1000\n";
    let err = ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("ping_interval_ms"), "a suggestion: {err}");
}

#[test]
fn settings_built_in_code_take_session_knobs_and_the_report_shows_them() {
    let binance = ExchangeId::new("binance").unwrap();
    let settings = ProxySettings::new(true)
        .with_default(ConnectionProxies::new().with_websocket_session(
            SessionSettings::new().with_connect_budget(20, Duration::from_secs(60)),
        ))
        .with_exchange(
            binance.clone(),
            ConnectionProxies::new().with_websocket_session(
                SessionSettings::new().with_ping_interval(Duration::from_secs(3)),
            ),
        );
    let session = settings.websocket_session("binance");
    assert_eq!(
        session.connect_budget(),
        Some((20, Duration::from_secs(60)))
    );
    assert_eq!(session.ping_interval(), Some(Duration::from_secs(3)));
    let report = Report::new(&settings, None, &[], "CRYPTOFEED_PROXY_");
    let shown = report
        .routes
        .iter()
        .find(|r| r.exchange.exchange() == Some(&binance))
        .unwrap();
    assert_eq!(shown.websocket_session.ping_interval_ms, 3000);
    assert_eq!(shown.websocket_session.connects, 20);
    assert_eq!(shown.websocket_session.window_ms, 60_000);
    assert_eq!(shown.websocket_session.idle_after_ms, 0);
    let table = proxy_runtime::check::render::report_table(&report);
    assert!(table.contains("websocket sessions"), "{table}");
    assert!(table.contains("ping 3000 dead 30000"), "{table}");
    assert!(table.contains("budget 20 per 60000"), "{table}");
}

#[test]
fn an_entry_s_own_knobs_are_read_back_unresolved() {
    let knobs = SessionSettings::new().with_idle_after(Duration::from_secs(9));
    let routes = ConnectionProxies::new().with_websocket_session(knobs);
    assert_eq!(routes.websocket_session(), Some(&knobs));
    assert_eq!(ConnectionProxies::new().websocket_session(), None);
    let exchange = proxy_runtime::ExchangeProxies::new().with_websocket_session(knobs);
    assert_eq!(exchange.websocket_session(), Some(&knobs));
    assert_eq!(
        proxy_runtime::ExchangeProxies::new().websocket_session(),
        None
    );
    let settings =
        ProxySettings::new(false).with_exchange(ExchangeId::new("kraken").unwrap(), exchange);
    assert_eq!(
        settings.websocket_session("kraken").idle_after(),
        Some(Duration::from_secs(9))
    );
    assert_eq!(settings.websocket_session("binance").idle_after(), None);
}

#[test]
fn a_websocket_dialer_carries_its_exchange_s_knobs_and_an_http_one_the_built_in_ones() {
    use proxy_runtime::{ConnectionKind, ProxyInjector};
    let settings = ProxySettings::loader()
        .env_vars([(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__PING_INTERVAL_MS",
            "1234",
        )])
        .load()
        .unwrap();
    let injector = ProxyInjector::new(settings);
    let ws = injector.dialer("binance", ConnectionKind::Websocket);
    assert_eq!(
        ws.session_settings().ping_interval(),
        Some(Duration::from_millis(1234))
    );
    let http = injector.dialer("binance", ConnectionKind::Http);
    assert_eq!(
        http.session_settings().ping_interval(),
        Some(Duration::from_secs(10))
    );
}
