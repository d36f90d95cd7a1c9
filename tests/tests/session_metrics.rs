//! What a resilient session reports besides its messages: `metrics` counters and the
//! recovery histogram (a recorder installed before the session opens; one test per file:
//! a process has one global recorder), and `tracing` events that name the exchange and
//! the route with the proxy's password redacted.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{ProxyInjector, ProxySettings, SessionSettings};
use proxy_tests::GENEROUS;
use proxy_tests::feed::{Feed, tick_number};
use proxy_tests::logs;
use proxy_tests::real::{PASSWORD, RealProxy, USER};
use proxy_tests::tls::TestCa;

use proxy_tests::describe_metric as describe;

/// The next tick's connection.
async fn tick(session: &mut proxy_runtime::WebSocketSession) -> u64 {
    loop {
        let item = tokio::time::timeout(GENEROUS, session.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        if tick_number(&item.message).is_some() {
            return item.connection;
        }
    }
}

#[tokio::test]
async fn connections_losses_rotations_recovery_and_budget_waits_are_counted_and_logged_redacted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");
    let (logs, _guard) = logs::capture(logs::everything());

    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let mut proxy = RealProxy::microsocks(true);
    let url = proxy.url("socks5h", Some((USER, PASSWORD)));
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
                url.as_str(),
            ),
            // Two connections per 300 ms: the third of the test waits its turn.
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__CONNECTS",
                "2",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__WINDOW_MS",
                "300",
            ),
        ])
        .load()
        .unwrap();
    let injector = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build();
    let knobs = SessionSettings::new()
        .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .with_max_lifetime(Duration::from_millis(200), Duration::from_secs(5));
    let mut session = injector
        .websocket_session("binance", feed.url("feed"))
        .settings(knobs)
        .on_connect(|s| async move { s.send(Message::text("subscribe")).await })
        .open()
        .await
        .unwrap();
    // A rotation, then a loss and a reconnection.
    while tick(&mut session).await < 2 {}
    proxy.restart();
    let lost_on = session.connection();
    loop {
        let connection = tick(&mut session).await;
        if Some(connection) != lost_on && connection > 2 {
            break;
        }
    }

    let mut counters = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (name, labels) = describe(&key);
        assert!(labels.values().all(|v| !v.contains(PASSWORD)), "{labels:?}");
        match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                counters.insert((name, labels), n);
            }
            (MetricKind::Histogram, DebugValue::Histogram(v)) => {
                histograms.insert((name, labels), v.len());
            }
            _ => {}
        }
    }
    let binance: BTreeMap<String, String> = [("exchange".to_owned(), "binance".to_owned())].into();
    let counter = |name: &str| counters.get(&(name.to_owned(), binance.clone())).copied();
    assert!(
        counter("websocket_session_connects_total") >= Some(3),
        "{counters:#?}"
    );
    assert!(
        counter("websocket_session_disconnects_total") >= Some(1),
        "{counters:#?}"
    );
    let rotated: BTreeMap<String, String> = [
        ("exchange".to_owned(), "binance".to_owned()),
        ("overlap".to_owned(), "true".to_owned()),
    ]
    .into();
    assert!(
        counters.get(&("websocket_session_rotations_total".to_owned(), rotated)) >= Some(&1),
        "{counters:#?}"
    );
    assert!(
        histograms.get(&(
            "websocket_session_recovery_seconds".to_owned(),
            binance.clone()
        )) >= Some(&1),
        "{histograms:#?}"
    );
    let waits = histograms
        .iter()
        .filter(|((name, _), _)| name == "proxy_connect_budget_wait_seconds")
        .map(|(_, n)| *n)
        .sum::<usize>();
    assert!(
        waits >= 1,
        "a connection waited for the budget: {histograms:#?}"
    );

    let text = logs.text();
    assert!(text.contains("websocket session connected"), "{text}");
    assert!(text.contains("websocket session disconnected"), "{text}");
    assert!(text.contains("websocket session rotated"), "{text}");
    assert!(
        text.contains("exchange=\"binance\"") || text.contains("exchange=binance"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{USER}:***@")),
        "the route, redacted: {text}"
    );
    assert!(!text.contains(PASSWORD), "a password in the logs");
}
