//! The metrics of a budget shared through a real `redis-server`: calls timed by
//! operation, requests that waited for a lease, and an outage counted once with its error
//! while a gauge says the fallback is in force. One test per file: a process has one
//! global recorder.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use proxy_runtime::{HttpClient, ProxyInjector, ProxySettings};
use proxy_tests::describe_metric as describe;
use proxy_tests::origin::serve_http_with;
use proxy_tests::redis::RedisServer;
use proxy_tests::weighing::{Limiter, USED};

/// Every metric of the shared store so far, by name and labels, added to `out`: a
/// counter's increments and a histogram's samples since the last snapshot (a snapshot
/// takes them), a gauge's value now.
fn shared_metrics(
    snapshotter: &Snapshotter,
    out: &mut BTreeMap<(String, String), f64>,
) -> BTreeMap<(String, String), f64> {
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (name, labels) = describe(&key);
        if !name.starts_with("proxy_shared_") {
            continue;
        }
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let entry = out.entry((name, labels)).or_insert(0.0);
        match value {
            DebugValue::Counter(n) => *entry += n as f64,
            DebugValue::Gauge(g) => *entry = g.into_inner(),
            DebugValue::Histogram(samples) => *entry += samples.len() as f64,
        }
    }
    out.clone()
}

async fn send_for(client: &HttpClient, url: &str, run: Duration) -> usize {
    let end = Instant::now() + run;
    let mut ok = 0;
    while Instant::now() < end {
        let response = client
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200);
        ok += 1;
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_lease_waits_and_an_outage_show_in_the_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");
    let mut redis = RedisServer::start();
    let limiter = Limiter::new(1_000_000, Duration::from_secs(1));
    let endpoint = serve_http_with(limiter.handler()).await;
    let url = format!("http://127.0.0.1:{}/w", endpoint.port());
    let vars = [
        ("CRYPTOFEED_PROXY_SYSTEM", "false".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
            "100".to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WINDOW_MS",
            "1000".to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER",
            USED.to_owned(),
        ),
        ("CRYPTOFEED_PROXY_SHARED__URL", redis.url(None)),
        ("CRYPTOFEED_PROXY_SHARED__PROCESSES", "2".to_owned()),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    let client = ProxyInjector::new(settings).http_client("binance");

    let mut seen = BTreeMap::new();
    assert!(send_for(&client, &url, Duration::from_millis(500)).await > 10);
    let m = shared_metrics(&snapshotter, &mut seen);
    let get = |m: &BTreeMap<(String, String), f64>, name: &str, labels: &str| {
        m.get(&(name.to_owned(), labels.to_owned())).copied()
    };
    assert!(
        get(&m, "proxy_shared_call_seconds", "op=lease").unwrap() >= 1.0,
        "{m:?}"
    );
    // The first request had no lease: it waited for one.
    assert!(
        get(
            &m,
            "proxy_shared_lease_wait_seconds",
            "exchange=binance,kind=http"
        )
        .unwrap()
            >= 1.0,
        "{m:?}"
    );
    assert_eq!(
        get(&m, "proxy_shared_fallbacks_total", "error=unreachable"),
        None,
        "no outage yet: {m:?}"
    );

    redis.kill();
    let calls = |m: &BTreeMap<(String, String), f64>| -> f64 {
        m.iter()
            .filter(|((name, _), _)| name == "proxy_shared_call_seconds")
            .map(|(_, n)| n)
            .sum()
    };
    let before = calls(&shared_metrics(&snapshotter, &mut seen));
    assert!(send_for(&client, &url, Duration::from_millis(1500)).await > 0);
    let m = shared_metrics(&snapshotter, &mut seen);
    // A store that is down is asked again once a second, not at every chance: the call
    // that failed, the lease it may have granted released once, a retry or two.
    let during = calls(&m) - before;
    assert!(
        (1.0..=6.0).contains(&during),
        "{during} calls in 1.5 s of outage: {m:?}"
    );
    assert_eq!(
        get(&m, "proxy_shared_fallbacks_total", "error=unreachable"),
        Some(1.0),
        "one outage, counted once: {m:?}"
    );
    assert_eq!(get(&m, "proxy_shared_fallback", ""), Some(1.0), "{m:?}");

    redis.restart();
    assert!(send_for(&client, &url, Duration::from_millis(2500)).await > 0);
    let m = shared_metrics(&snapshotter, &mut seen);
    assert_eq!(get(&m, "proxy_shared_fallback", ""), Some(0.0), "{m:?}");
    assert_eq!(
        get(&m, "proxy_shared_fallbacks_total", "error=unreachable"),
        Some(1.0),
        "{m:?}"
    );
}
