//! Against the real proxy servers, started on loopback by the tests: an HTTPS GET and a
//! WSS exchange through each, proof from each server's own log that the traffic went
//! through it, and the authentication failures each one produces.

use futures_util::{SinkExt, StreamExt};
use proxy_runtime::{ConnectionKind, ProxyErrorKind as K, ProxyInjector, Refusal, Target};
use proxy_tests::Fetch;
use proxy_tests::fake::closed_port;
use proxy_tests::injector;
use proxy_tests::origin::{Origin, WELCOME, body_for};
use proxy_tests::real::{PASSWORD, RealProxy, USER};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;
use tokio_tungstenite::tungstenite::Message;

/// An HTTPS GET and a WSS exchange of messages through `inj`'s routes for `exchange`.
async fn exercise(inj: &ProxyInjector, origin: &Origin, exchange: &str) {
    let path = format!("/api/{exchange}/depth");
    let body = inj
        .http_client(exchange)
        .fetch(&format!("https://127.0.0.1:{}{path}", origin.https.port()))
        .await
        .unwrap_or_else(|e| panic!("GET through {exchange}'s route: {e}"));
    assert_eq!(body, body_for(&path));
    let mut ws = inj
        .connect_websocket(
            exchange,
            &format!("wss://127.0.0.1:{}/ws/trades", origin.wss.port()),
        )
        .await
        .map(|(ws, _)| ws)
        .unwrap_or_else(|e| panic!("WSS through {exchange}'s route: {e}"));
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    for i in 0..3 {
        ws.send(Message::text(format!("trade {i}"))).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("echo: trade {i}"))
        );
    }
    ws.close(None).await.unwrap();
}

async fn failure(url: &str, ca: &TestCa, origin: &Origin) -> K {
    let inj = injector(Some(url), 10, ca, RecordingResolver::failing());
    let err = inj
        .http_client("binance")
        .fetch(&format!("https://127.0.0.1:{}/", origin.https.port()))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    err.kind().clone()
}

#[tokio::test]
async fn microsocks_without_and_with_authentication() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let open = RealProxy::microsocks(false);
    for scheme in ["socks5h", "socks5"] {
        let inj = injector(
            Some(&open.url(scheme, None)),
            10,
            &ca,
            RecordingResolver::failing(),
        );
        exercise(&inj, &origin, "binance").await;
    }
    assert!(
        open.log_mentions(&format!("connected to 127.0.0.1:{}", origin.https.port()))
            .await,
        "{}",
        open.log()
    );
    assert!(
        open.log_mentions(&format!("connected to 127.0.0.1:{}", origin.wss.port()))
            .await,
        "{}",
        open.log()
    );

    let auth = RealProxy::microsocks(true);
    let inj = injector(
        Some(&auth.url("socks5h", Some((USER, PASSWORD)))),
        10,
        &ca,
        RecordingResolver::failing(),
    );
    exercise(&inj, &origin, "okx").await;
    assert_eq!(
        failure(&auth.url("socks5h", Some((USER, "wrong"))), &ca, &origin).await,
        K::AuthFailed
    );
    assert_eq!(
        failure(
            &auth.url("socks5h", Some(("nobody", PASSWORD))),
            &ca,
            &origin
        )
        .await,
        K::AuthFailed
    );
    assert_eq!(
        failure(&auth.url("socks5h", None), &ca, &origin).await,
        K::AuthRequired
    );
}

#[tokio::test]
async fn dante_socks4_and_socks5() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let dante = RealProxy::dante();
    for scheme in ["socks4", "socks5", "socks5h"] {
        let inj = injector(
            Some(&dante.url(scheme, None)),
            10,
            &ca,
            RecordingResolver::failing(),
        );
        exercise(&inj, &origin, "kraken").await;
    }
    // dante logs `tcp/connect [: CLIENT PROXY -> EXTERNAL TARGET` as each connection opens.
    let https = format!(" 127.0.0.1.{}\n", origin.https.port());
    let wss = format!(" 127.0.0.1.{}\n", origin.wss.port());
    assert!(
        dante.log_mentions(&https).await && dante.log_mentions(&wss).await,
        "{}",
        dante.log()
    );
    let connects = |target: &str| {
        dante
            .log()
            .lines()
            .filter(|l| l.contains("tcp/connect [") && format!("{l}\n").ends_with(target))
            .count()
    };
    assert_eq!(connects(&https), 3, "one per scheme:\n{}", dante.log());
    assert_eq!(connects(&wss), 3, "one per scheme:\n{}", dante.log());
}

/// An HTTP CONNECT server without and with Basic auth: traffic through it is in its log
/// (squid writes a tunnel's line when it closes, so the pool is dropped first), wrong
/// credentials are "auth failed" (tinyproxy answers 401, squid 407) and missing ones
/// "auth required" (407).
async fn http_connect_server(start: fn(bool) -> RealProxy, exchange: &str) {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let open = start(false);
    let inj = injector(
        Some(&open.url("http", None)),
        10,
        &ca,
        RecordingResolver::failing(),
    );
    exercise(&inj, &origin, exchange).await;
    drop(inj);
    for port in [origin.https.port(), origin.wss.port()] {
        let line = format!("CONNECT 127.0.0.1:{port}");
        assert!(
            open.log_mentions(&line).await,
            "{line} not in:\n{}",
            open.log()
        );
    }

    let auth = start(true);
    let inj = injector(
        Some(&auth.url("http", Some((USER, PASSWORD)))),
        10,
        &ca,
        RecordingResolver::failing(),
    );
    exercise(&inj, &origin, exchange).await;
    let wrong = auth.url("http", Some((USER, "wrong")));
    assert_eq!(failure(&wrong, &ca, &origin).await, K::AuthFailed);
    assert_eq!(
        failure(&auth.url("http", None), &ca, &origin).await,
        K::AuthRequired
    );
}

#[tokio::test]
async fn tinyproxy_connect_without_and_with_basic_auth() {
    http_connect_server(RealProxy::tinyproxy, "bybit").await;
}

#[tokio::test]
async fn squid_connect_without_and_with_basic_auth() {
    http_connect_server(RealProxy::squid, "gate").await;
}

#[tokio::test]
async fn real_servers_refusing_a_closed_target_port() {
    let ca = TestCa::new();
    let port = closed_port().await;
    let target = Target::new("127.0.0.1", port).unwrap();
    let micro = RealProxy::microsocks(false);
    let tiny = RealProxy::tinyproxy(false);
    let squid = RealProxy::squid(false);
    let dante = RealProxy::dante();
    let cases = [
        (
            micro.url("socks5h", None),
            K::TargetUnreachable(Some(Refusal::Socks5(5))),
        ),
        (
            dante.url("socks5", None),
            K::TargetUnreachable(Some(Refusal::Socks5(5))),
        ),
        (dante.url("socks4", None), K::Refused(Refusal::Socks4(91))),
    ];
    for (url, expected) in cases {
        let inj = injector(Some(&url), 10, &ca, RecordingResolver::failing());
        let err = inj
            .dialer("okx", ConnectionKind::Http)
            .connect(&target, false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &expected, "{url}: {err}");
    }
    for (proxy, status) in [(&tiny, 500), (&squid, 503)] {
        let inj = injector(
            Some(&proxy.url("http", None)),
            10,
            &ca,
            RecordingResolver::failing(),
        );
        let err = inj
            .dialer("okx", ConnectionKind::Http)
            .connect(&target, false)
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), K::Refused(Refusal::Http { status: s, .. }) if *s == status),
            "{err}"
        );
    }
    // dante answers 4 (host unreachable) for a name it cannot resolve.
    let inj = injector(
        Some(&dante.url("socks5h", None)),
        10,
        &ca,
        RecordingResolver::failing(),
    );
    let err = inj
        .dialer("okx", ConnectionKind::Http)
        .connect(
            &Target::new("name-that-does-not-exist.invalid", 443).unwrap(),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &K::TargetUnreachable(Some(Refusal::Socks5(4))),
        "{err}"
    );
}

#[tokio::test]
async fn two_exchanges_through_two_proxies_each_proxy_sees_only_its_own() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let a = RealProxy::tinyproxy(false);
    let b = RealProxy::tinyproxy(false);
    let settings = proxy_runtime::ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                a.url("http", None),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__URL",
                b.url("http", None),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__COINBASE__HTTP__URL",
                "direct://".to_owned(),
            ),
        ])
        .load()
        .unwrap();
    let inj = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build();
    let url = |p: &str| format!("https://127.0.0.1:{}/{p}", origin.https.port());
    for _ in 0..3 {
        inj.http_client("binance").fetch(&url("b")).await.unwrap();
        inj.http_client("kraken").fetch(&url("k")).await.unwrap();
    }
    inj.http_client("coinbase").fetch(&url("c")).await.unwrap();
    let connect = format!("CONNECT 127.0.0.1:{}", origin.https.port());
    assert!(a.log_mentions(&connect).await && b.log_mentions(&connect).await);
    // Pooled: one tunnel per route, reused by that route only.
    assert_eq!(a.log().matches(&connect).count(), 1, "{}", a.log());
    assert_eq!(b.log().matches(&connect).count(), 1, "{}", b.log());
    assert_eq!(
        origin.https.accepted(),
        3,
        "one connection per route: binance, kraken, direct coinbase"
    );
}
