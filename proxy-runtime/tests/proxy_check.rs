//! The `proxy-check` command, run as a user runs it, with a controlled environment.

use std::process::{Command, Output};

const CANARY: &str = "s3cret-Canary";

fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proxy-check"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run proxy-check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

#[test]
fn json_route_for_a_named_exchange_without_the_password() {
    let url = format!("socks5://u:{CANARY}@p:1080");
    let out = run(
        &["--json", "binance"],
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", &url),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
    assert!(!stdout.contains("secret") && !stderr.contains("secret"));
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("exactly one JSON object");
    assert_eq!(json["enabled"], true);
    let route = &json["routes"]["binance"]["http"];
    assert_eq!(route["username"], "u");
    assert_eq!(route["scheme"], "socks5");
    assert_eq!(route["host"], "p");
    assert_eq!(route["port"], 1080);
    assert_eq!(route["timeout_seconds"], 30);
    assert_eq!(route["url"], "socks5://u:***@p:1080");
    assert!(json["routes"]["binance"]["websocket"].is_null());
    assert_eq!(json["routes"]["*"]["http"], *route);
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("socks5h://"))
    );
    assert_eq!(json.as_object().unwrap().len(), 4);
    assert!(json["shared"]["url"].is_null(), "nothing shared: {json}");
}

#[test]
fn acceptance_command_shows_the_user_and_never_the_password() {
    // The issue's own command, password `secret`.
    let out = run(
        &["--json", "binance"],
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5://u:secret@p:1080",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains(r#""username":"u""#), "{stdout}");
    assert!(
        !stdout.contains("secret") && !stderr.contains("secret"),
        "{stdout}{stderr}"
    );
}

#[test]
fn non_utf8_arguments_and_flag_values_are_usage_errors() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_proxy-check"))
        .arg(std::ffi::OsStr::from_bytes(b"\xff"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    for args in [&["--json=false"][..], &["--vars=1"][..]] {
        assert_eq!(run(args, &[]).status.code(), Some(2), "{args:?}");
    }
    let out = run(&["--json", "--", "okx"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""okx""#));
}

#[test]
fn a_typo_exits_2_and_suggests_the_name() {
    let out = run(&[], &[("CRYPTOFEED_PROXY_ENABLE", "true")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`CRYPTOFEED_PROXY_ENABLE` (environment)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("did you mean `CRYPTOFEED_PROXY_ENABLED`?"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn table_with_config_file_and_warnings() {
    let dir = std::env::temp_dir().join(format!("proxy-check-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("app.yaml");
    std::fs::write(
        &file,
        format!("app: 1\nproxy:\n  enabled: false\n  exchanges:\n    kraken:\n      websocket:\n        url: socks5h://k:{CANARY}@k:1080\n        timeout_seconds: 9\n"),
    )
    .unwrap();
    let out = run(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("proxies: disabled"), "{stdout}");
    assert!(stdout.contains("kraken"), "{stdout}");
    assert!(
        stdout.contains("disabled (`CRYPTOFEED_PROXY_ENABLED` is not true)"),
        "{stdout}"
    );
    assert!(!stdout.contains(CANARY));

    // Enabled by the environment, over the file; the variable names the same file too.
    let out = run(
        &[],
        &[
            ("CRYPTOFEED_CONFIG", file.to_str().unwrap()),
            ("CRYPTOFEED_PROXY_ENABLED", "yes"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("proxies: enabled"), "{stdout}");
    assert!(
        stdout.contains("socks5h://k:***@k:1080 (timeout 9s)"),
        "{stdout}"
    );
    assert!(!stdout.contains("warnings"), "{stdout}");
    assert!(
        !stdout.contains("http weight budgets"),
        "no budget and no header: no section: {stdout}"
    );
    // A budget without a header: a section with that exchange alone.
    let out = run(
        &[],
        &[("CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP_BUDGET__WEIGHT", "20")],
    );
    let stdout = text(&out.stdout);
    let section = stdout
        .split_once("http weight budgets (weight 0: none):\n")
        .map(|(_, rest)| rest.split("\n\n").next().unwrap_or_default())
        .unwrap_or_else(|| panic!("{stdout}"));
    let rows: Vec<&str> = section.lines().collect();
    assert_eq!(rows.len(), 1, "{section}");
    assert!(rows[0].contains("okx"), "{section}");
    assert!(
        rows[0].contains("weight 20 per 60000 ms per exit"),
        "{section}"
    );
    assert!(rows[0].contains("no header"), "{section}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipv6_proxy_host_is_written_without_brackets() {
    let out = run(
        &["--json"],
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "1"),
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
                "socks5h://[::1]:1080",
            ),
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["routes"]["*"]["websocket"]["host"], "::1");
    assert_eq!(
        json["routes"]["*"]["websocket"]["url"],
        "socks5h://[::1]:1080"
    );
}

#[test]
fn prefix_option() {
    let out = run(
        &["--json", "--prefix", "BOT_PROXY_"],
        &[
            ("BOT_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_ENABLE", "x"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["enabled"], true);
}

#[test]
fn vars_lists_every_name_from_the_schema() {
    let out = run(&["--vars"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for name in [
        "CRYPTOFEED_PROXY_ENABLED\n",
        "CRYPTOFEED_PROXY_SYSTEM\n",
        "CRYPTOFEED_PROXY_DEFAULT\n",
        "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL\n",
        "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__TIMEOUT_SECONDS\n",
        "CRYPTOFEED_PROXY_EXCHANGES__<ID>__HTTP__URL\n",
        "CRYPTOFEED_PROXY_EXCHANGES__<ID>__WEBSOCKET__TIMEOUT_SECONDS\n",
    ] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    assert!(stdout.contains("default: 30"));
    let out = run(&["--vars", "--json", "--prefix", "X_"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        66,
        "ENABLED, SYSTEM, DEFAULT, EXCHANGES, their routes, session and budget knobs, HOSTS, SHARED and RELOAD: {names:?}"
    );
    assert!(names.contains(&"X_SHARED__URL"), "{names:?}");
    assert!(names.contains(&"X_RELOAD__WATCH"), "{names:?}");
    assert!(names.contains(&"X_RELOAD__DEBOUNCE_MS"), "{names:?}");
    assert!(
        names.contains(&"X_EXCHANGES__<ID>__HTTP_BUDGET__USED_WEIGHT_HEADER"),
        "{names:?}"
    );
    assert!(
        names.contains(&"X_EXCHANGES__<ID>__WEBSOCKET_SESSION__PING_INTERVAL_MS"),
        "{names:?}"
    );
    assert!(names.contains(&"X_EXCHANGES__<ID>__HOSTS"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("X_")));
    assert!(names.contains(&"X_SYSTEM"), "{names:?}");
}

#[test]
fn usage_errors_and_invalid_exchange_arguments_exit_2() {
    for args in [&["--nope"][..], &["--config"][..], &["Binance-Futures"][..]] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    let out = run(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--vars"));
}

#[test]
fn every_error_is_printed_with_a_redacted_value() {
    let out = run(
        &["--json"],
        &[
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                &format!("ftp://u:{CANARY}@p:21"),
            ),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "0"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("(2 errors)"), "{stderr}");
    assert!(stderr.contains("ftp://u:***@p:21"), "{stderr}");
    assert!(!stderr.contains(CANARY));
    assert!(out.stdout.is_empty());
}

#[test]
fn options_that_belong_to_another_mode_are_usage_errors() {
    for args in [
        &["--ca", "ca.pem"][..],
        &["--vars", "--config", "x.yaml"][..],
        &["--vars", "--probe", "https://x/"][..],
        &["--vars", "binance"][..],
        &["--vars", "--shared"][..],
        &["--shared=yes"][..],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(text(&out.stderr).contains("usage:"), "{args:?}");
    }
}

#[test]
fn json_names_the_source_of_every_route_from_a_file_and_variables() {
    let dir = std::env::temp_dir().join(format!("proxy-check-sources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("app.yaml");
    std::fs::write(
        &file,
        "app: 1\nproxy:\n  enabled: true\n  default:\n    websocket:\n      url: socks5h://ws:1080\n  exchanges:\n    kraken:\n      http:\n        url: http://k:8080\n        timeout_seconds: 9\n",
    )
    .unwrap();
    let out = run(
        &["--json", "--config", file.to_str().unwrap()],
        &[
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://env:1080"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__TIMEOUT_SECONDS",
                "12",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = file.display();
    let source = |exchange: &str, kind: &str| json["routes"][exchange][kind]["source"].clone();
    assert_eq!(
        source("*", "http"),
        "`CRYPTOFEED_PROXY_DEFAULT__HTTP__URL` (environment)"
    );
    assert_eq!(
        source("*", "websocket"),
        format!("{file}:6: `proxy.default.websocket.url`").as_str()
    );
    assert_eq!(
        source("kraken", "http"),
        format!(
            "{file}:10: `proxy.exchanges.kraken.http.url`; timeout_seconds: `CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__TIMEOUT_SECONDS` (environment)"
        )
        .as_str()
    );
    assert_eq!(source("kraken", "websocket"), source("*", "websocket"));
    // The rest of the schema is as it was: seven keys per ROUTE.
    assert_eq!(
        json["routes"]["kraken"]["http"].as_object().unwrap().len(),
        7
    );

    let table = text(&run(&["--config", file.to_string().as_str()], &[]).stdout);
    assert!(table.contains("where each route is set:"), "{table}");
    assert!(
        table.contains(&format!("{file}:10: `proxy.exchanges.kraken.http.url`")),
        "{table}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unreadable_ca_file_is_a_usage_error() {
    let out = run(
        &[
            "--probe",
            "https://127.0.0.1:1/",
            "--ca",
            "/nonexistent/ca.pem",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--ca /nonexistent/ca.pem"),
        "{}",
        text(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("proxy-check-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "no certificate here").unwrap();
    let out = run(
        &[
            "--probe",
            "https://127.0.0.1:1/",
            "--ca",
            not_pem.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no certificate found"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_shows_a_pool_as_its_first_member_with_strategy_and_members() {
    let urls = format!(r#"["socks5h://u:{CANARY}@a:1080", "direct://"]"#);
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
            urls.as_str(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__STRATEGY",
            "round_robin",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
            "7",
        ),
    ];
    let out = run(&["--json", "binance"], &vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains(CANARY), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let route = &json["routes"]["binance"]["http"];
    let var = "`CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS` (environment";
    // The ROUTE fields describe the first member.
    assert_eq!(route["url"], "socks5h://u:***@a:1080");
    assert_eq!(route["scheme"], "socks5h");
    assert_eq!(route["host"], "a");
    assert_eq!(route["port"], 1080);
    assert_eq!(route["username"], "u");
    assert_eq!(route["timeout_seconds"], 7);
    assert_eq!(route["strategy"], "round_robin");
    assert_eq!(route.as_object().unwrap().len(), 9, "{route:#}");
    let members = route["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["url"], "socks5h://u:***@a:1080");
    assert_eq!(members[0]["host"], "a");
    assert!(
        members[0]["source"].as_str().unwrap().starts_with(var),
        "{:#}",
        members[0]
    );
    assert!(
        members[0].get("timeout_seconds").is_none(),
        "{:#}",
        members[0]
    );
    assert_eq!(members[0].as_object().unwrap().len(), 6, "{:#}", members[0]);
    assert_eq!(members[1]["url"], "direct://");
    assert_eq!(members[1]["scheme"], "direct");
    assert!(members[1]["host"].is_null() && members[1]["port"].is_null());

    // A route with one `url` has neither key, as before pools.
    let single = run(
        &["--json", "okx"],
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://a:1"),
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
    let route = json["routes"]["okx"]["http"].as_object().unwrap();
    assert!(!route.contains_key("strategy") && !route.contains_key("members"));

    // The table shows the pool and its strategy.
    let table = text(&run(&["binance"], &vars).stdout);
    assert!(table.contains("round_robin"), "{table}");
    assert!(
        table.contains("socks5h://u:***@a:1080") && table.contains("direct://"),
        "{table}"
    );
    assert!(!table.contains(CANARY));
}

#[test]
fn only_the_settings_variables_are_read_from_the_process() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let not_utf8 = OsStr::from_bytes(b"caf\xe9");
    let check = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_proxy-check"))
            .env_clear()
            .env("CRYPTOFEED_PROXY_ENABLED", "true")
            .env(name, not_utf8)
            .output()
            .expect("run proxy-check")
    };
    // Another program's variable, whatever its value, is none of the settings' business.
    let out = check("LANGUAGE_OF_SOMETHING_ELSE");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A setting's value that is not UTF-8 is an error naming it.
    let out = check("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL");
    assert_ne!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "`CRYPTOFEED_PROXY_DEFAULT__HTTP__URL` (environment): value is not valid UTF-8"
        ),
        "{stderr}"
    );
}

#[test]
fn settings_that_send_everything_direct_unsaid_are_warned_about() {
    let dir = std::env::temp_dir().join(format!("proxy-check-inert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, contents) in [
        ("empty.yaml", ""),
        ("bare.yaml", "proxy:\n"),
        ("app.yaml", "app: 1\n"),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, contents).unwrap();
        let out = run(&["--json", "--config", file.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        let warnings = json["warnings"].to_string();
        assert!(
            warnings.contains("gives no proxy setting (no `proxy:` section, or nothing under it)"),
            "{name}: {warnings}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let out = run(&["--json"], &[("CRYPTOFEED_PROXY_ENABLED", "true")]);
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        json["warnings"][0],
        "proxies are enabled (`CRYPTOFEED_PROXY_ENABLED`) but no route is configured: every connection goes direct"
    );
}

#[test]
fn every_member_of_a_pool_is_warned_about_and_a_direct_first_member_has_no_host() {
    let urls = r#"["direct://","socks5://a:1080","socks5h://b:1080","socks4://u@c:1080"]"#;
    let out = run(
        &["--json", "binance"],
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS", urls),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let route = &json["routes"]["binance"]["http"];
    assert_eq!(route["url"], "direct://");
    assert_eq!(route["scheme"], "direct");
    assert!(
        route["host"].is_null() && route["port"].is_null(),
        "{route:#}"
    );
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            "binance http (direct://): a direct:// member connects from this host's own address, not through a proxy: the exchange sees that address",
            "binance http (socks5://a:1080): socks5:// resolves the target's name locally, so local DNS sees which exchange is used; use socks5h:// to let the proxy resolve it",
            "binance http (socks4://u@c:1080): socks4:// resolves the target's name locally, so local DNS sees which exchange is used; use socks4a:// to let the proxy resolve it",
        ]
    );
}

#[test]
fn an_exchange_id_argument_that_is_a_url_is_not_echoed_with_its_password() {
    let out = run(&[&format!("socks5://u:{CANARY}@p:1080")], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains(CANARY), "{stderr}");
    assert!(
        stderr.contains("exchange id `socks5://***@p:1080` (argument)"),
        "{stderr}"
    );
}

#[test]
fn a_probe_url_is_never_printed_with_its_secrets() {
    let token = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81";
    for url in [
        format!("https://u:pa/ss-{CANARY}@127.0.0.1:9/x"),
        format!("https://u:pa?{CANARY}@127.0.0.1:9/x"),
        format!("https://u:pa#{CANARY}@127.0.0.1:9/x"),
        format!("https://u:1234/ss-{CANARY}@127.0.0.1:9/x"),
        format!("wss://127.0.0.1:9/ws/{token}"),
    ] {
        for json in [false, true] {
            let mut args = vec!["--probe", url.as_str()];
            if json {
                args.push("--json");
            }
            let out = run(&args, &[]);
            let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(!shown.contains(CANARY) && !shown.contains("ss-"), "{shown}");
            assert!(!shown.contains(token), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}

#[test]
fn routes_of_the_system_s_proxy_variables_name_the_variable_as_their_source() {
    let out = run(
        &["--json", "binance"],
        &[
            ("HTTPS_PROXY", "http://u:s3cret-Canary@corp-proxy:3128"),
            ("NO_PROXY", "localhost"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("s3cret"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let route = &json["routes"]["binance"]["http"];
    assert_eq!(route["url"], "http://u:***@corp-proxy:3128");
    assert_eq!(
        route["source"],
        "`HTTPS_PROXY` (environment, the system's proxy variable, for https:// and wss:// targets; NO_PROXY=localhost goes direct)"
    );

    assert_eq!(
        json["routes"]["*"]["websocket"]["url"],
        "http://u:***@corp-proxy:3128"
    );
    // An explicit setting wins over the variable.
    let out = run(
        &["--json"],
        &[
            ("HTTPS_PROXY", "http://corp-proxy:3128"),
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://own:1080"),
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(json["routes"]["*"]["http"]["url"], "socks5h://own:1080");
    assert_eq!(
        json["routes"]["*"]["websocket"]["url"],
        "http://corp-proxy:3128"
    );
    // Only HTTP_PROXY: shown, for the targets it serves.
    let out = run(&["--json"], &[("http_proxy", "http://corp-proxy:3128")]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["routes"]["*"]["http"]["url"], "http://corp-proxy:3128");
    assert_eq!(
        json["routes"]["*"]["http"]["source"],
        "`http_proxy` (environment, the system's proxy variable, for http:// and ws:// targets)"
    );
    // Both, different: the one shown names the other.
    let out = run(
        &["--json"],
        &[
            ("HTTPS_PROXY", "http://s:3128"),
            ("HTTP_PROXY", "http://u:s3cret@p:3128"),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("s3cret"), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        json["routes"]["*"]["websocket"]["source"],
        "`HTTPS_PROXY` (environment, the system's proxy variable, for https:// and wss:// targets; http:// and ws:// targets take `HTTP_PROXY`=http://u:***@p:3128)"
    );
    // ALL_PROXY alone serves both.
    let out = run(&["--json"], &[("ALL_PROXY", "socks5h://all:1080")]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["routes"]["*"]["http"]["source"],
        "`ALL_PROXY` (environment, the system's proxy variable, for every target)"
    );
}

#[test]
fn hosts_are_shown_per_exchange_and_a_probe_says_which_route_its_url_takes() {
    let vars = [
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HOSTS",
            r#"["127.0.0.1", "*.binance.com"]"#,
        ),
        ("CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__URL", "direct://"),
    ];
    let out = run(&[], &vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("hosts routed by host (the default route takes every other):\n  binance  127.0.0.1 *.binance.com"),
        "{stdout}"
    );
    let out = run(&["--json"], &vars);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["routes"]["binance"]["hosts"],
        serde_json::json!(["127.0.0.1", "*.binance.com"])
    );
    assert!(json["routes"]["kraken"].get("hosts").is_none(), "{json}");
    // Port 9 (discard) is closed on loopback: the probes fail, the routing is shown.
    for (url, routed) in [
        (
            "http://127.0.0.1:9/x",
            "routed by host: binance (its hosts claim it)",
        ),
        (
            "http://localhost:9/x",
            "routed by host: the default route (no exchange claims its host)",
        ),
    ] {
        let out = run(&["--probe", url], &vars);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(routed), "{stdout}");
    }
    let out = run(&["--probe", "http://127.0.0.1:9/x", "--json"], &vars);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["probe"]["by_host"], "binance", "{json}");
}

#[test]
fn shared_shows_the_store_or_that_there_is_none_and_never_its_password() {
    let out = run(&["--shared"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("shared state: none (each process keeps its own budgets and cooling)"),
        "{shown}"
    );
    assert!(
        shown.contains("shared store: none configured (shared.url)"),
        "{shown}"
    );

    // A store that cannot be reached (nothing listens on port 1).
    let url = format!("redis://feed:{CANARY}@127.0.0.1:1/0");
    let vars = [
        ("CRYPTOFEED_PROXY_SHARED__URL", url.as_str()),
        ("CRYPTOFEED_PROXY_SHARED__PROCESSES", "3"),
    ];
    let out = run(&["--shared"], &vars);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "{stdout}{stderr}"
    );
    if stderr.contains("this build has no Redis client") {
        // proxy-runtime built without its `redis` feature: the settings are refused.
        assert_eq!(out.status.code(), Some(2));
    } else {
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.contains("shared state: redis://feed:***@127.0.0.1:1/0, prefix cryptofeed-proxy, 3 processes expected per exit, 250 ms per call"),
            "{stdout}"
        );
        assert!(
            stdout.contains("FAILED  the shared store cannot be reached"),
            "{stdout}"
        );
        assert!(
            stdout.contains("direct  no weight budget; state unknown"),
            "{stdout}"
        );
    }
}

#[test]
fn diff_prints_what_reloading_a_file_would_change_and_exits_2_when_it_does_not_load() {
    let dir = std::env::temp_dir().join(format!("proxy-check-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let current = write(
        "current.yaml",
        "proxy:\n  enabled: true\n  exchanges:\n    binance:\n      http:\n        url: http://desk:old-s3cret@squid:3128\n",
    );
    let next = write(
        "next.yaml",
        "proxy:\n  enabled: true\n  exchanges:\n    binance:\n      http:\n        url: http://desk:new-s3cret@squid:3128\n    okx:\n      websocket:\n        url: socks5h://okx-proxy:1080\n",
    );
    let broken = write(
        "broken.yaml",
        "proxy:\n  enabled: true\n  exchanges:\n    binance:\n      http:\n        url: http://desk:new-s3cret@squid:3128\n        timeout_seconds: 0\n",
    );

    let out = run(&["--config", &current, "--diff", &next], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert_eq!(
        shown,
        "binance http changed (credentials or CONNECT headers): http://desk:***@squid:3128 (timeout 30s) -> http://desk:***@squid:3128 (timeout 30s)\n\
         okx websocket added (route): direct -> socks5h://okx-proxy:1080 (timeout 30s)\n"
    );

    let out = run(&["--config", &current, "--diff", &next, "--json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["routes"][1]["exchange"], "okx");
    assert_eq!(json["routes"][1]["change"], "added");
    assert_eq!(
        json["routes"][0]["what"][0],
        "credentials or CONNECT headers"
    );

    let out = run(&["--config", &current, "--diff", &current], &[]);
    assert_eq!(text(&out.stdout), "reloading it changes nothing\n");

    // The file read now comes from CRYPTOFEED_CONFIG when --config is not given.
    let out = run(&["--diff", &next], &[("CRYPTOFEED_CONFIG", &current)]);
    assert!(
        text(&out.stdout).starts_with("binance http changed"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["--config", &current, "--diff", &broken], &[]);
    assert_eq!(out.status.code(), Some(2));
    let errors = text(&out.stderr);
    assert!(errors.contains("does not load (1 error)"), "{errors}");
    assert!(errors.contains("broken.yaml:7"), "{errors}");
    assert!(out.stdout.is_empty());

    // A file a reload would refuse: it gives no setting, and would turn every route direct.
    let empty = write("empty.yaml", "# nothing yet\n");
    let out = run(&["--config", &current, "--diff", &empty], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("a reload refuses"),
        "{}",
        text(&out.stderr)
    );

    // Settings in force that do not load: every route of the file is a change.
    let out = run(&["--config", &broken, "--diff", &next], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("note: the settings in force now do not load"),
        "{shown}"
    );
    assert!(
        shown.contains("fails (the settings did not load) -> "),
        "{shown}"
    );

    for other in [
        &["--vars"][..],
        &["--probe", "https://127.0.0.1/"],
        &["--ca", "ca.pem"],
        &["--shared"],
        &["binance"],
    ] {
        let mut args = vec!["--diff", next.as_str()];
        args.extend_from_slice(other);
        let out = run(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{other:?}");
        assert!(text(&out.stderr).contains("--diff compares"), "{other:?}");
    }

    for out in [
        run(&["--config", &current, "--diff", &next], &[]),
        run(&["--config", &current, "--diff", &next, "--json"], &[]),
        run(&["--config", &current, "--diff", &broken], &[]),
    ] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains("s3cret"), "{all}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
