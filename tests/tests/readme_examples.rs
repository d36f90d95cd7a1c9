//! The configuration examples of the README are real: each YAML block and each block of
//! `export` lines loads, and gives the routes the README describes.

use proxy_runtime::{ConnectionKind, ProxySettings};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md")
}

/// The fenced blocks of the given language.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let end = body.find("```").expect("closed block");
        out.push(body[..end].to_owned());
        rest = &body[end..];
    }
    out
}

/// `export NAME=value` lines, with shell quotes (double or single) removed.
fn exports(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("NAME=value");
            (k.to_owned(), v.trim_matches(['"', '\'']).to_owned())
        })
        .collect()
}

#[test]
fn every_yaml_example_loads() {
    let yaml = blocks(&readme(), "yaml");
    assert!(
        yaml.len() >= 2,
        "the reference example and the pool example"
    );
    for block in yaml {
        let s = ProxySettings::loader()
            .yaml_str("README.md", block.clone())
            .load()
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert!(s.enabled());
        let binance = s.get_proxy("binance", ConnectionKind::Http).unwrap();
        let password = |url: &proxy_runtime::ProxyUrl| {
            url.endpoint()
                .and_then(|e| e.password())
                .map(|p| p.expose().to_owned())
        };
        if block.contains("gw.provider.example") {
            // The exits of this host: source addresses, an interface, CONNECT headers.
            let members = binance.members();
            let source = |i: usize| members[i].source().map(|ip| ip.to_string());
            assert_eq!(members.len(), 5);
            assert_eq!(source(0).as_deref(), Some("192.0.2.10"));
            assert_eq!(source(1).as_deref(), Some("2001:db8::10"));
            assert_eq!(source(2).as_deref(), Some("192.0.2.11"));
            assert_eq!(members[3].interface(), Some("eth1"));
            assert_eq!(source(4).as_deref(), Some("192.0.2.12"));
            assert_eq!(password(members[4].url()).as_deref(), Some("p@ss"));
            assert_eq!(members[4].connect_headers()[0].0.as_str(), "x-session");
            assert!(!format!("{s:?}").contains("binance-1"));
            continue;
        }
        if block.contains("shared:") {
            // Many processes: Redis named (redacted), the fallback share, a named exit.
            let shared = s.shared();
            assert_eq!(
                shared.url().map(ToString::to_string).as_deref(),
                Some("redis://feed:***@redis.internal:6379/0")
            );
            assert_eq!(shared.processes(), 4);
            assert_eq!(binance.members()[1].exit(), Some("nat-gw-1"));
            assert_eq!(
                s.http_budget("binance").weight_budget().map(|(w, _)| w),
                Some(5400)
            );
            continue;
        }
        if block.contains("http_budget") {
            // Weight budgets: Binance's per exit, the header from the default.
            let budget = s.http_budget("binance");
            assert_eq!(
                budget.weight_budget(),
                Some((5400, std::time::Duration::from_secs(60)))
            );
            let header = budget.used_weight_header().map(ToString::to_string);
            assert_eq!(header.as_deref(), Some("x-mbx-used-weight-1m"));
            assert_eq!(s.http_budget("okx").weight_budget(), None);
            assert_eq!(binance.members().len(), 3);
            continue;
        }
        assert_eq!(password(binance.url()).as_deref(), Some("p@ss"), "{block}");
        if binance.is_pool() {
            // The pool example: two exits for REST, by round robin, and for streams.
            assert_eq!(binance.members().len(), 2);
            assert!(
                binance
                    .members()
                    .iter()
                    .all(|m| password(m.url()).as_deref() == Some("p@ss"))
            );
            assert_eq!(binance.strategy(), proxy_runtime::Strategy::RoundRobin);
            assert_eq!(binance.timeout().get(), 10);
            let ws = s.get_proxy("binance", ConnectionKind::Websocket).unwrap();
            assert_eq!(ws.members().len(), 2);
            assert_eq!(ws.strategy(), proxy_runtime::Strategy::Failover);
        } else {
            assert!(
                s.get_proxy("binance_futures", ConnectionKind::Websocket)
                    .is_none()
            );
            assert!(
                s.get_proxy("binance_futures", ConnectionKind::Http)
                    .is_some()
            );
        }
    }
}

#[test]
fn every_variables_example_loads() {
    let text = readme();
    let sh: Vec<Vec<(String, String)>> = blocks(&text, "sh")
        .iter()
        .map(|b| exports(b))
        .filter(|e| !e.is_empty())
        .collect();
    assert!(sh.len() >= 2, "the README shows variables at least twice");
    for vars in sh {
        let s = ProxySettings::loader()
            .env_vars(vars.clone())
            .load()
            .unwrap_or_else(|e| panic!("{e}\n{vars:?}"));
        if vars
            .iter()
            .any(|(k, _)| k == "CRYPTOFEED_PROXY_SHARED__URL")
        {
            // The shared store's variables, beside the routes of another example.
            assert!(s.shared().url().is_some(), "{vars:?}");
            continue;
        }
        assert!(s.enabled(), "{vars:?}");
        assert!(
            s.get_proxy("binance", ConnectionKind::Http).is_some(),
            "{vars:?}"
        );
    }
}

#[test]
fn the_reference_table_lists_exactly_the_schema_variables() {
    let text = readme();
    let listed: std::collections::BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("| `CRYPTOFEED_PROXY_"))
        .map(|l| l.split('`').nth(1).expect("name in backticks").to_owned())
        .collect();
    let schema: std::collections::BTreeSet<String> =
        proxy_runtime::load::variables::<ProxySettings>("CRYPTOFEED_PROXY_")
            .into_iter()
            .map(|v| v.name)
            .collect();
    assert_eq!(listed, schema);
}
