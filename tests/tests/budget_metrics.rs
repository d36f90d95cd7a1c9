//! Weight budgets under load: 2,000 requests at full speed over two exits of 100 per
//! second each, against a local exchange that answers 429 past 100 per second per IP
//! (`proxy_tests::weighing`). No request earns a 429, both exits carry traffic, and the
//! waits, the refusals and each exit's budget show in the metrics. One test per file: a
//! process has one global recorder.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use proxy_runtime::{ProxyErrorKind as K, ProxyInjector, ProxySettings};
use proxy_tests::describe_metric as describe;
use proxy_tests::origin::serve_https_with;
use proxy_tests::tls::TestCa;
use proxy_tests::weighing::{Limiter, USED};

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_at_full_speed_never_earn_a_429_and_the_waits_show() {
    let ca = TestCa::new();
    let limiter = Limiter::new(100, Duration::from_secs(1));
    let endpoint = serve_https_with(&ca, limiter.handler()).await;
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
            r#"["direct://127.0.0.8", "direct://127.0.0.9"]"#,
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
            "100",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WINDOW_MS",
            "1000",
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER",
            USED,
        ),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    let client = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
        .http_client("binance");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");
    let url = Arc::new(format!("https://127.0.0.1:{}/w", endpoint.port()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < REQUESTS {
                let response = client.get(url.as_str()).send().await.expect("sent");
                statuses.push(response.status().as_u16());
                response.bytes().await.expect("body");
            }
            statuses
        }));
    }
    let mut statuses = BTreeMap::new();
    for worker in workers {
        for status in worker.await.unwrap() {
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    assert_eq!(statuses, BTreeMap::from([(200, REQUESTS)]), "no 429");
    assert_eq!(limiter.over(), 0);
    let mut by_peer = BTreeMap::new();
    for received in endpoint.received() {
        *by_peer.entry(received.peer.ip()).or_insert(0) += 1;
    }
    let exit = |n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
    assert_eq!(
        by_peer.keys().copied().collect::<Vec<_>>(),
        [exit(8), exit(9)]
    );
    assert!(
        by_peer.values().all(|&n| n >= 500),
        "both exits carry traffic: {by_peer:?}"
    );
    // Waits are recorded, by exit, for the requests that waited: not the first 200,
    // admitted at once. (A snapshot takes the histograms' values.)
    let mut waits = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Histogram(v) = value
            && key.key().name() == "proxy_weight_wait_seconds"
        {
            waits.insert(describe(&key).1["member"].clone(), v.len());
        }
    }
    let waited: usize = waits.values().sum();
    assert!(waited > 0 && waited < REQUESTS, "{waits:?}");
    assert_eq!(waits.len(), 2, "both exits had requests wait: {waits:?}");

    // A request that cannot wait: refused, and counted.
    let mut refused = 0;
    for _ in 0..300 {
        match client
            .get(url.as_str())
            .timeout(Duration::from_millis(1))
            .send()
            .await
        {
            Ok(response) => drop(response.bytes().await),
            // Admitted at its deadline, it may run out while it is sent.
            Err(e) if e.is_timeout() => {}
            Err(e) if matches!(e.kind(), K::RateLimited { .. }) => {
                refused += 1;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 1, "within 300 requests, both budgets are spent");

    let mut gauges = BTreeMap::new();
    let mut refusals = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (name, labels) = describe(&key);
        match (key.kind(), value, name.as_str()) {
            (
                MetricKind::Gauge,
                DebugValue::Gauge(v),
                "proxy_weight_used" | "proxy_weight_left",
            ) => {
                assert_eq!(labels["exchange"], "binance");
                gauges.insert((name.clone(), labels["member"].clone()), v.into_inner());
            }
            (MetricKind::Counter, DebugValue::Counter(n), "proxy_weight_refusals_total") => {
                refusals += n;
            }
            _ => {}
        }
    }
    assert_eq!(refusals, 1);
    for member in ["direct://127.0.0.8", "direct://127.0.0.9"] {
        let used = gauges[&("proxy_weight_used".to_owned(), member.to_owned())];
        let left = gauges[&("proxy_weight_left".to_owned(), member.to_owned())];
        // Used may be more than the budget: the exchange's count, raised above ours.
        assert!(used > 0.0, "{member}: {gauges:?}");
        assert_eq!(left, (100.0 - used).max(0.0), "{member}: {gauges:?}");
    }

    // Quiet for a window and more: the gauges follow the weight as it expires, with no
    // request to set them.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (name, labels) = describe(&key);
        if let DebugValue::Gauge(v) = value
            && name.starts_with("proxy_weight_")
        {
            let expected = if name == "proxy_weight_used" {
                0.0
            } else {
                100.0
            };
            assert_eq!(v.into_inner(), expected, "{name} {labels:?}");
        }
    }
}
