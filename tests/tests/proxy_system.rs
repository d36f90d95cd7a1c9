//! The proxy system in force: scoped injectors do not leak between concurrent tests, and
//! an injector whose settings failed to load fails every connection (fail closed).

use proxy_tests::Fetch;
use std::sync::Arc;

use proxy_runtime::{
    ConnectionKind, ProxyErrorKind, ProxyInjector, ProxySettings, proxy_injector,
    with_proxy_injector, with_proxy_injector_sync,
};
use proxy_tests::origin::Origin;
use proxy_tests::tls::TestCa;

fn settings(url: &str) -> ProxySettings {
    ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url),
        ])
        .load()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_injectors_in_parallel_do_not_leak() {
    let mut tasks = Vec::new();
    for i in 0..16u16 {
        tasks.push(tokio::spawn(async move {
            let url = format!("socks5h://proxy-{i}.test:{}", 1000 + i);
            let injector = Arc::new(ProxyInjector::new(settings(&url)));
            with_proxy_injector(injector, async move {
                for _ in 0..50 {
                    tokio::task::yield_now().await;
                    let seen = proxy_injector().dialer("binance", ConnectionKind::Http);
                    assert_eq!(seen.proxy().as_deref(), Some(url.as_str()));
                }
            })
            .await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn scoped_injector_for_synchronous_code() {
    let injector = Arc::new(ProxyInjector::new(settings("http://sync-proxy:3128")));
    let proxy = with_proxy_injector_sync(injector, || {
        proxy_injector().dialer("okx", ConnectionKind::Http).proxy()
    });
    assert_eq!(proxy.as_deref(), Some("http://sync-proxy:3128"));
}

#[tokio::test]
async fn settings_that_failed_to_load_fail_every_connection() {
    let ca = TestCa::new();
    let decoy = Origin::start(&ca).await;
    let error = ProxySettings::loader()
        .env_vars([("CRYPTOFEED_PROXY_ENABLE", "true")])
        .load()
        .unwrap_err();
    let injector = ProxyInjector::failed(error);
    let err = injector
        .http_client("binance")
        .fetch(&format!("https://127.0.0.1:{}/", decoy.https.port()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ProxyErrorKind::Settings);
    assert!(err.to_string().contains("CRYPTOFEED_PROXY_ENABLE"), "{err}");
    // Neither direct nor through a proxy: the error says so, and the dialer says why.
    assert!(!err.is_direct() && err.proxy().is_none(), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("(to 127.0.0.1:{})", decoy.https.port())),
        "{err}"
    );
    let dialer = injector.dialer("binance", proxy_runtime::ConnectionKind::Http);
    assert_eq!(
        dialer.failure().map(|e| e.kind().clone()),
        Some(ProxyErrorKind::Settings)
    );
    assert_eq!(dialer.route(), "fails (invalid proxy settings)");
    let err = injector
        .connect_websocket("binance", &format!("wss://127.0.0.1:{}/", decoy.wss.port()))
        .await
        .map(|(ws, _)| ws)
        .unwrap_err();
    assert_eq!(err.kind(), &ProxyErrorKind::Settings);
    assert_eq!(
        decoy.https.accepted() + decoy.wss.accepted(),
        0,
        "never direct"
    );
    // Asked where HTTP goes, it answers with the failure, never "direct".
    let failure = injector.http_proxy_url("binance").unwrap_err();
    assert_eq!(failure.kind(), &ProxyErrorKind::Settings);
}

#[tokio::test]
async fn invalid_exchange_ids_are_refused_not_routed_by_default() {
    let injector = ProxyInjector::new(settings("socks5h://p.test:1080"));
    let err = injector
        .http_client("binance-futures")
        .fetch("https://127.0.0.1:1/")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ProxyErrorKind::InvalidExchange);
    assert!(err.to_string().contains("binance-futures: invalid exchange id (to 127.0.0.1:1): an exchange id must not contain `-`"), "{err}");
}

#[tokio::test]
async fn one_pool_per_exchange() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let injector = ProxyInjector::builder(ProxySettings::new(false))
        .tls_roots(ca.roots())
        .build();
    let url = format!("https://127.0.0.1:{}/pooled", origin.https.port());
    // Clients of one exchange, however spelled, share a pool: one connection.
    for name in ["binance", "BINANCE", "Binance"] {
        injector.http_client(name).fetch(&url).await.unwrap();
    }
    assert_eq!(origin.https.accepted(), 1);
    // Another exchange has a pool of its own, even on the same (direct) route.
    injector.http_client("kraken").fetch(&url).await.unwrap();
    assert_eq!(origin.https.accepted(), 2);
}

#[tokio::test]
async fn tls_sessions_are_resumed_within_a_route_never_across_routes() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let injector = ProxyInjector::builder(ProxySettings::new(false))
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    let url = format!("https://127.0.0.1:{}/resume", origin.https.port());
    // `Connection: close`, so that every request opens (and resumes, or not) a connection.
    let get = |exchange: &'static str| {
        let client = injector.http_client(exchange);
        let url = url.clone();
        async move {
            client
                .get(url)
                .header("connection", "close")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    };
    get("binance").await;
    get("binance").await;
    get("kraken").await;
    get("kraken").await;
    // binance's second connection resumes binance's first session; kraken, on a route of
    // its own to the same host, starts afresh: a ticket never links the two routes.
    assert_eq!(origin.https.resumed(), [false, true, false, true]);
}

#[tokio::test]
async fn disabled_settings_with_routes_warn_once_when_loaded() {
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    let settings = ProxySettings::loader()
        .env_vars([("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "socks5h://p:1080")])
        .load()
        .unwrap();
    let injector = ProxyInjector::new(settings);
    let _ = injector.dialer("binance", proxy_runtime::ConnectionKind::Http);
    let _ = injector.http_client("binance");
    let text = logs.text();
    assert_eq!(
        text.matches("proxy routes are configured but proxies are disabled")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains(" WARN "), "{text}");
    // Enabled, or disabled without routes: nothing to warn of.
    ProxyInjector::new(ProxySettings::new(false));
    assert_eq!(logs.text(), text);
}
