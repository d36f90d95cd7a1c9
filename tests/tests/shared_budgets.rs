//! One weight budget shared by several processes through a real `redis-server` on
//! loopback (`proxy_tests::redis`), against a local exchange that counts weight per client
//! IP in a sliding window and answers 429 past its limit (`proxy_tests::weighing`).
//! The processes are the `shared_budget_client` program, started by the tests; the
//! failure tests run one client in the test process, to read its logs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_runtime::{HttpClient, ProxyInjector, ProxySettings};
use proxy_tests::origin::{Endpoint, serve_http_with};
use proxy_tests::redis::{RedisClient, RedisServer};
use proxy_tests::weighing::{Limiter, USED};

/// The settings of a direct `binance` route with a budget of `weight` per `window_ms`,
/// read from the exchange's header, shared through `redis_url` under `prefix` by
/// `processes` processes.
fn vars(
    redis_url: &str,
    prefix: &str,
    weight: u32,
    window_ms: u64,
    processes: u32,
) -> Vec<(String, String)> {
    [
        ("CRYPTOFEED_PROXY_SYSTEM", "false".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
            weight.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WINDOW_MS",
            window_ms.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER",
            USED.to_owned(),
        ),
        ("CRYPTOFEED_PROXY_SHARED__URL", redis_url.to_owned()),
        ("CRYPTOFEED_PROXY_SHARED__PREFIX", prefix.to_owned()),
        ("CRYPTOFEED_PROXY_SHARED__PROCESSES", processes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The exchange, limiting each IP to `limit` per `window`, served over plain HTTP.
async fn exchange(limit: u32, window: Duration) -> (Arc<Limiter>, Endpoint, String) {
    let limiter = Limiter::new(limit, window);
    let endpoint = serve_http_with(limiter.handler()).await;
    let url = format!("http://127.0.0.1:{}/w", endpoint.port());
    (limiter, endpoint, url)
}

/// The weight leased or held in the store for every exit under `prefix`, by summing the
/// members (`ID:WEIGHT`) of its weight keys.
fn held(redis: &RedisClient, prefix: &str) -> u32 {
    let keys = redis
        .command(&["KEYS", &format!("{prefix}:weight:*")])
        .expect("KEYS");
    keys.iter()
        .flat_map(|key| redis.command(&["ZRANGE", key, "0", "-1"]).expect("ZRANGE"))
        .map(|member| {
            member
                .rsplit_once(':')
                .and_then(|(_, w)| w.parse::<u32>().ok())
                .unwrap_or_else(|| panic!("a member that is not ID:WEIGHT: {member}"))
        })
        .sum()
}

/// One `shared_budget_client` process's counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ok: usize,
    limited: usize,
    refused: usize,
    failed: usize,
}

fn parse_counts(line: &str) -> Counts {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = |name: &str| -> usize {
        let i = words
            .iter()
            .position(|w| *w == name)
            .unwrap_or_else(|| panic!("no {name} in {line:?}"));
        words[i + 1].parse().expect("a count")
    };
    Counts {
        ok: at("ok"),
        limited: at("limited"),
        refused: at("refused"),
        failed: at("failed"),
    }
}

/// Runs `processes` clients at once with `vars`, each sending to `url` for `seconds`
/// with `concurrency` tasks; their counts and logs.
async fn run_processes(
    processes: usize,
    vars: &[(String, String)],
    url: &str,
    seconds: f64,
    concurrency: usize,
) -> Vec<(Counts, String)> {
    let mut children = Vec::new();
    for _ in 0..processes {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_shared_budget_client"));
        command
            .args([url, &seconds.to_string(), &concurrency.to_string()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true);
        children.push(command.output());
    }
    let mut results = Vec::new();
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs_f64(seconds + 60.0), child)
            .await
            .expect("the process ends")
            .expect("the process runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout}\n{stderr}");
        results.push((parse_counts(&stdout), stderr));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_spend_one_budget_the_exchange_never_answers_429_and_it_is_used() {
    let redis = RedisServer::start();
    // 200 per second per IP: every process leaves from 127.0.0.1.
    let (limiter, _endpoint, url) = exchange(200, Duration::from_secs(1)).await;
    let mut vars = vars(&redis.url(None), "four", 200, 1000, 4);
    // Four processes and this test on two cores: a generous deadline, so that the store
    // is not taken for down when the machine is slow.
    vars.push((
        "CRYPTOFEED_PROXY_SHARED__TIMEOUT_MS".to_owned(),
        "2000".to_owned(),
    ));
    // The store never holds more than the budget, leased and spent together.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        let redis = redis.client();
        std::thread::spawn(move || {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(held(&redis, "four"));
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        })
    };
    let results = run_processes(4, &vars, &url, 5.0, 8).await;
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let most_held = watcher.join().unwrap();

    let total: usize = results.iter().map(|(c, _)| c.ok).sum();
    for (counts, logs) in &results {
        assert_eq!(counts.limited, 0, "{counts:?}\n{logs}");
        assert_eq!(counts.failed, 0, "{counts:?}\n{logs}");
        assert!(
            counts.refused <= 8,
            "only at the end, a turn past the run's end: {counts:?}"
        );
        assert!(counts.ok > 0, "every process had its turn: {counts:?}");
        assert!(
            !logs.contains("shared store failed"),
            "the store answered throughout:\n{logs}"
        );
    }
    assert_eq!(limiter.over(), 0, "the exchange never answered 429");
    assert_eq!(limiter.answered(), total);
    assert!(
        most_held > 0 && most_held <= 200,
        "the store held at most the budget: {most_held}"
    );
    // Throughput: over the seconds every process ran at full speed (after the first and
    // before the last), within 10% of the budget of 200 per second.
    let arrivals = limiter.arrivals();
    let first = arrivals[0];
    let (from, to) = (
        first + Duration::from_secs(1),
        first + Duration::from_secs(4),
    );
    let steady = arrivals.iter().filter(|t| **t >= from && **t < to).count();
    assert!(
        (540..=600).contains(&steady),
        "{steady} requests answered in 3 s of a budget of 200 per second (total {total})"
    );
}

/// The `binance` client of the test process, sharing through `redis_url`.
fn client(
    redis_url: &str,
    prefix: &str,
    weight: u32,
    window_ms: u64,
    processes: u32,
) -> HttpClient {
    let settings = ProxySettings::loader()
        .env_vars(vars(redis_url, prefix, weight, window_ms, processes))
        .load()
        .unwrap();
    ProxyInjector::new(settings).http_client("binance")
}

/// Sends requests through `client` one after another for `run`, each within 5 s; how many
/// were answered 200. Every request is answered: none fails or waits past its deadline.
async fn send_for(client: &HttpClient, url: &str, run: Duration) -> usize {
    let end = Instant::now() + run;
    let mut ok = 0;
    while Instant::now() < end {
        let started = Instant::now();
        let response = client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("a request failed: {e}"));
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(2));
        ok += 1;
    }
    ok
}

#[tokio::test]
async fn redis_killed_mid_run_each_process_spends_its_share_warns_once_and_shares_again_when_it_returns()
 {
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    let mut redis = RedisServer::start();
    let (limiter, _endpoint, url) = exchange(100_000, Duration::from_secs(1)).await;
    // A budget of 100 per second, shared by 4: a quarter of it while Redis is away.
    let client = client(&redis.url(None), "outage", 100, 1000, 4);

    let shared = send_for(&client, &url, Duration::from_millis(1500)).await;
    assert!(
        shared > 100,
        "alone, the process spends the whole budget: {shared}"
    );
    assert!(
        held(&redis.client(), "outage") > 0,
        "leases are in the store"
    );

    redis.kill();
    let killed = Instant::now();
    let during = send_for(&client, &url, Duration::from_secs(3)).await;
    // A quarter of 100 per second: about 75 in 3 s; at most one window's share more for
    // the edges of the windows (and what was leased before the kill, spent by then).
    assert!(
        (25..=25 * 3 + 25).contains(&during),
        "{during} requests in 3 s on the fallback rule of 25 per second"
    );
    let text = logs.text();
    assert_eq!(
        text.matches("the shared store failed").count(),
        1,
        "warned once per outage:\n{text}"
    );
    assert!(killed.elapsed() < Duration::from_secs(5));

    redis.restart();
    let after = send_for(&client, &url, Duration::from_secs(3)).await;
    assert!(
        after > 150,
        "sharing resumed with the whole budget: {after}"
    );
    assert!(
        held(&redis.client(), "outage") > 0,
        "leases are in the store again"
    );
    let text = logs.text();
    assert!(text.contains("the shared store answers again"), "{text}");
    assert_eq!(text.matches("the shared store failed").count(), 1, "{text}");
    assert_eq!(limiter.over(), 0);
}

#[tokio::test]
async fn a_redis_with_a_password_is_shared_through_and_a_wrong_one_is_a_typed_error_never_printed()
{
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    let redis = RedisServer::start_with(Some("right-s3cret"));
    let (_limiter, _endpoint, url) = exchange(100_000, Duration::from_secs(1)).await;

    let good = client(&redis.url(Some("right-s3cret")), "auth", 100, 1000, 2);
    assert!(send_for(&good, &url, Duration::from_millis(300)).await > 0);
    assert!(
        held(&redis.client(), "auth") > 0,
        "leased with the password"
    );

    let bad = client(&redis.url(Some("wrong-s3cret")), "badauth", 100, 1000, 2);
    let sent = send_for(&bad, &url, Duration::from_millis(500)).await;
    assert!(sent > 0, "requests go on, on the fallback rule");
    assert_eq!(held(&redis.client(), "badauth"), 0, "nothing was leased");
    let text = logs.text();
    assert!(
        text.contains("the shared store refused the credentials of its URL"),
        "{text}"
    );
    assert!(text.contains("redis://:***@127.0.0.1"), "{text}");
    for secret in ["right-s3cret", "wrong-s3cret"] {
        assert!(!text.contains(secret), "a password was printed:\n{text}");
    }
}

/// An exchange that answers every request 200, but one request through `banned` (the
/// `nth` from it) 418 with `Retry-After: SECONDS`; it records when each request came and
/// from where, and when the ban was sent.
struct Banning {
    seen: std::sync::Mutex<Vec<(Instant, std::net::IpAddr)>>,
    banned_at: std::sync::Mutex<Option<Instant>>,
}

impl Banning {
    fn handler(
        self: &Arc<Self>,
        banned: std::net::IpAddr,
        nth: usize,
        seconds: u64,
    ) -> proxy_tests::origin::Handler {
        let me = self.clone();
        Arc::new(move |request: &proxy_tests::origin::Received| {
            let now = Instant::now();
            let peer = request.peer.ip();
            let mut seen = me.seen.lock().unwrap();
            seen.push((now, peer));
            let from_banned = seen.iter().filter(|(_, p)| *p == banned).count();
            let mut response = http::Response::new(proxy_tests::origin::full("{}"));
            if peer == banned && from_banned == nth {
                *me.banned_at.lock().unwrap() = Some(now);
                *response.status_mut() = http::StatusCode::IM_A_TEAPOT;
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            response
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_418_seen_by_one_process_stops_every_process_sending_through_that_exit_until_it_ends() {
    let redis = RedisServer::start();
    let banned: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let banning = Arc::new(Banning {
        seen: std::sync::Mutex::default(),
        banned_at: std::sync::Mutex::default(),
    });
    let endpoint = serve_http_with(banning.handler(banned, 200, 3)).await;
    let url = format!("http://127.0.0.1:{}/w", endpoint.port());
    // A pool of two exits (source addresses) with a budget that never binds: only the
    // ban holds requests back.
    // A window of 8 s: a lease is spent from for 1 s, so that only the channel tells
    // the other processes of the ban in time (a new lease would be refused).
    let mut vars = vars(&redis.url(None), "ban", 1_000_000, 8000, 4);
    vars.extend([
        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS".to_owned(),
            r#"["direct://127.0.0.2", "direct://127.0.0.3"]"#.to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_SHARED__TIMEOUT_MS".to_owned(),
            "2000".to_owned(),
        ),
    ]);
    let results = run_processes(4, &vars, &url, 6.0, 4).await;
    for (counts, logs) in &results {
        assert_eq!(counts.failed, 0, "{counts:?}\n{logs}");
    }
    let teapots: usize = results.iter().map(|(c, _)| c.limited).sum();
    assert_eq!(teapots, 1, "the one 418 sent");

    let banned_at = banning.banned_at.lock().unwrap().expect("the 418 was sent");
    let seen = banning.seen.lock().unwrap().clone();
    // Requests on their way when the 418 was sent still arrive; none sent after every
    // process heard of it (a quarter of a second, for a loaded machine), until it ends.
    let quiet_from = banned_at + Duration::from_millis(250);
    let quiet_to = banned_at + Duration::from_millis(2900);
    let during: Vec<_> = seen
        .iter()
        .filter(|(t, peer)| *peer == banned && *t > quiet_from && *t < quiet_to)
        .collect();
    assert!(
        during.is_empty(),
        "{} requests through the banned exit during its ban",
        during.len()
    );
    let moved = seen
        .iter()
        .filter(|(t, peer)| *peer != banned && *t > quiet_from && *t < quiet_to)
        .count();
    assert!(moved > 100, "the traffic moved to the other exit: {moved}");
    let back = seen
        .iter()
        .filter(|(t, peer)| *peer == banned && *t > banned_at + Duration::from_secs(3))
        .count();
    assert!(back > 0, "the exit is used again once its ban ended");
    // Every process heard of it (the one that was answered 418 too, from the channel).
    for (_, logs) in &results {
        assert!(logs.contains("was answered 429 or 418: it cools"), "{logs}");
    }
    assert!(
        redis
            .command(&["PTTL", "ban:cool:{binance:127.0.0.2}"])
            .unwrap()[0]
            .parse::<i64>()
            .unwrap()
            < 0,
        "the cooling key expired with the ban"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_of_fifty_streams_connecting_at_once_keep_to_one_connection_budget() {
    let redis = RedisServer::start();
    // The exchange's side: every connection accepted, when, and kept open. A thread of
    // its own, blocked in accept: a connection is timed as soon as the kernel has it,
    // not when a busy runtime gets to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acceptor = {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept() {
                let mut accepted = accepted.lock().unwrap();
                if accepted.len() == 200 {
                    return;
                }
                accepted.push(Instant::now());
                open.push(stream);
            }
        })
    };
    let vars: Vec<(String, String)> = [
        ("CRYPTOFEED_PROXY_SYSTEM", "false"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__CONNECTS",
            "40",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__WINDOW_MS",
            "500",
        ),
        ("CRYPTOFEED_PROXY_SHARED__URL", &redis.url(None)),
        ("CRYPTOFEED_PROXY_SHARED__PREFIX", "streams"),
        ("CRYPTOFEED_PROXY_SHARED__PROCESSES", "4"),
        ("CRYPTOFEED_PROXY_SHARED__TIMEOUT_MS", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut children = Vec::new();
    for _ in 0..4 {
        let mut command =
            tokio::process::Command::new(env!("CARGO_BIN_EXE_shared_connects_client"));
        command
            .args([url.as_str(), "50"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true);
        children.push(command.output());
    }
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs(60), child)
            .await
            .expect("the process ends")
            .expect("the process runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stdout.trim(), "ok 50 failed 0", "{stderr}");
        assert!(!stderr.contains("shared store failed"), "{stderr}");
    }
    // Wakes the acceptor, which has all 200, to end.
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    acceptor.join().unwrap();
    let mut times = accepted.lock().unwrap().clone();
    times.sort();
    assert_eq!(times.len(), 200);
    // In every window of 500 ms, at most the budget of 40. The budget separates the
    // handshakes of two connections that share a place by the window at least; this side
    // times each when its thread returns from accept, which a loaded machine delays by a
    // few ms now and then: the windows counted are 20 ms shorter for that.
    let most_within = |window: Duration| {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t - times[i] < window)
                    .count()
            })
            .max()
            .unwrap()
    };
    let most = most_within(Duration::from_millis(480));
    assert!(most <= 40, "{most} connections seen within one window");
    assert!(
        most_within(Duration::from_millis(500)) >= 30,
        "the budget is used, not starved"
    );
}

#[tokio::test]
async fn proxy_check_shows_each_exit_s_weight_held_cooling_and_places_and_a_wrong_password() {
    let redis = RedisServer::start_with(Some("check-s3cret"));
    let (_limiter, _endpoint, url) = exchange(100_000, Duration::from_secs(1)).await;
    let mut vars = vars(&redis.url(Some("check-s3cret")), "check", 100, 60_000, 2);
    vars.extend([
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__CONNECTS".to_owned(),
            "7".to_owned(),
        ),
        // Another exchange over a pool, and the system's proxy variables for the rest.
        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__URLS".to_owned(),
            r#"["socks5h://u:p@10.9.9.9:1080", {"url": "direct://", "exit": "nat-gw-1"}]"#
                .to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL".to_owned(),
            "direct://".to_owned(),
        ),
        ("HTTPS_PROXY".to_owned(), "http://10.8.8.8:3128".to_owned()),
    ]);
    vars.retain(|(k, _)| k != "CRYPTOFEED_PROXY_SYSTEM");
    let settings = ProxySettings::loader()
        .env_vars(vars.clone())
        .load()
        .unwrap();
    let client = ProxyInjector::new(settings.clone()).http_client("binance");
    for _ in 0..3 {
        client.get(&url).send().await.unwrap();
    }
    redis
        .command(&[
            "SET",
            "check:cool:{binance:direct}",
            "99999999999999",
            "PX",
            "60000",
        ])
        .unwrap();
    let report = proxy_runtime::check::Report::new(&settings, None, &[], "CRYPTOFEED_PROXY_");
    let state = proxy_runtime::check::shared::shared_state(&settings, &report)
        .await
        .expect("a store is configured");
    assert!(!state.failed());
    let binance = state
        .exits
        .iter()
        .find(|e| e.exchange.as_str() == "binance" && e.exit == "direct")
        .expect("binance's exit");
    assert_eq!(binance.weight_budget, Some(100));
    // Three requests of weight 1 spent, from a lease held whole until it is settled.
    let held = binance.weight_held.unwrap();
    assert!((3..=100).contains(&held), "{held}");
    assert!(binance.cooling_ms.unwrap() > 50_000);
    assert_eq!(binance.connect_places, Some(0));
    // Every exit by its name in the store: a pool's members, and the system's route.
    let exits = |exchange: &str| -> Vec<&str> {
        state
            .exits
            .iter()
            .filter(|e| e.exchange.as_str() == exchange)
            .map(|e| e.exit.as_str())
            .collect()
    };
    assert_eq!(exits("okx"), ["10.9.9.9:1080", "nat-gw-1", "system"]);
    assert_eq!(exits("binance"), ["direct", "system"]);
    assert_eq!(exits("*"), ["system"]);
    let table = proxy_runtime::check::render::shared_table(&state);
    assert!(table.contains("ok  answered in"), "{table}");
    assert!(
        table.contains(&format!("weight {held} of 100 held")),
        "{table}"
    );
    assert!(!table.contains("check-s3cret"), "{table}");

    // A wrong password: a typed error, the password never shown.
    let wrong: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("check-s3cret", "not-the-s3cret")))
        .collect();
    let settings = ProxySettings::loader().env_vars(wrong).load().unwrap();
    let state = proxy_runtime::check::shared::shared_state(&settings, &report)
        .await
        .unwrap();
    assert!(state.failed());
    let table = proxy_runtime::check::render::shared_table(&state);
    let json = proxy_runtime::check::render::json(&state);
    for shown in [&table, &json] {
        assert!(shown.contains("refused the credentials"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

#[test]
fn shared_settings_load_from_yaml_and_variables_and_every_bad_value_names_its_source() {
    let yaml = "proxy:\n  enabled: true\n  shared:\n    url: redis://feed:yaml-s3cret@10.0.0.5:6380/2\n    prefix: desk-a\n    processes: 3\n    timeout_ms: 40\n  exchanges:\n    binance:\n      http:\n        urls:\n          - url: direct://\n            exit: nat-gw-1\n";
    let s = ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .load()
        .unwrap();
    let shared = s.shared();
    assert_eq!(
        shared.url().unwrap().to_string(),
        "redis://feed:***@10.0.0.5:6380/2"
    );
    assert_eq!(
        (shared.prefix(), shared.processes(), shared.timeout()),
        ("desk-a", 3, Duration::from_millis(40))
    );
    assert!(!format!("{s:?}").contains("yaml-s3cret"));
    let route = s
        .get_proxy("binance", proxy_runtime::ConnectionKind::Http)
        .unwrap();
    assert_eq!(route.members()[0].exit(), Some("nat-gw-1"));

    // A variable overrides the file's value, knob by knob.
    let s = ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .env_vars([("CRYPTOFEED_PROXY_SHARED__PROCESSES", "5")])
        .load()
        .unwrap();
    assert_eq!(s.shared().processes(), 5);
    assert_eq!(s.shared().prefix(), "desk-a");

    for (var, value, says) in [
        (
            "CRYPTOFEED_PROXY_SHARED__PROCESSES",
            "0",
            "processes must be at least 1",
        ),
        (
            "CRYPTOFEED_PROXY_SHARED__TIMEOUT_MS",
            "0",
            "timeout_ms must be at least 1",
        ),
        (
            "CRYPTOFEED_PROXY_SHARED__PREFIX",
            "a{b}",
            "prefix must be 1 to 64",
        ),
        (
            "CRYPTOFEED_PROXY_SHARED__URL",
            "http://feed:var-s3cret@h:1",
            "redis:// or rediss://",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
            r#"[{"url": "direct://", "exit": "a b"}]"#,
            "an exit name has 1 to 64",
        ),
    ] {
        let error = ProxySettings::loader()
            .env_vars([(var, value)])
            .load()
            .unwrap_err()
            .to_string();
        assert!(error.contains(var), "{var}: {error}");
        assert!(error.contains(says), "{var}: {error}");
        assert!(!error.contains("var-s3cret"), "{error}");
    }
}

#[tokio::test]
async fn a_redis_that_answers_garbage_is_a_typed_error_and_requests_go_on_by_the_share() {
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    let redis = RedisServer::start();
    let (limiter, _endpoint, url) = exchange(100_000, Duration::from_secs(1)).await;
    // Something that is no lease of this library's, where the leases are kept.
    redis
        .command(&[
            "ZADD",
            "garbage:weight:{binance:direct}",
            "99999999999999",
            "not a lease",
        ])
        .unwrap();
    let client = client(&redis.url(None), "garbage", 100, 1000, 4);
    let sent = send_for(&client, &url, Duration::from_millis(1500)).await;
    // The share of one of 4 processes: 25 per second.
    assert!((10..=25 * 2 + 25).contains(&sent), "{sent}");
    let text = logs.text();
    assert!(
        text.contains("the shared store answered something unexpected"),
        "{text}"
    );
    assert_eq!(
        text.matches("is not this library's: that exit spends its share")
            .count(),
        1,
        "logged once: {text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        !text.contains("the shared store failed"),
        "the store answers: only that exit falls back: {text}"
    );
    assert_eq!(limiter.over(), 0);

    // A cooling key that holds no time is garbage too: a typed error, the share.
    redis
        .command(&["DEL", "garbage:weight:{binance:direct}"])
        .unwrap();
    redis
        .command(&["SET", "garbage2:cool:{binance:direct}", "soon"])
        .unwrap();
    let client = client_with_prefix(&redis, "garbage2");
    assert!(send_for(&client, &url, Duration::from_millis(300)).await > 0);
    assert_eq!(
        logs.text()
            .matches("is not this library's: that exit spends its share")
            .count(),
        2,
        "once per store: {}",
        logs.text()
    );
}

fn client_with_prefix(redis: &RedisServer, prefix: &str) -> HttpClient {
    client(&redis.url(None), prefix, 100, 1000, 4)
}

/// Settings of `binance`'s WebSocket route (direct) with a connection budget of `connects`
/// per `window_ms`, shared through `redis` under `prefix` by 2 processes, a route timeout
/// of `timeout_seconds`.
fn connects_injector(
    redis: &RedisServer,
    prefix: &str,
    connects: u32,
    window_ms: u64,
    timeout_seconds: u16,
) -> ProxyInjector {
    let vars = [
        ("CRYPTOFEED_PROXY_SYSTEM", "false".to_owned()),
        ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
            "direct://".to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__TIMEOUT_SECONDS",
            timeout_seconds.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__CONNECTS",
            connects.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__WINDOW_MS",
            window_ms.to_string(),
        ),
        ("CRYPTOFEED_PROXY_SHARED__URL", redis.url(None)),
        ("CRYPTOFEED_PROXY_SHARED__PREFIX", prefix.to_owned()),
        ("CRYPTOFEED_PROXY_SHARED__PROCESSES", "2".to_owned()),
        ("CRYPTOFEED_PROXY_SHARED__TIMEOUT_MS", "200".to_owned()),
    ];
    ProxyInjector::new(ProxySettings::loader().env_vars(vars).load().unwrap())
}

#[tokio::test]
async fn while_redis_is_down_connections_keep_to_the_share_counting_those_made_before() {
    let mut redis = RedisServer::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    // 4 per second for every process; 2 for this one while Redis is down.
    let injector = connects_injector(&redis, "connshare", 4, 1000, 5);
    let dialer = injector.dialer("binance", proxy_runtime::ConnectionKind::Websocket);
    for _ in 0..2 {
        drop(dialer.connect_url(&url).await.unwrap());
    }
    redis.kill();
    // The two made through Redis fill this process's share for a window after they ended.
    let started = Instant::now();
    drop(dialer.connect_url(&url).await.unwrap());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "the share of 2 was spent: {waited:?}"
    );
    // Those two have expired by now: one place of two is taken, the next goes at once.
    let started = Instant::now();
    drop(dialer.connect_url(&url).await.unwrap());
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_place_in_redis_is_held_for_the_longest_attempt_and_a_window_unless_its_end_is_told() {
    let redis = RedisServer::start();
    let hole = proxy_tests::blackhole::Blackhole::on("127.0.0.1:0".parse().unwrap());
    // A route timeout of 2 s and a window of 1 s: a place is held 3 s from its start
    // while its attempt runs (a process that dies then frees it no later).
    let injector = connects_injector(&redis, "hold", 10, 1000, 2);
    let dialer = injector.dialer("binance", proxy_runtime::ConnectionKind::Websocket);
    let url = format!("ws://{}/ws", hole.addr);
    let attempt = tokio::spawn(async move { dialer.connect_url(&url).await });
    let key = "hold:connect:{binance:direct}";
    let deadline = Instant::now() + Duration::from_secs(2);
    let score = loop {
        let places = redis
            .command(&["ZRANGE", key, "0", "-1", "WITHSCORES"])
            .unwrap();
        if let [_, score] = places.as_slice() {
            break score.parse::<i64>().unwrap();
        }
        assert!(Instant::now() < deadline, "no place taken: {places:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let time = redis.command(&["TIME"]).unwrap();
    let now_ms = time[0].parse::<i64>().unwrap() * 1000 + time[1].parse::<i64>().unwrap() / 1000;
    let held = score - now_ms;
    assert!((2_500..=3_100).contains(&held), "held {held} ms from now");
    assert!(
        attempt.await.unwrap().is_err(),
        "the blackhole never answers"
    );
}
