//! The `http_budget` knobs as operators write them: variables and YAML, each knob falling
//! back alone to the default entry's, validation with the source named (a header name
//! that is not one, a window of 0 under a weight), and settings built in code.

use std::time::Duration;

use proxy_runtime::{
    ConnectionProxies, ExchangeId, ExchangeProxies, HttpBudget, ProxySettings, WeightHeader,
};

#[test]
fn an_exchange_sets_its_weight_and_keeps_the_default_s_header_and_window() {
    let yaml = "proxy:\n  default:\n    http_budget:\n      window_ms: 10000\n      used_weight_header: X-MBX-USED-WEIGHT-1M\n  exchanges:\n    binance:\n      http_budget:\n        weight: 5400\n    okx:\n      http_budget:\n        weight: 20\n        window_ms: 2000\n        used_weight_header: x-okx-used\n";
    let settings = ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .env_vars([(
            "CRYPTOFEED_PROXY_EXCHANGES__BYBIT__HTTP_BUDGET__WEIGHT",
            "600",
        )])
        .load()
        .unwrap();
    let binance = settings.http_budget("Binance");
    assert_eq!(
        binance.weight_budget(),
        Some((5400, Duration::from_secs(10)))
    );
    let header = |b: &HttpBudget| b.used_weight_header().map(ToString::to_string);
    assert_eq!(header(&binance).as_deref(), Some("x-mbx-used-weight-1m"));
    let okx = settings.http_budget("okx");
    assert_eq!(okx.weight_budget(), Some((20, Duration::from_secs(2))));
    assert_eq!(header(&okx).as_deref(), Some("x-okx-used"));
    let bybit = settings.http_budget("bybit");
    assert_eq!(bybit.weight_budget(), Some((600, Duration::from_secs(10))));
    let other = settings.http_budget("kraken");
    assert_eq!(other.weight_budget(), None, "the default sets no weight");
    assert_eq!(header(&other).as_deref(), Some("x-mbx-used-weight-1m"));
    assert!(!settings.has_routes(), "a budget needs no route");
}

#[test]
fn a_bad_header_name_or_a_zero_window_fails_the_load_naming_the_setting() {
    let err = ProxySettings::loader()
        .env_vars([(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER",
            "x used weight",
        )])
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid HTTP header name"), "{err}");
    assert!(
        err.contains("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER"),
        "{err}"
    );
    let yaml = "proxy:\n  exchanges:\n    binance:\n      http_budget:\n        weight: 100\n        window_ms: 0\n";
    let err = ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("window_ms must be at least 1 when weight is set"),
        "{err}"
    );
    assert!(err.contains("config.yaml"), "{err}");
    // A weight of 0 turns the default's budget off for one exchange; its window may be 0.
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__WEIGHT", "100"),
            ("CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP_BUDGET__WEIGHT", "0"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP_BUDGET__WINDOW_MS",
                "0",
            ),
        ])
        .load()
        .unwrap();
    assert_eq!(settings.http_budget("okx").weight_budget(), None);
    assert!(settings.http_budget("binance").weight_budget().is_some());
    let err = ProxySettings::loader()
        .env_vars([("CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__WEIGTH", "100")])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__WEIGHT"),
        "a suggestion: {err}"
    );
}

#[test]
fn settings_built_in_code_take_a_budget() {
    let budget = HttpBudget::new()
        .with_weight(1200, Duration::from_secs(60))
        .with_used_weight_header(WeightHeader::new("x-used").unwrap());
    let binance = ExchangeId::new("binance").unwrap();
    let settings = ProxySettings::new(true).with_exchange(
        binance,
        ExchangeProxies::new().with_http_budget(budget.clone()),
    );
    assert_eq!(settings.http_budget("binance"), budget);
    assert_eq!(
        settings.exchanges()[&ExchangeId::new("binance").unwrap()].http_budget(),
        Some(&budget)
    );
    assert_eq!(settings.http_budget("okx"), HttpBudget::new());
    // The default's, given in code, is every exchange's.
    let default = ConnectionProxies::new().with_http_budget(budget.clone());
    assert_eq!(default.http_budget(), Some(&budget));
    let settings = ProxySettings::new(true).with_default(default);
    assert_eq!(settings.http_budget("okx"), budget);
}
