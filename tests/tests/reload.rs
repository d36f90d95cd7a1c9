//! Settings that change while the process runs: a watched file (written in place, renamed
//! over, or swapped as a Kubernetes ConfigMap swaps it), SIGHUP, and `reload_with`; the
//! routes of every handle made before follow, requests under way finish where they
//! started, and a broken file changes nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{
    ConnectionKind, Dialer, HttpClient, ProxyErrorKind as K, ProxyInjector, ProxySettings,
    ReloadError, SessionSettings,
};
use proxy_tests::fake::{FakeProxy, Session};
use proxy_tests::feed::{Feed, tick_number};
use proxy_tests::logs::{capture_global, everything};
use proxy_tests::origin::{Origin, eventually, serve_http_quiet};
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

/// A directory of its own for one test's settings files.
fn settings_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proxy-reload-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Settings that send binance's HTTP traffic through `url`, with the file watched.
fn yaml(url: &str) -> String {
    format!(
        "proxy:\n  enabled: true\n  reload:\n    watch: true\n    debounce_ms: 50\n  exchanges:\n    binance:\n      http:\n        url: {url}\n"
    )
}

/// Puts `text` at `path` as editors and deploy tools do: written beside it, renamed over.
fn replace(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, path).unwrap();
}

/// A settings file in a directory of a test's own, and an injector built from its
/// loader (so that it watches the file when the settings say so), with binance's HTTP
/// dialer. The directory is removed when it is dropped.
struct Watched {
    dir: PathBuf,
    file: PathBuf,
    injector: ProxyInjector,
    dialer: Dialer,
}

impl Watched {
    /// Test `name`'s settings file, written with `text`, and its injector.
    fn start(name: &str, text: &str) -> Self {
        let dir = settings_dir(name);
        let file = dir.join("settings.yaml");
        replace(&file, text);
        let injector = ProxyInjector::from_loader(ProxySettings::loader().yaml_file(&file)).build();
        let dialer = injector.dialer("binance", ConnectionKind::Http);
        Self {
            dir,
            file,
            injector,
            dialer,
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits up to 10 s for `dialer` to take its route through `url`.
async fn until_through(dialer: &Dialer, url: &str) {
    until(&format!("binance's route through {url}"), || {
        dialer.proxy().as_deref() == Some(url)
    })
    .await;
}

/// Settings whose binance route of `kind` (`HTTP` or `WEBSOCKET`) is the pool `urls`,
/// with `knobs` beside it: each a variable's name after `CRYPTOFEED_PROXY_EXCHANGES__BINANCE__`,
/// and its value.
fn binance_pool(kind: &str, urls: &[String], knobs: &[(&str, &str)]) -> ProxySettings {
    let prefix = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__";
    let mut vars = vec![
        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
        (
            format!("{prefix}{kind}__URLS"),
            serde_json::to_string(urls).unwrap(),
        ),
    ];
    vars.extend(
        knobs
            .iter()
            .map(|(name, value)| (format!("{prefix}{name}"), (*value).to_owned())),
    );
    ProxySettings::loader().env_vars(vars).load().unwrap()
}

/// `GET path` on the HTTPS origin listening on `port`, through `client`, in a task of
/// its own: `Ok` when it is answered 200 and its body read.
fn spawn_get(
    client: &HttpClient,
    port: u16,
    path: &str,
) -> tokio::task::JoinHandle<Result<(), proxy_runtime::ProxyError>> {
    let (client, url) = (client.clone(), format!("https://127.0.0.1:{port}{path}"));
    tokio::spawn(async move {
        let response = client.get(url).send().await?;
        assert_eq!(response.status(), 200);
        response.bytes().await?;
        Ok(())
    })
}

/// An injector reading `file`, trusting the test CA.
fn injector_of(file: &Path, ca: &TestCa) -> ProxyInjector {
    ProxyInjector::from_loader(ProxySettings::loader().yaml_file(file))
        .tls_roots(ca.roots())
        .build()
}

/// Waits up to 10 s for `condition`, failing the test with `what` past that.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Requests sent steadily by `tasks` tasks, each one every `every`, until stopped: how
/// many were answered 200, and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &HttpClient, url: &str, tasks: usize, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..tasks)
            .map(|_| {
                let (client, url) = (client.clone(), url.to_owned());
                let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let next = tokio::time::Instant::now() + every;
                        let sent = client.get(&url).timeout(Duration::from_secs(10)).send();
                        match sent.await {
                            Ok(response) if response.status() == 200 => {
                                match response.bytes().await {
                                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                                    Err(e) => {
                                        failures.lock().unwrap().push(e.to_string());
                                        0
                                    }
                                };
                            }
                            Ok(response) => failures
                                .lock()
                                .unwrap()
                                .push(format!("status {}", response.status())),
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                        tokio::time::sleep_until(next).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            answered,
            failures,
            tasks,
        }
    }

    /// Stops the load: the requests answered, and every failure.
    async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.answered.load(Ordering::Relaxed), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_rotated_in_the_file_under_load_fail_no_request() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let squid = RealProxy::squid(true);
    squid.set_users(&[("desk-a", "old-pass-1")]);
    let dir = settings_dir("rotation");
    let file = dir.join("settings.yaml");
    replace(
        &file,
        &yaml(&squid.url("http", Some(("desk-a", "old-pass-1")))),
    );
    let injector = injector_of(&file, &ca);
    let before = injector.settings().unwrap();
    let client = injector.http_client("binance");
    let url = format!("http://127.0.0.1:{}/api/v3/depth", origin.http.port());
    // 16 tasks, each a request every 16 ms: about 1,000 requests a second.
    let load = Load::start(&client, &url, 16, Duration::from_millis(16));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The provider's order: the new password works, the file names it, then the old one
    // is revoked.
    squid.set_users(&[("desk-a", "old-pass-1"), ("desk-b", "new-pass-2")]);
    replace(
        &file,
        &yaml(&squid.url("http", Some(("desk-b", "new-pass-2")))),
    );
    until("the new file in force", || {
        injector.settings().unwrap() != before
    })
    .await;
    squid.set_users(&[("desk-b", "new-pass-2")]);
    // squid asks its helper again once a credential's second is over.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (answered, failures) = load.stop().await;

    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert!(answered > 1_500, "only {answered} answered in 3.5 s");
    // The new connections were made with the new password (squid logs a tunnel when it
    // closes: the client's pooled ones close with it). And the revocation took effect (a
    // check of the setup: without it, no failure above would prove nothing): had a
    // request used the old password after it, that request would have failed.
    drop((client, injector));
    assert!(squid.log_mentions("desk-b").await, "{}", squid.log());
    let stale = ProxySettings::loader()
        .yaml_str(
            "stale.yaml",
            yaml(&squid.url("http", Some(("desk-a", "old-pass-1")))),
        )
        .load()
        .unwrap();
    let err = ProxyInjector::new(stale)
        .http_client("binance")
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::AuthFailed, "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_changes_nothing_is_logged_once_and_a_good_one_applies_later() {
    let logs = capture_global(everything()).expect("alone in its process");
    let watched = Watched::start("broken", &yaml("socks5h://good-proxy.test:1080"));
    let (file, injector, dialer) = (&watched.file, &watched.injector, &watched.dialer);
    let before = injector.settings().unwrap();

    // Line 9 names a scheme there is none of.
    let broken = yaml("socks9://bad-proxy.test:1080");
    replace(file, &broken);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The same bytes again (a deploy tool writing twice): not read again.
    replace(file, &broken);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(injector.settings().unwrap(), before, "nothing changed");
    assert_eq!(
        dialer.proxy().as_deref(),
        Some("socks5h://good-proxy.test:1080")
    );
    let text = logs.text();
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("reload failed"))
        .collect();
    assert_eq!(failed.len(), 1, "logged once: {text}");
    assert!(failed[0].contains("ERROR"), "{}", failed[0]);
    assert!(failed[0].contains("settings.yaml:9"), "{}", failed[0]);
    assert!(failed[0].contains("socks9"), "{}", failed[0]);

    replace(file, &yaml("socks5h://next-proxy.test:1080"));
    until_through(dialer, "socks5h://next-proxy.test:1080").await;
    assert!(logs.text().contains("proxy settings reloaded"));
}

#[tokio::test]
async fn a_file_renamed_over_and_a_configmap_s_link_swap_are_both_noticed() {
    // Renamed over: what `replace` does, as editors and `mv` do.
    let watched = Watched::start("rename", &yaml("socks5h://first.test:1080"));
    let (file, dialer) = (&watched.file, &watched.dialer);
    replace(file, &yaml("socks5h://second.test:1080"));
    until_through(dialer, "socks5h://second.test:1080").await;

    // A ConfigMap: `settings.yaml -> ..data/settings.yaml`, `..data -> ..<version>`; an
    // update writes a new version directory, links `..data_tmp` to it and renames that
    // over `..data`. Nothing named settings.yaml changes in the directory watched.
    let dir = settings_dir("configmap");
    let version = |n: u32, url: &str| {
        let v = dir.join(format!("..2026_12_04_v{n}"));
        std::fs::create_dir(&v).unwrap();
        std::fs::write(v.join("settings.yaml"), yaml(url)).unwrap();
        v
    };
    let v1 = version(1, "socks5h://first.test:1080");
    std::os::unix::fs::symlink(v1.file_name().unwrap(), dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/settings.yaml", dir.join("settings.yaml")).unwrap();
    let injector =
        ProxyInjector::from_loader(ProxySettings::loader().yaml_file(dir.join("settings.yaml")))
            .build();
    let dialer = injector.dialer("binance", ConnectionKind::Http);
    assert_eq!(dialer.proxy().as_deref(), Some("socks5h://first.test:1080"));
    let v2 = version(2, "socks5h://second.test:1080");
    std::os::unix::fs::symlink(v2.file_name().unwrap(), dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    until_through(&dialer, "socks5h://second.test:1080").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sighup_reloads_an_injector_that_asked_for_it() {
    let dir = settings_dir("sighup");
    let file = dir.join("settings.yaml");
    let unwatched = |url: &str| yaml(url).replace("watch: true", "watch: false");
    replace(&file, &unwatched("socks5h://first.test:1080"));
    let injector = ProxyInjector::from_loader(ProxySettings::loader().yaml_file(&file))
        .reload_on_sighup()
        .build();
    let dialer = injector.dialer("binance", ConnectionKind::Http);
    replace(&file, &unwatched("socks5h://second.test:1080"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        dialer.proxy().as_deref(),
        Some("socks5h://first.test:1080"),
        "no watch: nothing until the signal"
    );
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    until_through(&dialer, "socks5h://second.test:1080").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn reload_needs_a_loader_and_reports_what_changed() {
    let settings = |url: &str| {
        ProxySettings::loader()
            .yaml_str("settings.yaml", yaml(url))
            .load()
            .unwrap()
    };
    let injector = ProxyInjector::new(settings("socks5h://first.test:1080"));
    assert!(matches!(injector.reload(), Err(ReloadError::NoLoader)));
    let report = injector.reload_with(settings("socks5h://second.test:1080"));
    assert_eq!(
        report.to_string(),
        "binance http changed (route): socks5h://first.test:1080 (timeout 30s) -> socks5h://second.test:1080 (timeout 30s)"
    );
    assert!(
        injector
            .reload_with(settings("socks5h://second.test:1080"))
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_left_as_it_was_or_through_the_same_proxy_keeps_its_connections_and_another_proxy_makes_new_ones()
 {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (socks, other) = (RealProxy::microsocks(false), RealProxy::microsocks(false));
    let settings = |okx_timeout: u16, binance: &RealProxy, binance_timeout: u16| {
        ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                    binance.url("socks5h", None),
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
                    binance_timeout.to_string(),
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__URL",
                    socks.url("socks5h", None),
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__TIMEOUT_SECONDS",
                    okx_timeout.to_string(),
                ),
            ])
            .load()
            .unwrap()
    };
    let injector = ProxyInjector::builder(settings(10, &socks, 10))
        .tls_roots(ca.roots())
        .build();
    let binance = injector.http_client("binance");
    let url = format!("https://127.0.0.1:{}/api/v3/time", origin.https.port());
    let get = || async {
        let response = binance.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    };
    get().await;
    get().await;
    assert_eq!(origin.https.accepted(), 1, "one pooled connection");
    // okx's route changes; binance's does not.
    let report = injector.reload_with(settings(20, &socks, 10));
    assert_eq!(report.routes().len(), 1, "{report}");
    get().await;
    assert_eq!(origin.https.accepted(), 1, "binance kept its connection");
    // binance's route changes, through the same proxy: its connection goes on.
    injector.reload_with(settings(20, &socks, 15));
    assert_eq!(binance.dialer().timeout(), Duration::from_secs(15));
    get().await;
    assert_eq!(
        origin.https.accepted(),
        1,
        "the same proxy: the same connection"
    );
    // Through another proxy: a new connection, pooled in turn.
    injector.reload_with(settings(20, &other, 15));
    get().await;
    assert_eq!(
        origin.https.accepted(),
        2,
        "a new connection on the new route"
    );
    get().await;
    assert_eq!(origin.https.accepted(), 2, "pooled on the new route");
}

/// Round robin over microsocks `b` and `a` (their connections from 127.0.0.182 and
/// 127.0.0.181), and its binance client (HTTP/1.1): two requests, the second sent while
/// the first (a slow one) is under way, leave a pooled connection through each. Then `b`
/// leaves the route (which has a weight budget when `budget`, and so a connection pool
/// per member): the requests that follow go through `a`'s pooled connection (and, under
/// a budget, `c`'s), none through `b`'s.
async fn a_member_that_stays_keeps_its_pooled_connection(budget: bool) {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let out = |n: u8| Ipv4Addr::new(127, 0, 0, 180 + n);
    let proxies = [1, 2, 3].map(|n| RealProxy::microsocks_from(out(n)));
    let pool_with = |members: &[usize], budget: bool| {
        let urls: Vec<String> = members
            .iter()
            .map(|&n| proxies[n - 1].url("socks5h", None))
            .collect();
        let mut knobs = vec![("HTTP__STRATEGY", "round_robin")];
        if budget {
            knobs.push(("HTTP_BUDGET__WEIGHT", "1000"));
        }
        binance_pool("HTTP", &urls, &knobs)
    };
    let pool = |members: &[usize]| pool_with(members, budget);
    let injector = ProxyInjector::builder(pool(&[2, 1]))
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    let binance = injector.http_client("binance");
    let url = format!("https://127.0.0.1:{}/api/v3/time", origin.https.port());
    let send = || async {
        let response = binance.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response
    };
    // Where a request came from.
    let get = || async {
        send().await.bytes().await.unwrap();
        origin.https.received().pop().unwrap().peer.ip()
    };
    // The first connection (through `b`, first in the list) is busy with a slow
    // request: the second request opens another, through `a`. `b`'s goes back to
    // hyper's pool last, so it is the first handed out again, unless it is retired.
    let slow = spawn_get(&binance, origin.https.port(), "/delay-ms/2000");
    assert!(eventually(|| origin.https.received().len() == 1).await);
    get().await;
    slow.await.unwrap().unwrap();
    let mut seen: Vec<IpAddr> = origin.https.peers();
    seen.sort();
    assert_eq!(seen, [out(1), out(2)].map(IpAddr::V4), "one through each");
    assert_eq!(origin.https.accepted(), 2);

    // `b` leaves; `c` joins. Without a budget, `a`'s pooled connection takes every
    // request; with one, requests take turns between the exits, `a` and `c`.
    let report = injector.reload_with(pool(&[1, 3]));
    assert_eq!(report.routes().len(), 1, "{report}");
    let mut after = Vec::new();
    for _ in 0..4 {
        after.push(get().await);
    }
    assert!(
        !after.contains(&IpAddr::V4(out(2))),
        "nothing more through `b`: {after:?}"
    );
    assert!(after.contains(&IpAddr::V4(out(1))), "{after:?}");
    let through_c = after.contains(&IpAddr::V4(out(3)));
    assert_eq!(through_c, budget, "{after:?}");
    assert_eq!(
        origin.https.accepted(),
        2 + usize::from(through_c),
        "`a`'s pooled connection, again (and one new through `c`)"
    );
    if budget {
        // The budget turned off: the route's pool is `a`'s.
        let before = origin.https.accepted();
        injector.reload_with(pool_with(&[1, 3], false));
        assert_eq!(get().await, IpAddr::V4(out(1)));
        assert_eq!(origin.https.accepted(), before, "`a`'s pooled connection");
    }
    // A route of `a` alone keeps it too.
    let before = origin.https.accepted();
    injector.reload_with(pool(&[1]));
    for _ in 0..2 {
        assert_eq!(get().await, IpAddr::V4(out(1)));
    }
    assert_eq!(
        origin.https.accepted(),
        before,
        "still `a`'s pooled connection"
    );
}

#[tokio::test]
async fn a_member_that_stays_keeps_its_pooled_connection_and_one_removed_carries_nothing_more() {
    a_member_that_stays_keeps_its_pooled_connection(false).await;
}

#[tokio::test]
async fn a_member_that_stays_keeps_its_pooled_connection_in_its_own_pool_under_a_budget() {
    a_member_that_stays_keeps_its_pooled_connection(true).await;
}

/// The (connection, number) of each tick every stream read.
type Ticks = Arc<Mutex<Vec<Vec<(u64, u64)>>>>;

/// Open file descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resident memory of this process, in KiB.
fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_reloads_under_load_fail_no_request_and_leak_nothing() {
    let ca = TestCa::new();
    let socks = RealProxy::microsocks(false);
    let through = |timeout: u16| {
        ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                    socks.url("socks5h", None),
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
                    timeout.to_string(),
                ),
            ])
            .load()
            .unwrap()
    };
    let injector = Arc::new(
        ProxyInjector::builder(through(10))
            .tls_roots(ca.roots())
            .build(),
    );
    let client = injector.http_client("binance");
    // An origin that keeps nothing of what it answers: the memory measured is this
    // library's.
    let quiet = serve_http_quiet().await;
    let url = format!("http://127.0.0.1:{}/api/v3/depth", quiet.port());
    let runtime = tokio::runtime::Handle::current();
    let settle = || async {
        // Idle connections of the pools replaced close once nothing holds them.
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let load = Load::start(&client, &url, 8, Duration::from_millis(8));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (warm, failures) = load.stop().await;
    assert!(failures.is_empty() && warm > 0, "{failures:?}");
    settle().await;
    let (fds, tasks) = (descriptors(), runtime.metrics().num_alive_tasks());

    let load = Load::start(&client, &url, 8, Duration::from_millis(8));
    let mut halfway = 0;
    for n in 0..1_000u16 {
        // Every reload changes binance's route: a new pool each time.
        injector.reload_with(through(10 + n % 2));
        if n == 500 {
            halfway = resident_kib();
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let (answered, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert!(answered > 500, "only {answered} answered");
    let grown = resident_kib().saturating_sub(halfway);
    settle().await;
    let (fds_after, tasks_after) = (descriptors(), runtime.metrics().num_alive_tasks());
    assert!(
        fds_after <= fds + 4,
        "descriptors: {fds} before, {fds_after} after"
    );
    assert!(
        tasks_after <= tasks + 4,
        "tasks: {tasks} before, {tasks_after} after"
    );
    // Measured: under 100 KiB; a route or a pool kept per reload would be megabytes.
    assert!(
        grown < 4 * 1024,
        "resident memory grew {grown} KiB over the last 500 reloads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_under_a_hundred_streams_moves_them_all_without_a_gap_within_the_budget() {
    const STREAMS: usize = 100;
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(100)).await;
    let (first, second) = (
        RealProxy::microsocks_from(Ipv4Addr::new(127, 0, 0, 171)),
        RealProxy::microsocks_from(Ipv4Addr::new(127, 0, 0, 172)),
    );
    let pool = |urls: &[String]| {
        let knobs = [
            ("WEBSOCKET_SESSION__CONNECTS", "30"),
            ("WEBSOCKET_SESSION__WINDOW_MS", "1000"),
        ];
        binance_pool("WEBSOCKET", urls, &knobs)
    };
    let both = pool(&[first.url("socks5h", None), second.url("socks5h", None)]);
    let injector = Arc::new(ProxyInjector::builder(both).tls_roots(ca.roots()).build());
    // Every stream keeps the connection and number of each tick it reads.
    let ticks: Ticks = Arc::new(Mutex::new(vec![Vec::new(); STREAMS]));
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let (injector, url, ticks) = (injector.clone(), feed.url("feed"), ticks.clone());
        tasks.push(tokio::spawn(async move {
            let mut session = injector
                .websocket_session("binance", url)
                .settings(
                    SessionSettings::new()
                        .with_backoff(Duration::from_millis(50), Duration::from_millis(500)),
                )
                .on_connect(|s| async move { s.send(Message::text("subscribe")).await })
                .open()
                .await
                .expect("the session opens");
            while let Some(item) = session.next().await {
                let item = item.expect("no error reaches the reader");
                if let Some(n) = tick_number(&item.message) {
                    ticks.lock().unwrap()[i].push((item.connection, n));
                }
            }
        }));
    }
    let on = |pred: &dyn Fn(u64) -> bool| {
        ticks
            .lock()
            .unwrap()
            .iter()
            .all(|t| t.last().is_some_and(|(c, _)| pred(*c)))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !on(&|c| c == 1) {
        assert!(Instant::now() < deadline, "the streams opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = feed.accepts().len();
    assert!(
        feed.accepts()
            .iter()
            .all(|(_, ip)| *ip == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 171))),
        "failover: every stream on the first member"
    );

    let reloaded = Instant::now();
    let report = injector.reload_with(pool(&[second.url("socks5h", None)]));
    assert_eq!(report.routes().len(), 1, "{report}");
    while !on(&|c| c > 1) {
        assert!(Instant::now() < deadline, "every stream moved");
        for task in &tasks {
            assert!(!task.is_finished(), "no stream failed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let moved = reloaded.elapsed();
    // A few more ticks on the new connections, then the record is read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for task in &tasks {
        task.abort();
    }
    let accepts = feed.accepts();
    let new: Vec<Instant> = accepts[opened..].iter().map(|(t, _)| *t).collect();
    assert!(
        accepts[opened..]
            .iter()
            .all(|(_, ip)| *ip == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 172))),
        "every move went through the member that stayed"
    );
    assert_eq!(new.len(), STREAMS, "one new connection per stream");
    let most = new
        .iter()
        .map(|t| {
            new.iter()
                .filter(|u| **u >= *t && **u < *t + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most <= 30,
        "{most} new connections within a second (budget 30)"
    );
    for (i, stream) in ticks.lock().unwrap().iter().enumerate() {
        for pair in stream.windows(2) {
            assert_eq!(
                pair[1].1,
                pair[0].1 + 1,
                "stream {i}: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    eprintln!("moved in {moved:?}, at most {most} new connections a second");
}

#[tokio::test]
async fn a_file_broken_at_start_is_put_in_force_once_repaired() {
    let logs = capture_global(everything()).expect("alone in its process");
    let watched = Watched::start("repaired", &yaml("socks9://bad-proxy.test:1080"));
    let (file, dialer) = (&watched.file, &watched.dialer);
    assert!(dialer.failure().is_some(), "fails closed while broken");
    // The watch compares the file with what the load read: the same, so the error is
    // not read and logged a second time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = logs.text();
    assert_eq!(text.matches("could not be loaded").count(), 1, "{text}");
    assert!(!text.contains("reload failed"), "{text}");
    replace(file, &yaml("socks5h://good-proxy.test:1080"));
    until_through(dialer, "socks5h://good-proxy.test:1080").await;
    assert!(dialer.failure().is_none());
}

#[tokio::test]
async fn a_file_emptied_or_cut_before_its_section_is_refused_not_turned_direct() {
    let watched = Watched::start("emptied", &yaml("socks5h://good-proxy.test:1080"));
    let (file, injector, dialer) = (&watched.file, &watched.injector, &watched.dialer);
    for cut in ["", "# written next\n", "other_app:\n  key: 1\n"] {
        replace(file, cut);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            dialer.proxy().as_deref(),
            Some("socks5h://good-proxy.test:1080"),
            "{cut:?} changed nothing"
        );
        let err = injector.reload().unwrap_err();
        assert!(matches!(err, ReloadError::Empty(_)), "{err}");
        assert!(err.to_string().contains("enabled: false"), "{err}");
    }
}

/// Settings through `url`, watched with a debounce of `debounce_ms`.
fn yaml_debounced(url: &str, debounce_ms: u64) -> String {
    yaml(url).replace("debounce_ms: 50", &format!("debounce_ms: {debounce_ms}"))
}

#[tokio::test]
async fn a_busy_file_beside_the_settings_does_not_hold_a_reload_back() {
    // A debounce of 1.5 s: were the log's changes counted, the reload would wait for its
    // cap, ten times that, past the 10 s this test waits.
    let watched = Watched::start("busy", &yaml_debounced("socks5h://first.test:1080", 1500));
    let (file, dialer) = (&watched.file, &watched.dialer);
    // A log beside it, written far more often than the debounce.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, log) = (stop.clone(), watched.dir.join("feed.log"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(&log, b"tick\n").unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // The watch is up, and has compared the file with what was loaded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    replace(file, &yaml_debounced("socks5h://second.test:1080", 1500));
    until_through(dialer, "socks5h://second.test:1080").await;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[tokio::test]
async fn a_file_written_in_place_in_pieces_is_read_once_whole() {
    let logs = capture_global(everything()).expect("alone in its process");
    let watched = Watched::start("pieces", &yaml_debounced("socks5h://first.test:1080", 1000));
    let (file, dialer) = (&watched.file, &watched.dialer);
    // A slow writer truncates the file and writes it in 40 pieces, 50 ms apart (2 s in
    // all): the debounce (1 s) waits until it has been quiet, and reads it once, whole.
    let next = yaml_debounced("socks5h://second.test:1080", 1000);
    let writer = {
        let (file, next) = (file.clone(), next.into_bytes());
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut out = std::fs::File::create(&file).unwrap();
            for piece in next.chunks(next.len().div_ceil(40)) {
                out.write_all(piece).unwrap();
                out.flush().unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    until_through(dialer, "socks5h://second.test:1080").await;
    writer.join().unwrap();
    let text = logs.text();
    assert!(
        !text.contains("reload failed"),
        "read before it was whole: {text}"
    );
    assert_eq!(text.matches("proxy settings reloaded").count(), 1, "{text}");
}

#[tokio::test]
async fn a_file_rewritten_through_a_handle_opened_before_the_watch_is_noticed() {
    use std::io::{Seek as _, Write as _};
    let dir = settings_dir("handle");
    let file = dir.join("settings.yaml");
    replace(&file, &yaml("socks5h://first.test:1080"));
    // Opened before the watch starts: the rewrite below makes no event but the file's
    // own changes (no open, no other file), and those alone must start the debounce.
    let mut handle = std::fs::File::options().write(true).open(&file).unwrap();
    let injector = ProxyInjector::from_loader(ProxySettings::loader().yaml_file(&file)).build();
    let dialer = injector.dialer("binance", ConnectionKind::Http);
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.set_len(0).unwrap();
    handle.rewind().unwrap();
    handle
        .write_all(yaml("socks5h://second.test:1080").as_bytes())
        .unwrap();
    handle.flush().unwrap();
    until_through(&dialer, "socks5h://second.test:1080").await;
    drop(handle);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_quiet_settings_file_is_not_read_again() {
    use notify::Watcher as _;
    let watched = Watched::start("quiet", &yaml("socks5h://first.test:1080"));
    // Started, and compared the file once with what it loaded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (events, received) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(events).unwrap();
    watcher
        .watch(&watched.dir, notify::RecursiveMode::NonRecursive)
        .unwrap();
    // Ten debounces of quiet: the watch's own reads must not wake it to read again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let opened = received
        .try_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            matches!(
                e.kind,
                notify::EventKind::Access(notify::event::AccessKind::Open(_))
            )
        })
        .count();
    assert_eq!(
        opened, 0,
        "the settings file was read {opened} times while nothing changed"
    );
}

/// When a reload removes `b` in [`a_connection_made_in_the_background_through_a_member_removed`].
#[derive(Clone, Copy, PartialEq)]
enum Removed {
    /// Over 2 s after the connection was made and pooled.
    Later,
    /// While the connection is being made.
    WhileMade,
    /// Just after it was made and pooled, leaving `a` alone.
    JustAfter,
}

/// A connection hyper-util finishes in the background through `b`, which no request
/// takes, and a reload that removes `b` (`when`). No request goes through it, but when
/// `b` is removed just after the connection was made: then one request may (the
/// connection is left 2 s to the request it may have been made for), and no other.
async fn a_connection_made_in_the_background_through_a_member_removed(when: Removed) {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let out = |n: u8| Ipv4Addr::new(127, 0, 0, 210 + 3 * (when as u8) + n);
    let [a, c] = [1, 3].map(|n| RealProxy::microsocks_from(out(n)));
    // `b` holds every handshake until released.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let b = held_socks5(origin.https.addr, release.clone()).await;
    let b_url = format!("socks5h://{}", b.authority());
    let pool = |urls: &[String]| binance_pool("HTTP", urls, &[("HTTP__STRATEGY", "round_robin")]);
    let (a_url, c_url) = (a.url("socks5h", None), c.url("socks5h", None));
    let injector = ProxyInjector::builder(pool(&[a_url.clone(), b_url]))
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    let binance = injector.http_client("binance");
    let get = |path: &str| spawn_get(&binance, origin.https.port(), path);
    // A slow request through `a`; the next one, while it runs, connects through `b`,
    // which holds it: when the slow one is done, the next takes `a`'s connection, and
    // `b`'s, released, is pooled by hyper-util without having carried a request.
    let slow = get("/delay-ms/3000");
    assert!(eventually(|| origin.https.received().len() == 1).await);
    let next = get("/next");
    assert!(
        eventually(|| b.accepted() == 1).await,
        "the next one waits on `b`"
    );
    slow.await.unwrap().unwrap();
    next.await.unwrap().unwrap();
    let reload = || match when {
        Removed::JustAfter => injector.reload_with(pool(std::slice::from_ref(&a_url))),
        _ => injector.reload_with(pool(&[a_url.clone(), c_url.clone()])),
    };
    if when == Removed::WhileMade {
        reload();
    }
    release.add_permits(1);
    assert!(eventually(|| origin.https.accepted() == 2).await);
    // Time for hyper-util to put it in its pool (idle, it is the first handed out), and,
    // but just after, for it to be older than the 2 s a connection is left for the
    // request it may have been made for.
    if when == Removed::JustAfter {
        tokio::time::sleep(Duration::from_millis(300)).await;
    } else {
        tokio::time::sleep(Duration::from_millis(2300)).await;
    }
    if when != Removed::WhileMade {
        reload();
    }
    for _ in 0..3 {
        get("/after").await.unwrap().unwrap();
    }
    let peers: Vec<IpAddr> = origin.https.peers();
    if when == Removed::JustAfter {
        assert_eq!(
            peers[3..],
            [IpAddr::V4(out(1)); 2],
            "one at most: {peers:?}"
        );
    } else {
        assert!(
            !peers.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "nothing through `b`: {peers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_in_the_background_through_a_member_removed_carries_nothing() {
    a_connection_made_in_the_background_through_a_member_removed(Removed::Later).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_in_the_background_through_a_member_removed_meanwhile_carries_nothing() {
    a_connection_made_in_the_background_through_a_member_removed(Removed::WhileMade).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_in_the_background_through_a_member_removed_just_after_carries_one_request_at_most()
 {
    a_connection_made_in_the_background_through_a_member_removed(Removed::JustAfter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_member_removed_carries_no_request_after_the_reload() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let out = |n: u8| Ipv4Addr::new(127, 0, 0, 195 + n);
    let [a, b] = [1, 2].map(|n| RealProxy::microsocks_from(out(n)));
    let pool = |urls: &[String]| binance_pool("HTTP", urls, &[]);
    let (a_url, b_url) = (a.url("socks5h", None), b.url("socks5h", None));
    // Failover: `b`, listed first, takes the connection that every request shares.
    let injector = ProxyInjector::builder(pool(&[b_url, a_url.clone()]))
        .tls_roots(ca.roots())
        .build();
    let binance = injector.http_client("binance");
    let url = format!("https://127.0.0.1:{}/api/v3/time", origin.https.port());
    let get = || async {
        let response = binance.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        let received = origin.https.received().pop().unwrap();
        assert_eq!(received.version, http::Version::HTTP_2);
        received.peer.ip()
    };
    assert_eq!(get().await, IpAddr::V4(out(2)));
    assert_eq!(get().await, IpAddr::V4(out(2)), "shared");
    // `b` leaves: the route is `a` alone.
    injector.reload_with(pool(&[a_url]));
    for _ in 0..3 {
        assert_eq!(get().await, IpAddr::V4(out(1)), "nothing more through `b`");
    }
    assert_eq!(origin.https.accepted(), 2, "one connection through each");
}

/// A SOCKS5 proxy that holds every handshake until `release` gives a permit, then relays
/// to `target` (which sees its connections come from 127.0.0.1).
async fn held_socks5(
    target: std::net::SocketAddr,
    release: Arc<tokio::sync::Semaphore>,
) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| {
        let release = release.clone();
        async move {
            s.read_socks5_greeting().await;
            s.write(&[5, 0]).await;
            s.read_socks5_request().await;
            let _go = release.acquire().await;
            s.write(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 80]).await;
            s.pipe_to(target).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_connecting_through_a_member_as_it_is_removed_finishes_and_its_connection_goes() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let via_a = Ipv4Addr::new(127, 0, 0, 201);
    let a = RealProxy::microsocks_from(via_a);
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let b = held_socks5(origin.https.addr, release.clone()).await;
    let (a_url, b_url) = (
        a.url("socks5h", None),
        format!("socks5h://{}", b.authority()),
    );
    // Failover: `b` first.
    let injector = ProxyInjector::builder(binance_pool("HTTP", &[b_url, a_url.clone()], &[]))
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    let binance = injector.http_client("binance");
    let get = || spawn_get(&binance, origin.https.port(), "/api/v3/time");
    let under_way = get();
    assert!(
        eventually(|| b.accepted() == 1).await,
        "connecting through `b`"
    );
    // `b` leaves while the request's connection through it is being made.
    injector.reload_with(binance_pool("HTTP", &[a_url], &[]));
    release.add_permits(1);
    under_way
        .await
        .unwrap()
        .expect("the request under way finishes");
    let peers = || -> Vec<IpAddr> { origin.https.peers() };
    assert_eq!(peers(), [IpAddr::V4(Ipv4Addr::LOCALHOST)], "through `b`");
    for _ in 0..3 {
        get().await.unwrap().unwrap();
    }
    assert_eq!(
        peers()[1..],
        [IpAddr::V4(via_a); 3],
        "its connection was not pooled again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_connection_of_a_member_removed_is_not_shared_while_its_request_runs() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let out = |n: u8| Ipv4Addr::new(127, 0, 0, 204 + n);
    let [a, b] = [1, 2].map(|n| RealProxy::microsocks_from(out(n)));
    let (a_url, b_url) = (a.url("socks5h", None), b.url("socks5h", None));
    let injector = ProxyInjector::builder(binance_pool("HTTP", &[b_url, a_url.clone()], &[]))
        .tls_roots(ca.roots())
        .build();
    let binance = injector.http_client("binance");
    let get = |path: &str| spawn_get(&binance, origin.https.port(), path);
    // A slow first request on `b`'s connection, which HTTP/2 would share with others.
    let slow = get("/delay-ms/1500");
    assert!(eventually(|| origin.https.received().len() == 1).await);
    // Time for the client to learn which connection the request was handed (it does so
    // at once; this only keeps the test from outrunning it).
    tokio::time::sleep(Duration::from_millis(100)).await;
    injector.reload_with(binance_pool("HTTP", &[a_url], &[]));
    get("/after").await.unwrap().unwrap();
    let received = origin.https.received();
    assert_eq!(received[1].version, http::Version::HTTP_2);
    assert_eq!(
        received[1].peer.ip(),
        IpAddr::V4(out(1)),
        "not on `b`'s connection"
    );
    slow.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_route_whose_timeout_changes_keeps_its_connection() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let direct = |timeout: &str| {
        ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                    "direct://",
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
                    timeout,
                ),
            ])
            .load()
            .unwrap()
    };
    let injector = ProxyInjector::builder(direct("10"))
        .tls_roots(ca.roots())
        .build();
    let binance = injector.http_client("binance");
    let get = || spawn_get(&binance, origin.https.port(), "/api/v3/time");
    get().await.unwrap().unwrap();
    let report = injector.reload_with(direct("20"));
    assert_eq!(report.routes().len(), 1, "{report}");
    get().await.unwrap().unwrap();
    assert_eq!(origin.https.accepted(), 1, "the same connection");
}
