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
    // Names shorter than the prefix, or with a character of several bytes where a
    // misspelled prefix would end, are compared without being cut inside.
    for short in [
        "CRYPTOFEED_PROX",
        "C",
        "CRYPTOFEED_PROXÿ",
        "CRYPTOFEED_PRÖXY_X",
    ] {
        assert!(load_env(&[(short, "true")]).is_ok(), "{short}");
    }
    let all = errors(load_env(&[("CRYPTOFEED_PRÖXY_ENABLED", "true")]));
    assert!(
        all[0].contains("did you mean `CRYPTOFEED_PROXY_ENABLED`?"),
        "{all:#?}"
    );
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

#[test]
fn a_file_of_exactly_the_bound_is_read_and_one_byte_more_is_not() {
    use std::io::Write;
    const BOUND: usize = 16 * 1024 * 1024;
    let dir = std::env::temp_dir().join(format!("proxy-bound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    // A comment fills the file to the byte.
    let head = "proxy:\n  enabled: true\n#";
    let write = |len: usize| {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(head.as_bytes()).unwrap();
        f.write_all(&vec![b'x'; len - head.len()]).unwrap();
    };
    write(BOUND);
    let s = ProxySettings::loader().yaml_file(&path).load().unwrap();
    assert!(s.enabled());
    write(BOUND + 1);
    let e = ProxySettings::loader().yaml_file(&path).load().unwrap_err();
    assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file whose `proxy` section comes through a chain of `hops` merge keys (each mapping
/// merging the one before, `branches` times over), or through none when `found` is false.
fn merge_chain(hops: usize, branches: usize, found: bool) -> String {
    let mut yaml = String::from("m0: &m0\n");
    yaml.push_str(if found {
        "  proxy: {enabled: true}\n"
    } else {
        "  other: 1\n"
    });
    for i in 1..hops {
        let sources = vec![format!("*m{}", i - 1); branches].join(", ");
        yaml.push_str(&format!("m{i}: &m{i}\n  <<: [{sources}]\n"));
    }
    yaml.push_str(&format!("<<: *m{}\n", hops - 1));
    yaml
}

#[test]
fn merge_chains_are_followed_within_bounds_and_an_error_beyond() {
    let s = load_yaml(&merge_chain(50, 1, true), &[]).unwrap();
    assert!(s.enabled(), "50 mappings deep, the section is found");
    let e = one_error(load_yaml(&merge_chain(200, 1, true), &[]));
    assert!(e.contains("nested deeper than 128 levels"), "{e}");
    // Merges of merges branch: bounded by the number of mappings reached, within a second.
    let started = std::time::Instant::now();
    let e = one_error(load_yaml(&merge_chain(30, 2, false), &[]));
    assert!(e.contains("reach more than 100000 mappings"), "{e}");
    assert!(
        e.starts_with("config.yaml:61:"),
        "at the merge key at the top: {e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_empty_or_null_document_is_no_settings_and_a_near_section_is_an_error() {
    for doc in ["", "# nothing\n", "null\n", "~\n", "---\n"] {
        let s = load_yaml(doc, &[]).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        assert!(!s.enabled() && !s.has_routes(), "{doc:?}");
    }
    let e = one_error(load_yaml("just text\n", &[]));
    assert!(e.contains("expected a mapping with a `proxy:` key"), "{e}");
    // Within three edits but much longer than `proxy`: the application's own key.
    assert!(load_yaml("proxy123: 1\n", &[]).is_ok());
    let e = one_error(load_yaml("prox:\n  enabled: true\n", &[]));
    assert!(e.contains("did you mean `proxy`?"), "{e}");
}

#[test]
fn nesting_is_bounded_at_128_levels_aliases_included() {
    // The top mapping and 127 sequences: 128 levels, the most there may be.
    let nested = |levels: usize| format!("x: {}{}\n", "[".repeat(levels), "]".repeat(levels));
    assert!(load_yaml(&nested(127), &[]).is_ok());
    let e = one_error(load_yaml(&nested(128), &[]));
    assert!(e.contains("nested deeper than 128 levels"), "{e}");
    // An alias counts with the height of what it names: 100 levels under 40 is too deep,
    // though neither part is.
    let yaml = format!(
        "a: &a {}{}\nb: {}*a{}\n",
        "[".repeat(100),
        "]".repeat(100),
        "[".repeat(40),
        "]".repeat(40)
    );
    let e = one_error(load_yaml(&yaml, &[]));
    assert!(e.contains("nested deeper than 128 levels"), "{e}");
}

#[test]
fn tags_outside_the_core_schema_are_refused() {
    let ok = "proxy: !!map\n  enabled: !!bool true\n";
    assert!(load_yaml(ok, &[]).unwrap().enabled());
    for bad in [
        "proxy: !custom\n  enabled: true\n",
        "proxy: !!seq\n  enabled: true\n",
        "proxy:\n  !custom enabled: true\n",
    ] {
        let e = one_error(load_yaml(bad, &[]));
        assert!(e.contains("tag"), "{bad:?}: {e}");
    }
}
