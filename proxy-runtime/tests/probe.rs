//! `proxy-check --probe`: a real GET (or WebSocket upgrade) through each route, with the
//! protocol, the status and where the time went; a status of 400 or more, and a dead
//! proxy, are failures (exit 1); the URL is shown with its secrets masked.

use proxy_tests::origin::Origin;
use proxy_tests::real::{PASSWORD, RealProxy, USER};
use proxy_tests::tls::TestCa;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn probe(url: &str, proxy: &str, ca_file: &std::path::Path, json: bool) -> Run {
    let mut args = vec!["--probe", url, "--ca", ca_file.to_str().unwrap(), "binance"];
    if json {
        args.push("--json");
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy-check"))
        .args(&args)
        .env_clear()
        .env("CRYPTOFEED_PROXY_ENABLED", "true")
        .env("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", proxy)
        .env("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", proxy)
        .output()
        .await
        .expect("run proxy-check");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `proxy-check --probe URL --ca CA --json binance`, proxies enabled, with the pool
/// variable `var` set to `urls`: the exit code and the JSON printed.
async fn probe_pool(
    url: &str,
    ca_file: &std::path::Path,
    var: &str,
    urls: &str,
) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy-check"))
        .args([
            "--probe",
            url,
            "--ca",
            ca_file.to_str().unwrap(),
            "--json",
            "binance",
        ])
        .env_clear()
        .env("CRYPTOFEED_PROXY_ENABLED", "true")
        .env(var, urls)
        .output()
        .await
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// The probe lines of the table: `exchange kind route verdict...`.
/// The result lines of a probe: after its header and the line of the route by host.
fn probe_lines(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout
        .split_once("\nprobe ")
        .map(|(_, rest)| rest.lines().skip(1).collect())
        .unwrap_or_default();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("  routed by host: ")),
        "{stdout}"
    );
    lines[1..].to_vec()
}

#[tokio::test]
async fn real_requests_through_a_live_proxy_with_protocol_status_and_timings() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let ca_file = std::env::temp_dir().join(format!("probe-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let socks = RealProxy::microsocks(true);
    let proxy = socks.url("socks5h", Some((USER, PASSWORD)));
    let shown = format!("socks5h://{USER}:***@127.0.0.1:{}", socks.port);
    let https = format!("https://127.0.0.1:{}", origin.https.port());

    // A GET over HTTP/2, seen by the origin, once per route (the default and binance).
    let run = probe(
        &format!("{https}/ping?apiKey=T0pSecret"),
        &proxy,
        &ca_file,
        false,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("probe {https}/ping?apiKey=***:")),
        "{}",
        run.stdout
    );
    let lines = probe_lines(&run.stdout);
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    for line in &lines {
        assert!(line.contains(&shown), "{line}");
        assert!(line.contains(" ok  HTTP/2 200 in "), "{line}");
        for phase in ["tcp ", "proxy ", "tls ", "first byte "] {
            assert!(line.contains(phase), "{phase} missing: {line}");
        }
    }
    let gets: Vec<_> = origin.https.received();
    assert_eq!(gets.len(), 2);
    assert!(
        gets.iter()
            .all(|r| r.method == "GET" && r.target == "/ping?apiKey=T0pSecret")
    );
    assert!(!run.stdout.contains("T0pSecret") && !run.stderr.contains("T0pSecret"));
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));

    // The upgrade, with its own timings; and the same fields in JSON.
    let wss = format!("wss://127.0.0.1:{}/ws", origin.wss.port());
    let run = probe(&wss, &proxy, &ca_file, true).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let results = json["probe"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["kind"], "websocket");
        assert_eq!(r["protocol"], "HTTP/1.1");
        assert_eq!(r["status"], 101);
        assert_eq!(r["route"], shown.as_str());
        assert!(r["timings"]["upgrade_ms"].is_u64(), "{r}");
        assert!(r["timings"]["proxy_ms"].is_u64(), "{r}");
        assert!(r["connect_ms"].is_u64(), "{r}");
    }

    // An error status is a failure that names the status and its reason.
    let run = probe(&format!("{https}/status/451"), &proxy, &ca_file, false).await;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    for line in probe_lines(&run.stdout) {
        assert!(
            line.contains(" FAILED  HTTP/2 451 Unavailable For Legal Reasons in "),
            "{line}"
        );
    }

    // A dead proxy: the typed error, per route.
    drop(socks);
    let run = probe(&format!("{https}/api"), &proxy, &ca_file, false).await;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAILED  binance: proxy unreachable"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "(via {shown} to 127.0.0.1:{})",
            origin.https.port()
        )),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(PASSWORD));

    // A URL that cannot be probed is a usage error, shown redacted.
    let run = probe(
        "https://key:T0pSecret@127.0.0.1:1/",
        &proxy,
        &ca_file,
        false,
    )
    .await;
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("https://***@127.0.0.1:1/"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("T0pSecret"), "{}", run.stderr);
    std::fs::remove_file(&ca_file).unwrap();
}

#[tokio::test]
async fn every_member_of_a_pool_is_probed_on_its_own() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let ca_file = std::env::temp_dir().join(format!("probe-pool-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let live = RealProxy::microsocks(false);
    let dead = format!(
        "socks5h://127.0.0.1:{}",
        proxy_tests::fake::closed_port().await
    );
    let urls = format!(r#"["{}", "{dead}"]"#, live.url("socks5h", None));
    let https = format!("https://127.0.0.1:{}/ping", origin.https.port());
    let (code, stdout) = probe_pool(
        &https,
        &ca_file,
        "CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS",
        &urls,
    )
    .await;
    // One member fails: the probe fails, though the pool as a whole would work.
    assert_eq!(code, Some(1), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let results = json["probe"]["results"].as_array().unwrap();
    let routes: Vec<(&str, &str, bool)> = results
        .iter()
        .map(|r| {
            (
                r["exchange"].as_str().unwrap(),
                r["route"].as_str().unwrap(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    let live_url = live.url("socks5h", None);
    assert_eq!(
        routes,
        [
            ("*", live_url.as_str(), true),
            ("*", dead.as_str(), false),
            ("binance", live_url.as_str(), true),
            ("binance", dead.as_str(), false),
        ],
        "{stdout}"
    );
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("proxy unreachable"),
        "{stdout}"
    );
    assert_eq!(
        origin.https.received().len(),
        2,
        "only the live member reached the origin"
    );
    std::fs::remove_file(&ca_file).unwrap();
}

/// Members that differ only by their CONNECT headers are probed each on its own, under
/// the label the pool gives it (`#1`, `#2`); their header values are never shown.
#[tokio::test]
async fn members_alike_but_for_their_connect_headers_are_probed_under_their_labels() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let ca_file = std::env::temp_dir().join(format!("probe-alike-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let proxy = RealProxy::tinyproxy(false);
    let url = proxy.url("http", None);
    let urls = format!(
        r#"[{{"url": "{url}", "connect_headers": {{"x-session": "sess-one-0c1"}}}}, {{"url": "{url}", "connect_headers": {{"x-session": "sess-two-0c2"}}}}]"#
    );
    let https = format!("https://127.0.0.1:{}/ping", origin.https.port());
    let var = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS";
    let (code, stdout) = probe_pool(&https, &ca_file, var, &urls).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        !stdout.contains("sess-one") && !stdout.contains("sess-two"),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let routes: Vec<&str> = json["probe"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["exchange"] == "binance")
        .map(|r| r["route"].as_str().unwrap())
        .collect();
    assert_eq!(
        routes,
        [format!("{url} #1"), format!("{url} #2")],
        "{stdout}"
    );
    std::fs::remove_file(&ca_file).unwrap();
}

#[tokio::test]
async fn a_probe_from_the_library_uses_the_injector_s_options() {
    use proxy_runtime::check::Report;
    use proxy_runtime::check::probe::{self as library, ProbeReport};
    use proxy_runtime::{Phase, ProxyError, ProxyErrorKind, ProxyInjector, ProxySettings};
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks(false);
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
            &socks.url("socks5h", None),
        ),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    let report = Report::new(&settings, None, &[], "CRYPTOFEED_PROXY_");
    let url = format!("https://127.0.0.1:{}/ping", origin.https.port());
    let protocols = |run: ProbeReport| -> Vec<&'static str> {
        run.results
            .iter()
            .map(|p| p.outcome.as_ref().expect("an answer").protocol)
            .collect()
    };

    let offered_h2 = ProxyInjector::builder(settings.clone())
        .tls_roots(ca.roots())
        .build();
    let run = library::probe(&offered_h2, &report, &url).await.unwrap();
    assert_eq!(protocols(run), ["HTTP/2"]);
    let http1 = ProxyInjector::builder(settings.clone())
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    let run = library::probe(&http1, &report, &url).await.unwrap();
    assert_eq!(protocols(run), ["HTTP/1.1"]);

    // The injector's request deadline bounds a probe of a server that never answers.
    let deadline = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .request_timeout(std::time::Duration::from_millis(500))
        .build();
    let stalls = format!("https://127.0.0.1:{}/stall-head", origin.https.port());
    /// The error of the one route's probe of `url`, which must end within the test's wait.
    async fn failure(inj: &ProxyInjector, report: &Report, url: &str) -> ProxyError {
        let run = tokio::time::timeout(proxy_tests::GENEROUS, library::probe(inj, report, url))
            .await
            .expect("the probe ends by a deadline of its own")
            .unwrap();
        run.results[0].outcome.clone().unwrap_err()
    }
    let timed_out = ProxyErrorKind::Timeout(Phase::ResponseHead);
    let err = failure(&deadline, &report, &stalls).await;
    assert_eq!(err.kind(), &timed_out, "{err}");

    // Without one, the route's `timeout_seconds` bounds it.
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
            &socks.url("socks5h", None),
        ),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "1"),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    let plain = ProxyInjector::builder(settings.clone())
        .tls_roots(ca.roots())
        .build();
    let err = failure(&plain, &report, &stalls).await;
    assert_eq!(err.kind(), &timed_out, "{err}");
    // So it does when the request deadline is too far to be an instant (no panic).
    let endless = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .request_timeout(std::time::Duration::MAX)
        .build();
    let err = failure(&endless, &report, &stalls).await;
    assert_eq!(err.kind(), &timed_out, "{err}");
}

#[tokio::test]
async fn a_probe_while_proxies_are_disabled_says_it_went_direct() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let ca_file =
        std::env::temp_dir().join(format!("probe-ca-disabled-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let url = format!("https://127.0.0.1:{}/ping", origin.https.port());
    for json in [false, true] {
        let mut args = vec!["--probe", url.as_str(), "--ca", ca_file.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy-check"))
            .args(&args)
            .env_clear()
            .env(
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5h://127.0.0.1:9",
            )
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let said = "proxies are disabled: every probe went direct, from this host's own address";
        if json {
            let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(json["probe"]["warnings"][0], said, "{json:#}");
        } else {
            assert!(stdout.contains(&format!("warning: {said}")), "{stdout}");
        }
    }
    assert_eq!(
        origin.https.accepted(),
        2,
        "both probes went straight to the origin"
    );
    std::fs::remove_file(&ca_file).unwrap();
}

/// An exchange's weight budget is in the report, and each member's probe shows the used
/// weight the exchange reports through it (another client spent 30 on one member's IP).
#[tokio::test]
async fn the_budget_is_reported_and_each_member_s_probe_shows_the_used_weight() {
    use proxy_tests::weighing::{Limiter, USED};
    let ca = TestCa::new();
    let limiter = Limiter::new(1000, std::time::Duration::from_secs(60));
    limiter.preload("127.0.0.13".parse().unwrap(), 30);
    let endpoint = proxy_tests::origin::serve_https_with(&ca, limiter.handler()).await;
    let ca_file = std::env::temp_dir().join(format!("probe-weight-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let https = format!("https://127.0.0.1:{}/w", endpoint.port());
    let run = |json: bool| {
        let mut args = vec!["--probe", https.as_str(), "--ca", ca_file.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy-check"))
            .args(args)
            .env_clear()
            .env("CRYPTOFEED_PROXY_ENABLED", "true")
            .env(
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
                r#"["direct://127.0.0.13", "direct://127.0.0.14"]"#,
            )
            .env(
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
                "5400",
            )
            .env(
                "CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__USED_WEIGHT_HEADER",
                USED,
            )
            .output()
    };
    let out = run(true).await.unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        json["routes"]["binance"]["http_budget"],
        serde_json::json!({"weight": 5400, "window_ms": 60000, "used_weight_header": USED}),
        "{stdout}"
    );
    assert_eq!(
        json["routes"]["*"]["http_budget"],
        serde_json::json!({"weight": 0, "window_ms": 0, "used_weight_header": USED}),
        "the default reads the header, with no budget: {stdout}"
    );
    let used: Vec<(&str, &str, Option<u64>)> = json["probe"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["exchange"].as_str().unwrap(),
                r["route"].as_str().unwrap(),
                r["used_weight"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        used,
        [
            ("*", "direct", Some(1)),
            ("binance", "direct://127.0.0.13", Some(31)),
            ("binance", "direct://127.0.0.14", Some(1)),
        ],
        "30 spent elsewhere, then one probe from 127.0.0.1 and one through each member: {stdout}"
    );
    let out = run(false).await.unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("http weight budgets (weight 0: none):"),
        "{stdout}"
    );
    let budget = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("binance") && l.contains("weight 5400"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(budget.contains("per 60000 ms per exit"), "{budget}");
    let default = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('*') && l.contains("weight 0 per 0 ms per exit"))
        .unwrap_or_else(|| panic!("the default reads the header with no budget: {stdout}"));
    assert!(default.contains("header x-mbx-used-weight-1m"), "{default}");
    assert!(!stdout.contains("  okx "), "{stdout}");
    assert!(budget.contains("header x-mbx-used-weight-1m"), "{budget}");
    assert!(
        stdout.contains("used weight 32"),
        "the second run's probe: {stdout}"
    );
    std::fs::remove_file(&ca_file).unwrap();
}
