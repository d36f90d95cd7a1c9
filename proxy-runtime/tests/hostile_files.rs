//! Settings files and variables that would once have cost the machine or sent traffic
//! direct: an alias bomb, an endless file, a misspelled section or prefix. Each is a clear
//! load error (or, for an application's own aliases, no cost at all), within a generous
//! bound.

mod common;

use std::time::Duration;

use common::{errors, load_env, load_yaml, one_error};
use proxy_runtime::ProxySettings;
use proxy_runtime::load::ErrorKind;

/// Runs `f` on a thread and waits a generous 20 s for it (the old loader took 22 s and
/// 5 GB on the bomb below, in a release build).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the load finished within the bound")
}

/// The reproduction: `a` 10,000 scalars, `b` 100 aliases of `a`, `c` 50 aliases of `b`.
fn bomb(section: &str) -> String {
    let mut doc = String::from("a: &a [");
    doc.push_str(&vec!["x"; 10_000].join(", "));
    doc.push_str("]\nb: &b [");
    doc.push_str(&vec!["*a"; 100].join(", "));
    doc.push_str("]\nc: &c [");
    doc.push_str(&vec!["*b"; 50].join(", "));
    doc.push_str("]\n");
    doc.push_str(section);
    doc
}

#[test]
fn an_alias_bomb_in_the_applications_keys_costs_nothing() {
    let doc = bomb("proxy:\n  enabled: true\n");
    let settings = bounded(move || load_yaml(&doc, &[])).unwrap();
    assert!(settings.enabled());
}

#[test]
fn an_alias_bomb_in_the_section_is_a_clear_error() {
    // The reproduction's 50 x 100 x 10,000 values, aliased into the section: stopped by
    // the budget of values.
    let doc = bomb("proxy:\n  default:\n    http:\n      urls: *c\n");
    let e = bounded(move || one_error(load_yaml(&doc, &[])));
    assert!(e.contains("more than 100000 values"), "{e}");
    // As nested mappings that do belong: stopped by the budget of values.
    let mut doc = String::from("l0: &l0 {url: x, timeout_seconds: 1}\n");
    for i in 1..40 {
        doc.push_str(&format!(
            "l{i}: &l{i} {{a: *l{p}, b: *l{p}, c: *l{p}}}\n",
            p = i - 1
        ));
    }
    doc.push_str("proxy:\n  exchanges: *l39\n");
    let e = bounded(move || one_error(load_yaml(&doc, &[])));
    assert!(e.contains("more than 100000 values"), "{e}");
}

#[test]
fn an_endless_or_huge_file_is_a_clear_error() {
    let e = bounded(|| {
        one_error(
            ProxySettings::loader()
                .env_vars([("CRYPTOFEED_CONFIG", "/dev/zero")])
                .load(),
        )
    });
    assert!(
        e.starts_with("/dev/zero: the file is larger than 16 MiB"),
        "{e}"
    );
    let e = bounded(|| one_error(ProxySettings::loader().yaml_file("/dev/zero").load()));
    assert!(e.contains("larger than 16 MiB"), "{e}");
}

#[test]
fn a_misspelled_section_is_an_error_with_the_name_meant() {
    for misspelled in ["Proxy", "proxies"] {
        let yaml = format!("{misspelled}:\n  enabled: true\n");
        let e = one_error(load_yaml(&yaml, &[]));
        assert!(
            e.starts_with(&format!("config.yaml:1: no `proxy:` section, but `{misspelled}:` is at the top: did you mean `proxy`?")),
            "{e}"
        );
    }
    // The application's own key of that name is fine beside a real section.
    assert!(load_yaml("proxies: [a, b]\nproxy: {}\n", &[]).is_ok());
}

#[test]
fn a_misspelled_prefix_is_an_error_with_the_name_meant() {
    for (given, meant) in [
        ("CRYPTOFEED_PROXIES_ENABLED", "CRYPTOFEED_PROXY_ENABLED"),
        (
            "CRYPTOFED_PROXY_DEFAULT__HTTP__URL",
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
        ),
        (
            "CRYPTOFEED_PROXYEXCHANGES__OKX__HTTP__URL",
            "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__URL",
        ),
    ] {
        let all = errors(load_env(&[(given, "true")]));
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(
            all[0].starts_with(&format!("`{given}` (environment): not under the prefix `CRYPTOFEED_PROXY_`, but close to a setting: did you mean `{meant}`?")),
            "{}",
            all[0]
        );
    }
    let err = load_env(&[("CRYPTOFEED_PROXIES_ENABLED", "true")]).unwrap_err();
    assert!(matches!(
        err.errors()[0].kind(),
        ErrorKind::UnknownKey { suggestion: Some(s) } if s == "CRYPTOFEED_PROXY_ENABLED"
    ));
    // Other variables of the application are not settings, and are left alone.
    for other in [
        "CRYPTOFEED_LOG_LEVEL",
        "CRYPTOFEED_EXCHANGES",
        "CRYPTOFEED_PROXYPASS",
    ] {
        assert!(load_env(&[(other, "x")]).is_ok(), "{other}");
    }
}
