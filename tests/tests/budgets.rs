//! Weight budgets per exit, against a local exchange that counts weight per client IP in
//! a sliding window, reports it in `x-mbx-used-weight-1m` and answers 429 past its limit
//! (`proxy_tests::weighing`). Exits are loopback source addresses (`direct://127.0.0.N`),
//! which the exchange tells apart by peer address.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proxy_runtime::{HttpClient, ProxyErrorKind as K, ProxyInjector, ProxySettings};
use proxy_tests::fake::{FakeProxy, Session};
use proxy_tests::origin::{Endpoint, serve_https_with};
use proxy_tests::tls::TestCa;
use proxy_tests::weighing::{Limiter, USED};

fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// The exchange, limiting each IP to `limit` per `window`, and its address.
async fn exchange(ca: &TestCa, limit: u32, window: Duration) -> (Arc<Limiter>, Endpoint) {
    let limiter = Limiter::new(limit, window);
    let endpoint = serve_https_with(ca, limiter.handler()).await;
    (limiter, endpoint)
}

/// The `binance` HTTP client over the route `urls` (a JSON array), with a budget of
/// `weight` per `window_ms` per exit read from the exchange's header, and `more` settings.
fn client(
    ca: &TestCa,
    urls: &str,
    weight: u32,
    window_ms: u64,
    more: &[(&str, &str)],
) -> HttpClient {
    let mut vars = vec![
        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS".to_owned(),
            urls.to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT".to_owned(),
            weight.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WINDOW_MS".to_owned(),
            window_ms.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER".to_owned(),
            USED.to_owned(),
        ),
    ];
    // A variable given in `more` replaces the one above.
    vars.retain(|(k, _)| more.iter().all(|(m, _)| m != k));
    vars.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
        .http_client("binance")
}

/// `GET /w` of weight `weight` (the exchange reads it from `x-weight`), within `timeout`.
async fn get(
    client: &HttpClient,
    endpoint: &Endpoint,
    weight: u32,
    timeout: Duration,
) -> Result<http::StatusCode, proxy_runtime::ProxyError> {
    let response = client
        .get(format!("https://127.0.0.1:{}/w", endpoint.port()))
        .header("x-weight", weight.to_string())
        .weight(weight)
        .timeout(timeout)
        .send()
        .await?;
    let status = response.status();
    response.bytes().await?;
    Ok(status)
}

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_request_that_would_cross_every_exit_s_budget_is_refused_before_it_is_sent() {
    let ca = TestCa::new();
    let (limiter, endpoint) = exchange(&ca, 1000, Duration::from_secs(60)).await;
    let client = client(
        &ca,
        r#"["direct://127.0.0.2", "direct://127.0.0.3"]"#,
        10,
        60_000,
        &[],
    );
    for _ in 0..10 {
        assert_eq!(get(&client, &endpoint, 2, LONG).await.unwrap(), 200);
    }
    let peers: Vec<IpAddr> = endpoint.peers();
    assert_eq!(
        peers.iter().filter(|&&p| p == loopback(2)).count(),
        5,
        "failover fills the first exit, then takes the next: {peers:?}"
    );
    assert_eq!(peers.iter().filter(|&&p| p == loopback(3)).count(), 5);
    let started = Instant::now();
    let err = get(&client, &endpoint, 1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "refused at once, not at the deadline"
    );
    let K::RateLimited { exit, wait } = err.kind() else {
        panic!("{err}");
    };
    assert!(exit.starts_with("direct://127.0.0."), "{exit}");
    assert!(
        *wait > Duration::from_secs(50),
        "a whole window less the test's time: {wait:?}"
    );
    assert!(
        err.to_string()
            .contains("weight budget of every exit is spent"),
        "{err}"
    );
    assert!(
        err.to_string().contains("binance"),
        "names the exchange: {err}"
    );
    assert!(!err.is_connect() && !err.is_timeout(), "{err}");
    assert_eq!(
        std::io::Error::from(err.clone()).kind(),
        std::io::ErrorKind::QuotaExceeded
    );
    let heavy = get(&client, &endpoint, 11, LONG).await.unwrap_err();
    assert_eq!(heavy.kind(), &K::InvalidRequest, "{heavy}");
    assert_eq!(
        endpoint.received().len(),
        10,
        "nothing more reached the exchange"
    );
    assert_eq!(limiter.over(), 0);
}

#[tokio::test]
async fn the_exchange_s_count_overrides_ours_when_another_client_spent_on_the_same_ip() {
    let ca = TestCa::new();
    let (limiter, endpoint) = exchange(&ca, 100, Duration::from_secs(60)).await;
    // Another process spent 60 of this IP's 100.
    limiter.preload(loopback(4), 60);
    let client = client(&ca, r#"["direct://127.0.0.4"]"#, 100, 60_000, &[]);
    let mut sent = 0;
    let err = loop {
        match get(&client, &endpoint, 1, Duration::from_millis(500)).await {
            Ok(status) => {
                assert_eq!(status, 200, "never past the exchange's limit");
                sent += 1;
            }
            Err(e) => break e,
        }
        assert!(sent <= 100, "the budget never stopped the requests");
    };
    assert!(matches!(err.kind(), K::RateLimited { .. }), "{err}");
    assert_eq!(sent, 40, "60 spent elsewhere, 40 left");
    assert_eq!(limiter.over(), 0);
}

#[tokio::test]
async fn without_the_header_our_count_alone_keeps_the_budget() {
    let ca = TestCa::new();
    let (limiter, endpoint) = exchange(&ca, 100, Duration::from_secs(60)).await;
    limiter.preload(loopback(5), 60);
    // The header the budget reads is not the one the exchange sends.
    let client = client(
        &ca,
        r#"["direct://127.0.0.5"]"#,
        100,
        60_000,
        &[(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER",
            "x-other",
        )],
    );
    let mut ok = 0;
    let mut limited = 0;
    let err = loop {
        match get(&client, &endpoint, 1, Duration::from_millis(500)).await {
            Ok(status) if status == 200 => ok += 1,
            Ok(_) => limited += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err.kind(), K::RateLimited { .. }), "{err}");
    assert_eq!(
        (ok, limited),
        (40, 60),
        "100 sent by our count, 60 of them past the limit"
    );
}

#[tokio::test]
async fn a_member_that_cannot_connect_gives_its_weight_back_and_the_next_takes_the_request() {
    let ca = TestCa::new();
    let (_, endpoint) = exchange(&ca, 1000, Duration::from_secs(60)).await;
    let origin = endpoint.addr;
    // A CONNECT proxy that refuses its first tunnel (the member fails, nothing is sent
    // through it) and relays every later one.
    let refused = Arc::new(AtomicUsize::new(0));
    let seen = refused.clone();
    let proxy = FakeProxy::start(move |mut s: Session| {
        let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            s.read_head().await;
            if first {
                s.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            } else {
                s.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                s.pipe_to(origin).await;
            }
        }
    })
    .await;
    let urls = format!(r#"["http://{}", "direct://127.0.0.6"]"#, proxy.authority());
    // One request per exit per minute.
    let client = client(&ca, &urls, 1, 60_000, &[]);
    assert_eq!(get(&client, &endpoint, 1, LONG).await.unwrap(), 200);
    let peers: Vec<IpAddr> = endpoint.peers();
    assert_eq!(peers, [loopback(6)], "the next member took the request");
    // The refusing member is benched for 1 s (+20% at most). Its weight came back, so
    // once its bench is over it has room for the next request: without the give-back it
    // would be spent like the other, and the request refused.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get(&client, &endpoint, 1, LONG).await.unwrap(), 200);
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(endpoint.received().len(), 2);
    let err = get(&client, &endpoint, 1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), K::RateLimited { .. }),
        "both spent now: {err}"
    );
}

#[tokio::test]
async fn a_target_failure_is_not_tried_again_through_the_next_member() {
    let ca = TestCa::new();
    // A target whose certificate is not trusted: every member would fail the same way.
    let stranger = TestCa::new();
    let (_, endpoint) = exchange(&stranger, 1000, Duration::from_secs(60)).await;
    let client = client(
        &ca,
        r#"["direct://127.0.0.15", "direct://127.0.0.16"]"#,
        1,
        60_000,
        &[],
    );
    let err = get(&client, &endpoint, 1, LONG).await.unwrap_err();
    assert_eq!(err.kind(), &K::Tls, "{err}");
    assert_eq!(
        endpoint.accepted(),
        1,
        "one handshake, through the first member only"
    );
    // Nothing was sent: the weight came back. Kept, it would have spent both exits'
    // budgets of 1 in two requests, and the third would be RateLimited.
    for _ in 0..2 {
        let err = get(&client, &endpoint, 1, LONG).await.unwrap_err();
        assert_eq!(err.kind(), &K::Tls, "not RateLimited: {err}");
    }
}

#[tokio::test]
async fn a_direct_route_is_one_exit_with_its_budget() {
    let ca = TestCa::new();
    let (_, endpoint) = exchange(&ca, 1000, Duration::from_secs(60)).await;
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__WEIGHT", "3"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP_BUDGET__WINDOW_MS", "60000"),
        ])
        .load()
        .unwrap();
    let client = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
        .http_client("kraken");
    for _ in 0..3 {
        assert_eq!(get(&client, &endpoint, 1, LONG).await.unwrap(), 200);
    }
    let err = get(&client, &endpoint, 1, Duration::from_millis(200))
        .await
        .unwrap_err();
    let K::RateLimited { exit, .. } = err.kind() else {
        panic!("{err}");
    };
    assert_eq!(exit, "direct");
    assert_eq!(endpoint.received().len(), 3);
}

/// A request to a member with a connection open is not copied for a failover: when the
/// new connection it needs fails (the member refuses a second tunnel), it fails unsent
/// with the member's error, and the member is benched for the next requests.
#[tokio::test]
async fn a_member_with_a_connection_open_that_fails_a_new_one_fails_the_request_unsent() {
    let ca = TestCa::new();
    let origin = proxy_tests::origin::Origin::start(&ca).await;
    let target = origin.https.addr;
    let tunnels = Arc::new(AtomicUsize::new(0));
    let seen = tunnels.clone();
    let proxy = FakeProxy::start(move |mut s: Session| {
        let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            s.read_head().await;
            if first {
                s.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                s.pipe_to(target).await;
            } else {
                s.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            }
        }
    })
    .await;
    let urls = format!(r#"["http://{}", "direct://127.0.0.17"]"#, proxy.authority());
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
                urls.as_str(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
                "1000",
            ),
        ])
        .load()
        .unwrap();
    let client = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .http1_only()
        .build()
        .http_client("binance");
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    // The first request holds the member's one connection (HTTP/1.1: one at a time).
    let stalled = tokio::spawn({
        let (client, url) = (client.clone(), format!("{base}/stall-head"));
        async move { client.get(url).send().await }
    });
    while origin.https.received().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = client.get(format!("{base}/x")).send().await.unwrap_err();
    assert!(matches!(err.kind(), K::Refused(_)), "{err}");
    assert!(err.is_connect(), "unsent: {err}");
    assert_eq!(
        origin.https.received().len(),
        1,
        "nothing went through the next member"
    );
    // The member is benched: the next request takes the other.
    let ok = client.get(format!("{base}/x")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let peers: Vec<IpAddr> = origin.https.peers();
    assert_eq!(peers[1], loopback(17));
    stalled.abort();
}

/// A used-weight header that is not a count is ignored (our count stands), logged once
/// per route, and its value never logged.
#[tokio::test]
async fn an_unreadable_count_is_ignored_and_logged_once_without_its_value() {
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    let ca = TestCa::new();
    let handler: proxy_tests::origin::Handler = Arc::new(|_| {
        let mut response = http::Response::new(proxy_tests::origin::full("{}"));
        response
            .headers_mut()
            .insert(USED, http::HeaderValue::from_static("weight-canary-7f3e"));
        response
    });
    let endpoint = serve_https_with(&ca, handler).await;
    let client = client(&ca, r#"["direct://127.0.0.18"]"#, 3, 60_000, &[]);
    for _ in 0..3 {
        assert_eq!(get(&client, &endpoint, 1, LONG).await.unwrap(), 200);
    }
    let err = get(&client, &endpoint, 1, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), K::RateLimited { .. }),
        "our count of 3 stands: {err}"
    );
    let text = logs.text();
    assert_eq!(
        text.matches("the used-weight header is not a count")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains(USED), "names the header: {text}");
    assert!(!text.contains("weight-canary-7f3e"), "{text}");
}

/// When every member fails to connect, the request fails with the last member's error,
/// its weight given back at each: never a member tried twice, never an error of its own.
#[tokio::test]
async fn when_every_member_fails_the_request_fails_with_the_last_member_s_error() {
    let ca = TestCa::new();
    let (_, endpoint) = exchange(&ca, 1000, Duration::from_secs(60)).await;
    // Neither address is on this host.
    let client = client(
        &ca,
        r#"["direct://192.0.2.10", "direct://192.0.2.11"]"#,
        1,
        60_000,
        &[],
    );
    let err = get(&client, &endpoint, 1, LONG).await.unwrap_err();
    assert_eq!(err.kind(), &K::SourceUnavailable, "{err}");
    assert!(
        err.to_string().contains("192.0.2.11"),
        "the last member's: {err}"
    );
    assert_eq!(endpoint.accepted(), 0);
}
