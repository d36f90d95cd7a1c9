//! Pools of proxies per route, against real microsocks servers on loopback. Each proxy's
//! outgoing connections come from a loopback address of its own, so the origin sees
//! which member every connection came through (and that none came direct): failover when
//! a member dies and back when it returns, round robin spreading connections, every
//! member dead, a 429 cooling a member, streams keeping their member, and metrics.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{ProxyErrorKind as K, ProxyInjector, ProxyInjectorBuilder, ProxySettings};
use proxy_tests::GENEROUS;
use proxy_tests::origin::{Origin, WELCOME};
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

/// The address proxy `n`'s outgoing connections come from.
fn via(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 100 + n))
}

fn microsocks(n: u8) -> RealProxy {
    RealProxy::microsocks_from(Ipv4Addr::new(127, 0, 0, 100 + n))
}

/// An injector whose `binance` routes (HTTP and WebSocket) are the pool `urls`.
fn injector(
    urls: &[String],
    strategy: &str,
    ca: &TestCa,
    build: impl FnOnce(ProxyInjectorBuilder) -> ProxyInjectorBuilder,
) -> ProxyInjector {
    let list = serde_json::to_string(urls).unwrap();
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
            list.clone(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__STRATEGY",
            strategy.to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
            "5".to_owned(),
        ),
        ("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URLS", list),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__STRATEGY",
            strategy.to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__TIMEOUT_SECONDS",
            "5".to_owned(),
        ),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    build(ProxyInjector::builder(settings).tls_roots(ca.roots())).build()
}

/// Opens a WebSocket (a new connection) and returns the address the origin saw it from.
async fn connect(
    inj: &ProxyInjector,
    origin: &Origin,
) -> Result<IpAddr, proxy_runtime::ProxyError> {
    let url = format!("ws://127.0.0.1:{}/ws", origin.ws.port());
    let (mut ws, _) = inj.connect_websocket("binance", url.as_str()).await?;
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    Ok(origin.ws.received().pop().unwrap().peer.ip())
}

/// A failover pool of microsocks `a` and `b` (HTTP/1.1, so that every connection carries
/// one request at a time), and its `binance` HTTP client.
fn failover_pair(a: u8, b: u8, ca: &TestCa) -> ([RealProxy; 2], proxy_runtime::HttpClient) {
    let proxies = [microsocks(a), microsocks(b)];
    let urls = proxies.each_ref().map(|p| p.url("socks5h", None));
    let inj = injector(&urls, "failover", ca, ProxyInjectorBuilder::http1_only);
    (proxies, inj.http_client("binance"))
}

/// `GET path` on the HTTPS origin (closing the connection after it when `close`): the
/// status and the address the origin saw the request come from.
async fn get_via(
    client: &proxy_runtime::HttpClient,
    origin: &Origin,
    path: &str,
    close: bool,
) -> (u16, IpAddr) {
    let mut request = client.get(format!("https://127.0.0.1:{}{path}", origin.https.port()));
    if close {
        request = request.header("connection", "close");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    (status, origin.https.received().pop().unwrap().peer.ip())
}

#[tokio::test]
async fn failover_goes_on_through_the_next_member_and_back_after_the_bench() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let mut first = microsocks(1);
    let second = microsocks(2);
    let inj = injector(
        &[first.url("socks5h", None), second.url("socks5h", None)],
        "failover",
        &ca,
        |b| b,
    );
    for _ in 0..5 {
        assert_eq!(
            connect(&inj, &origin).await.unwrap(),
            via(1),
            "the first member first"
        );
    }
    first.kill();
    for _ in 0..20 {
        assert_eq!(
            connect(&inj, &origin).await.unwrap(),
            via(2),
            "the same attempt goes on through the second"
        );
    }
    first.restart();
    // Benched for about a second (doubling while it stayed dead), then tried again.
    let deadline = Instant::now() + GENEROUS;
    loop {
        if connect(&inj, &origin).await.unwrap() == via(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first member never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peers: Vec<IpAddr> = origin.ws.peers();
    assert!(
        peers.iter().all(|p| *p == via(1) || *p == via(2)),
        "never direct: {peers:?}"
    );
}

#[tokio::test]
async fn round_robin_spreads_new_connections_evenly() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxies = [microsocks(11), microsocks(12), microsocks(13)];
    let urls: Vec<String> = proxies.iter().map(|p| p.url("socks5h", None)).collect();
    let inj = injector(&urls, "round_robin", &ca, |b| b);
    for _ in 0..300 {
        connect(&inj, &origin).await.unwrap();
    }
    let peers: Vec<IpAddr> = origin.ws.peers();
    for n in [11, 12, 13] {
        let count = peers.iter().filter(|p| **p == via(n)).count();
        assert!(
            (80..=120).contains(&count),
            "{count} of 300 through member {n}"
        );
    }
}

#[tokio::test]
async fn every_member_dead_is_one_typed_error_naming_each_within_the_deadline() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let dead = [
        format!(
            "socks5h://127.0.0.1:{}",
            proxy_tests::fake::closed_port().await
        ),
        format!(
            "http://127.0.0.1:{}",
            proxy_tests::fake::closed_port().await
        ),
    ];
    let inj = injector(&dead, "failover", &ca, |b| b);
    let started = Instant::now();
    let err = inj
        .http_client("binance")
        .get(format!("https://127.0.0.1:{}/x", origin.https.port()))
        .send()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5) + Duration::from_secs(1));
    assert_eq!(err.kind(), &K::AllMembersFailed, "{err}");
    assert_eq!(err.member_failures().len(), 2);
    for (failure, url) in err.member_failures().iter().zip(&dead) {
        assert_eq!(failure.kind(), &K::ProxyUnreachable);
        assert_eq!(failure.proxy(), Some(url.as_str()));
        assert!(err.to_string().contains(url.as_str()), "{err}");
    }
    assert_eq!(origin.https.accepted(), 0, "never direct");
    // Benched now, both: the one whose bench ends first is tried, never nothing.
    let err = inj
        .http_client("binance")
        .get(format!("https://127.0.0.1:{}/x", origin.https.port()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::AllMembersFailed, "{err}");
    assert_eq!(err.member_failures().len(), 1, "{err}");
}

#[tokio::test]
async fn a_rate_limited_member_cools_and_new_connections_prefer_the_other() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (_proxies, client) = failover_pair(21, 22, &ca);
    // A new connection for every request.
    let get = |path| get_via(&client, &origin, path, true);
    assert_eq!(get("/before").await.1, via(21));
    // The exchange says: too many requests, come back in 2 s. The caller gets the 429 as
    // it came; the member cools.
    assert_eq!(get("/ratelimit/2").await, (429, via(21)));
    let cooled = Instant::now();
    assert_eq!(
        get("/cooling").await.1,
        via(22),
        "new connections go to the other member"
    );
    let deadline = cooled + GENEROUS;
    loop {
        let (_, peer) = get("/after").await;
        if peer == via(21) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member never stopped cooling"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cooled.elapsed() >= Duration::from_secs(2),
        "it cooled for Retry-After"
    );
}

#[tokio::test]
async fn a_cooling_member_s_idle_connections_are_retired() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (_proxies, client) = failover_pair(23, 24, &ca);
    let get = |path| get_via(&client, &origin, path, false);
    // Kept alive: the second request goes over the first one's connection.
    assert_eq!(get("/before").await, (200, via(23)));
    assert_eq!(get("/ratelimit/30").await, (429, via(23)));
    // That connection, idle in the pool, is not handed out again: the next request opens
    // a new connection, through the other member.
    assert_eq!(get("/after").await, (200, via(24)));
    assert_eq!(get("/again").await, (200, via(24)), "kept alive through b");
}

#[tokio::test]
async fn a_connection_whose_first_answer_is_a_429_is_retired() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (_proxies, client) = failover_pair(25, 26, &ca);
    let get = |path| get_via(&client, &origin, path, false);
    assert_eq!(get("/ratelimit/30").await, (429, via(25)));
    assert_eq!(get("/after").await, (200, via(26)));
}

#[tokio::test]
async fn a_429_to_a_request_of_hyper_s_types_cools_its_member_and_retires_its_connection() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (_proxies, client) = failover_pair(27, 28, &ca);
    let origin = &origin;
    let send = |path: &str| {
        let uri = format!("https://127.0.0.1:{}{path}", origin.https.port());
        let request = http::Request::get(uri)
            .body(http_body_util::Full::default())
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap();
            (status, origin.https.received().pop().unwrap().peer.ip())
        }
    };
    assert_eq!(send("/before").await, (200, via(27)));
    assert_eq!(send("/ratelimit/30").await, (429, via(27)), "as it came");
    assert_eq!(
        send("/after").await,
        (200, via(28)),
        "the connection retired, and the member cooling"
    );
}

#[tokio::test]
async fn a_websocket_keeps_its_member_while_the_pool_moves_on() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (a, b) = (microsocks(31), microsocks(32));
    let inj = injector(
        &[a.url("socks5h", None), b.url("socks5h", None)],
        "round_robin",
        &ca,
        |b| b,
    );
    let url = format!("ws://127.0.0.1:{}/ws", origin.ws.port());
    let (mut sticky, _) = inj
        .connect_websocket("binance", url.as_str())
        .await
        .unwrap();
    let member = origin.ws.received()[0].peer.ip();
    for _ in 0..4 {
        connect(&inj, &origin).await.unwrap();
    }
    let peers: Vec<IpAddr> = origin.ws.peers();
    assert!(
        peers.contains(&via(31)) && peers.contains(&via(32)),
        "{peers:?}"
    );
    // The first stream still runs, over the member it was opened through.
    use futures_util::SinkExt;
    assert_eq!(
        sticky.next().await.unwrap().unwrap(),
        Message::text(WELCOME)
    );
    sticky.send(Message::text("still here")).await.unwrap();
    assert_eq!(
        sticky.next().await.unwrap().unwrap(),
        Message::text("echo: still here")
    );
    assert!(member == via(31) || member == via(32));
}

#[test]
fn pool_settings_from_yaml_and_variables_and_their_errors() {
    let load = |yaml: &str, vars: &[(&str, &str)]| {
        ProxySettings::loader()
            .yaml_str("config.yaml", yaml)
            .env_vars(vars.iter().copied())
            .load()
    };
    let yaml = "proxy:\n  enabled: true\n  default:\n    http:\n      urls:\n        - socks5h://a:1080\n        - direct://\n      strategy: round_robin\n";
    let settings = load(yaml, &[]).unwrap();
    let route = settings
        .get_proxy("okx", proxy_runtime::ConnectionKind::Http)
        .unwrap();
    assert!(route.is_pool());
    assert_eq!(route.members().len(), 2);
    assert!(route.members()[1].is_direct());
    assert_eq!(route.strategy(), proxy_runtime::Strategy::RoundRobin);
    assert_eq!(route.url().to_string(), "socks5h://a:1080");

    let errors = |yaml: &str, vars: &[(&str, &str)]| -> Vec<String> {
        load(yaml, vars)
            .unwrap_err()
            .errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let both =
        "proxy:\n  default:\n    http:\n      url: socks5h://a:1\n      urls: [socks5h://b:1]\n";
    assert!(
        errors(both, &[])[0].contains("give only one of `url`, `urls`"),
        "{:?}",
        errors(both, &[])
    );
    let empty = "proxy:\n  default:\n    http:\n      urls: []\n";
    assert!(
        errors(empty, &[])[0]
            .starts_with("config.yaml:4: `proxy.default.http.urls`: `urls` is empty"),
        "{:?}",
        errors(empty, &[])
    );
    let bad = "proxy:\n  default:\n    http:\n      urls: [socks5h://a:1, 'ftp://u:s3cret@b:21']\n";
    let e = &errors(bad, &[])[0];
    assert!(
        e.starts_with("config.yaml:4: `proxy.default.http.urls.1`: Unsupported proxy scheme: ftp"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = errors("", &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URLSS", "[]")]);
    assert!(
        e[0].contains("did you mean `CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS`?"),
        "{e:?}"
    );
    let e = errors(
        "",
        &[(
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS",
            r#"["socks5h://a:1", 5]"#,
        )],
    );
    assert!(
        e[0].starts_with("`CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS` (environment, JSON at `1`): expected a proxy URL"),
        "{e:?}"
    );
    let e = errors(
        "",
        &[
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__STRATEGY", "random"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://a:1"),
        ],
    );
    assert!(e[0].contains("failover or round_robin"), "{e:?}");
    let e = errors(
        "",
        &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__STRATEGY", "failover")],
    );
    assert!(
        e[0].contains(
            "missing required `url` (or `urls`): set `CRYPTOFEED_PROXY_DEFAULT__HTTP__URL`"
        ),
        "{e:?}"
    );
    // A variable's list replaces the file's whole.
    let settings = load(
        yaml,
        &[(
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URLS",
            r#"["socks5h://c:1"]"#,
        )],
    )
    .unwrap();
    let route = settings
        .get_proxy("okx", proxy_runtime::ConnectionKind::Http)
        .unwrap();
    assert_eq!(route.members().len(), 1);
}

#[tokio::test]
async fn refused_credentials_bench_a_member_and_are_logged_once_at_error() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let guarded = RealProxy::microsocks_with(Options {
        auth: true,
        outbound: Some(Ipv4Addr::new(127, 0, 0, 141)),
        ..Options::default()
    });
    let open = microsocks(42);
    let wrong = guarded.url("socks5h", Some((proxy_tests::real::USER, "wrong-pass")));
    let inj = injector(&[wrong, open.url("socks5h", None)], "failover", &ca, |b| b);
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    assert_eq!(connect(&inj, &origin).await.unwrap(), via(42));
    // Past its first bench (1 s, jitter at most +20%), the member is tried again and
    // refused again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(connect(&inj, &origin).await.unwrap(), via(42));
    let text = logs.text();
    let benched = text.matches("pool member benched").count();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(benched, 2, "{text}");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("refused the credentials"),
        "{}",
        errors[0]
    );
    assert!(!text.contains("wrong-pass"), "{text}");
}

#[tokio::test]
async fn a_member_that_never_answers_has_its_share_of_the_deadline_then_the_next_goes_on() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // The first member drops every SYN; the route's 5 s are shared: half for it, the rest
    // for the second.
    let dead = proxy_tests::blackhole::Blackhole::on("127.0.0.2:0".parse().unwrap());
    let live = microsocks(31);
    let urls = [
        format!("socks5h://{}", dead.addr),
        live.url("socks5h", None),
    ];
    let inj = injector(&urls, "failover", &ca, ProxyInjectorBuilder::http1_only);
    let client = inj.http_client("binance");
    let started = Instant::now();
    let (status, peer) = get_via(&client, &origin, "/shared", false).await;
    let took = started.elapsed();
    assert_eq!((status, peer), (200, via(31)));
    assert!(
        took >= Duration::from_millis(2500),
        "the first member had half the deadline: {took:?}"
    );
    assert!(took < Duration::from_secs(5) + GENEROUS, "{took:?}");
}

#[tokio::test]
async fn the_last_member_has_all_that_is_left_of_the_deadline() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // The first member refuses at once; the second drops every SYN and has the rest of
    // the route's 5 s to itself.
    let closed = proxy_tests::fake::closed_port().await;
    let dead = proxy_tests::blackhole::Blackhole::on("127.0.0.2:0".parse().unwrap());
    let urls = [
        format!("socks5h://127.0.0.1:{closed}"),
        format!("socks5h://{}", dead.addr),
    ];
    let inj = injector(&urls, "failover", &ca, ProxyInjectorBuilder::http1_only);
    let started = Instant::now();
    let url = format!("https://127.0.0.1:{}/rest", origin.https.port());
    let err = inj
        .http_client("binance")
        .get(url)
        .send()
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.member_failures().len(), 2, "{err}");
    assert!(
        took >= Duration::from_millis(4500),
        "the second member had what the first left: {took:?}"
    );
    assert!(took < Duration::from_secs(5) + GENEROUS, "{took:?}");
}

#[tokio::test]
async fn a_failure_of_the_target_ends_the_attempt_without_trying_the_next_member() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxies = [microsocks(32), microsocks(33)];
    let urls = proxies.each_ref().map(|p| p.url("socks5h", None));
    // Trusting another CA: TLS to the target fails, and would through every member.
    let inj = injector(&urls, "failover", &TestCa::new(), |b| b);
    let err = inj
        .http_client("binance")
        .get(format!("https://127.0.0.1:{}/x", origin.https.port()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::Tls, "{err}");
    // Not the member's failure, so the error names the route (any member would do the same).
    let route = format!("[{}, {}] (failover)", urls[0], urls[1]);
    assert_eq!(err.proxy(), Some(route.as_str()), "{err}");
    assert!(err.member_failures().is_empty(), "{err}");
    assert_eq!(
        origin.https.accepted(),
        1,
        "the second member was not tried"
    );
}

#[tokio::test]
async fn a_route_of_one_proxy_keeps_its_connection_after_a_429() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxy = microsocks(34);
    let inj = injector(
        &[proxy.url("socks5h", None)],
        "failover",
        &ca,
        ProxyInjectorBuilder::http1_only,
    );
    let client = inj.http_client("binance");
    let get = |path| get_via(&client, &origin, path, false);
    assert_eq!(get("/before").await, (200, via(34)));
    assert_eq!(get("/ratelimit/30").await, (429, via(34)));
    // Nowhere else to go: the idle connection is used again, not retired.
    assert_eq!(get("/after").await, (200, via(34)));
    assert_eq!(origin.https.accepted(), 1, "one connection for the three");
}

#[tokio::test]
async fn each_member_resumes_its_own_tls_sessions_never_another_s() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxies = [microsocks(21), microsocks(22)];
    let urls = proxies.each_ref().map(|p| p.url("socks5h", None));
    let inj = injector(&urls, "round_robin", &ca, ProxyInjectorBuilder::http1_only);
    let client = inj.http_client("binance");
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(get_via(&client, &origin, "/resume", true).await.1);
    }
    assert_eq!(seen, [via(21), via(22), via(21), via(22)]);
    // Each member's second connection resumes its own first session; the second member's
    // first connection starts afresh: a ticket issued through one exit is never
    // presented through the other, where the exchange could link the two.
    assert_eq!(origin.https.resumed(), [false, false, true, true]);
}
