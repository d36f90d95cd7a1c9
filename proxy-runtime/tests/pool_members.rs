//! Pool members as operators write them: a URL alone, `direct://ADDRESS`, or a mapping
//! with `url`, `source`, `interface` and `connect_headers`, in YAML and in variables
//! (JSON); every combination that cannot work refused at load with where it was written;
//! header values never shown.

use std::net::IpAddr;

use proxy_runtime::check::Report;
use proxy_runtime::{ConnectionKind, PoolMember, ProxySettings, ProxyUrl};

/// A secret no output may contain.
const SECRET: &str = "sess-7f3a9c";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn yaml(text: &str) -> Result<ProxySettings, String> {
    ProxySettings::loader()
        .yaml_str("config.yaml", text)
        .load()
        .map_err(|e| e.to_string())
}

fn yaml_err(text: &str) -> String {
    let err = yaml(text).unwrap_err();
    assert!(!err.contains(SECRET), "{err}");
    err
}

#[test]
fn yaml_mixes_urls_source_addresses_and_mappings() {
    let text = format!(
        "proxy:
  enabled: true
  exchanges:
    binance:
      http:
        strategy: round_robin
        urls:
          - socks5h://a.example:1080
          - direct://127.0.0.2
          - direct://[::1]
          - url: http://b.example:3128
            source: 127.0.0.3
            connect_headers:
              X-Session: {SECRET}
              x-country: de
          - url: direct://
            interface: lo
"
    );
    let settings = yaml(&text).unwrap();
    let route = settings.get_proxy("binance", ConnectionKind::Http).unwrap();
    let members = route.members();
    assert_eq!(members.len(), 5);
    assert_eq!(members[0].url().to_string(), "socks5h://a.example:1080");
    assert_eq!(members[0].source(), None);
    assert!(!members[0].is_direct());
    assert_eq!(members[1].url(), &ProxyUrl::DirectFrom(ip("127.0.0.2")));
    assert_eq!(members[1].source(), Some(ip("127.0.0.2")));
    assert_eq!(members[2].source(), Some(ip("::1")));
    assert_eq!(members[3].source(), Some(ip("127.0.0.3")));
    let headers: Vec<(String, String)> = members[3]
        .connect_headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        headers,
        [
            ("x-country".to_owned(), "de".to_owned()),
            ("x-session".to_owned(), SECRET.to_owned())
        ]
    );
    assert!(
        members[3]
            .connect_headers()
            .iter()
            .all(|(_, v)| v.is_sensitive())
    );
    assert_eq!(members[4].interface(), Some("lo"));
    assert!(!members[4].is_direct(), "bound to an interface");
    // Nothing shows the header's value.
    for shown in [
        format!("{settings:?}"),
        format!("{route}"),
        format!("{route:?}"),
        format!("{:?}", members[3]),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert_eq!(
        members[3].to_string(),
        "http://b.example:3128 from 127.0.0.3 (connect headers: x-country: ***, x-session: ***)"
    );
}

#[test]
fn variables_give_members_as_json_objects_and_strings() {
    let urls = format!(
        r#"["socks5h://a.example:1080", {{"url": "http://b.example:3128", "source": "2001:db8::10", "connect_headers": {{"X-Session": "{SECRET}"}}}}, "direct://192.0.2.10"]"#
    );
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET__URLS",
                urls.as_str(),
            ),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "direct://192.0.2.11"),
        ])
        .load()
        .unwrap();
    let route = settings
        .get_proxy("okx", ConnectionKind::Websocket)
        .unwrap();
    assert_eq!(route.members()[1].source(), Some(ip("2001:db8::10")));
    assert_eq!(route.members()[1].connect_headers().len(), 1);
    assert_eq!(route.members()[2].source(), Some(ip("192.0.2.10")));
    // `direct://ADDRESS` alone is a route of its own (not "no proxy, default address").
    let default = settings.get_proxy("kraken", ConnectionKind::Http).unwrap();
    assert!(!default.is_direct());
    assert_eq!(default.members()[0].source(), Some(ip("192.0.2.11")));
}

#[test]
fn a_bad_url_given_alone_in_a_list_is_named_at_its_item() {
    let err = yaml_err(
        "proxy:\n  default:\n    http:\n      urls:\n        - socks5h://a:1080\n        - ftp://b:21\n",
    );
    assert!(err.contains("Unsupported proxy scheme: ftp"), "{err}");
    assert!(err.contains("config.yaml:"), "{err}");
    assert!(err.contains("urls[1]") || err.contains("urls.1"), "{err}");
    assert!(
        !err.contains("1.url"),
        "the item, not a field the user never wrote: {err}"
    );
    let err = ProxySettings::loader()
        .env_vars([(
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS",
            r#"["socks5h://a:1080", "direct://a.example"]"#,
        )])
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a name"), "{err}");
    assert!(
        err.contains("CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS"),
        "{err}"
    );
}

#[test]
fn combinations_that_cannot_work_fail_the_load_where_they_were_written() {
    let member =
        |body: &str| format!("proxy:\n  default:\n    http:\n      urls:\n        - url: {body}\n");
    let cases = [
        (
            member(&format!(
                "socks5h://a:1080\n          connect_headers:\n            x-session: {SECRET}"
            )),
            "a socks5h:// proxy has no headers",
        ),
        (
            member(&format!(
                "direct://\n          connect_headers:\n            x-session: {SECRET}"
            )),
            "a direct member sends no CONNECT request",
        ),
        (
            member("direct://127.0.0.2\n          source: 127.0.0.3"),
            "the source address is given twice",
        ),
        (
            member("http://[2001:db8::1]:3128\n          source: 127.0.0.3"),
            "different families",
        ),
        (
            member(
                "http://a:3128\n          connect_headers:\n            proxy-authorization: Basic eA==",
            ),
            "sets `proxy-authorization` itself",
        ),
        (
            member("http://a:3128\n          connect_headers:\n            bad name: x"),
            "not a header name",
        ),
        (
            member("http://a:3128\n          source: 127.0.0.300"),
            "an IP address",
        ),
        (
            member("http://a:3128\n          interface: an-interface-name-too-long"),
            "1 to 15 bytes",
        ),
        (
            member("http://a:3128\n          sorce: 127.0.0.3"),
            "did you mean `source`",
        ),
    ];
    for (text, want) in cases {
        let err = yaml_err(&text);
        assert!(err.contains(want), "{want}: {err}");
        assert!(err.contains("config.yaml:"), "{err}");
    }
}

#[test]
fn a_header_value_that_would_break_the_request_is_refused_and_never_shown() {
    let text = format!(
        "proxy:\n  default:\n    http:\n      urls:\n        - url: http://a:3128\n          connect_headers:\n            x-session: \"{SECRET}\\r\\nX-Injected: 1\"\n"
    );
    let err = yaml_err(&text);
    assert!(err.contains("visible ASCII"), "{err}");
    assert!(err.contains("not shown"), "{err}");
    let urls =
        format!(r#"[{{"url": "http://a:3128", "connect_headers": {{"x-session": " {SECRET}"}}}}]"#);
    let err = ProxySettings::loader()
        .env_vars([("CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS", urls.as_str())])
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("white space"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
}

#[test]
fn a_header_name_that_reads_as_credentials_is_shown_redacted_in_its_error() {
    // Found by the fuzzer: a line of `name:value` with no space after the colon is one
    // key, and the refused name was quoted whole in the reason.
    let text = format!(
        "proxy:\n  default:\n    http:\n      urls:\n        - url: http://a:3128\n          connect_headers:\n            X-Session:user:{SECRET}@host, source: 1\n"
    );
    let err = yaml_err(&text);
    assert!(err.contains("is not a header name"), "{err}");
    assert!(err.contains("***@host"), "{err}");
}

#[test]
fn members_made_in_code_follow_the_same_rules() {
    let http: ProxyUrl = "http://proxy.example:8080".parse().unwrap();
    let member = PoolMember::new(http.clone())
        .with_source(ip("192.0.2.10"))
        .unwrap()
        .with_connect_header("X-Session", SECRET)
        .unwrap();
    assert_eq!(member.connect_headers()[0].0.as_str(), "x-session");
    assert!(
        member
            .clone()
            .with_connect_header("x-session", "again")
            .unwrap_err()
            .to_string()
            .contains("given twice")
    );
    let socks: ProxyUrl = "socks5h://proxy.example:1080".parse().unwrap();
    assert!(
        PoolMember::new(socks)
            .with_connect_header("x-a", "b")
            .is_err()
    );
    assert!(
        PoolMember::new(http.clone())
            .with_connect_header("x-a", "")
            .is_err()
    );
    assert!(
        PoolMember::new(http.clone())
            .with_connect_header("host", "h")
            .is_err()
    );
    assert!(PoolMember::new(http.clone()).with_interface("").is_err());
    assert!(
        PoolMember::new(http.clone())
            .with_interface("eth/0")
            .is_err()
    );
    assert!(PoolMember::new(http.clone()).with_interface("..").is_err());
    assert!(PoolMember::new(http).with_interface("eth0").is_ok());
    let v6: ProxyUrl = "socks5h://[::1]:1080".parse().unwrap();
    assert!(PoolMember::new(v6.clone()).with_source(ip("::2")).is_ok());
    assert!(PoolMember::new(v6).with_source(ip("127.0.0.2")).is_err());
    let route =
        proxy_runtime::ProxyConfig::pool_of(vec![member], proxy_runtime::Strategy::Failover)
            .unwrap();
    assert!(!format!("{route:?}").contains(SECRET));
}

#[test]
fn proxy_check_shows_sources_interfaces_and_header_names_never_values() {
    let text = format!(
        "proxy:
  enabled: true
  exchanges:
    binance:
      http:
        urls:
          - direct://127.0.0.2
          - url: http://b.example:3128
            source: 127.0.0.3
            interface: lo
            connect_headers:
              x-session: {SECRET}
"
    );
    let settings = yaml(&text).unwrap();
    let report = Report::new(&settings, None, &[], "CRYPTOFEED_PROXY_");
    let json = proxy_runtime::check::render::json(&report);
    let table = proxy_runtime::check::render::report_table(&report);
    for shown in [&json, &table] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert!(json.contains(r#""local_address":"127.0.0.3""#), "{json}");
    assert!(json.contains(r#""interface":"lo""#), "{json}");
    assert!(
        json.contains(r#""connect_headers":["x-session"]"#),
        "{json}"
    );
    assert!(
        table.contains(
            "http://b.example:3128 from 127.0.0.3 on lo (connect headers: x-session: ***)"
        ),
        "{table}"
    );
    assert!(table.contains("direct://127.0.0.2"), "{table}");
}

#[test]
fn a_source_that_would_let_the_system_pick_the_address_is_refused() {
    for (url, want) in [
        ("direct://0.0.0.0", "unspecified"),
        ("direct://[::]", "unspecified"),
        ("direct://255.255.255.255", "broadcast"),
        ("direct://224.0.0.1", "multicast"),
        ("direct://[fe80::1]", "link-local"),
    ] {
        let err = url.parse::<ProxyUrl>().unwrap_err().to_string();
        assert!(err.contains(want), "{url}: {err}");
    }
    let http: ProxyUrl = "http://proxy.example:8080".parse().unwrap();
    for source in ["0.0.0.0", "::", "ff02::1", "fe80::2"] {
        assert!(
            PoolMember::new(http.clone())
                .with_source(ip(source))
                .is_err(),
            "{source}"
        );
    }
    // An IPv4 address written as IPv6 is the IPv4 address (its family decides the rest).
    let mapped = PoolMember::new(http)
        .with_source(ip("::ffff:127.0.0.2"))
        .unwrap();
    assert_eq!(mapped.source(), Some(ip("127.0.0.2")));
    assert_eq!(
        "direct://[::ffff:127.0.0.2]".parse::<ProxyUrl>().unwrap(),
        ProxyUrl::DirectFrom(ip("127.0.0.2"))
    );
    let err = yaml_err(
        "proxy:\n  default:\n    http:\n      urls:\n        - url: http://a:3128\n          source: 0.0.0.0\n",
    );
    assert!(err.contains("unspecified"), "{err}");
}

#[test]
fn a_header_value_yaml_would_read_as_a_number_must_be_quoted() {
    let member = |value: &str| {
        format!(
            "proxy:\n  default:\n    http:\n      urls:\n        - url: http://a:3128\n          connect_headers:\n            x-session: {value}\n"
        )
    };
    for value in ["0123", "true", "1e3"] {
        let err = yaml_err(&member(value));
        assert!(err.contains("quote it"), "{value}: {err}");
    }
    assert!(yaml(&member("\"0123\"")).is_ok());
    for (value, want) in [("\"caf\u{e9}\"", "visible ASCII"), ("\"x\"", "")] {
        let loaded = yaml(&member(value));
        if want.is_empty() {
            assert!(loaded.is_ok());
        } else {
            assert!(loaded.unwrap_err().contains(want));
        }
    }
    let err = yaml_err(
        "proxy:\n  default:\n    http:\n      urls:\n        - url: http://a:3128\n          connect_headers:\n            expect: 100-continue\n",
    );
    assert!(err.contains("sets `expect` itself"), "{err}");
}

#[test]
fn members_read_from_any_serde_input_take_a_url_alone_or_a_mapping() {
    let route: proxy_runtime::ProxyConfig = serde_json::from_str(
        r#"{"urls": ["socks5h://a:1080", {"url": "http://b:3128", "source": "127.0.0.3"}]}"#,
    )
    .unwrap();
    assert_eq!(route.members().len(), 2);
    assert_eq!(route.members()[1].source(), Some(ip("127.0.0.3")));
    let err = serde_json::from_str::<proxy_runtime::ProxyConfig>(r#"{"urls": [42]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a proxy URL, or a mapping"), "{err}");
}
