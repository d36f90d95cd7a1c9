//! What a route's connections record through the `metrics` facade, read back from a
//! recorder installed after the client is built and before its first connection (the
//! handles are made then). One test per file: a process has one global recorder.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use proxy_runtime::{ProxyInjector, ProxySettings};
use proxy_tests::origin::Origin;
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

use proxy_tests::describe_metric as describe;

#[tokio::test]
async fn connections_are_counted_by_member_and_outcome_and_timed_by_phase() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let live = RealProxy::microsocks_with(Options {
        outbound: Some(Ipv4Addr::new(127, 0, 0, 51)),
        ..Options::default()
    });
    let dead = format!(
        "socks5h://trader:s3cret@127.0.0.1:{}",
        proxy_tests::fake::closed_port().await
    );
    let urls = serde_json::to_string(&[dead.clone(), live.url("socks5h", None)]).unwrap();
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
            urls.as_str(),
        ),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    let inj = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    let client = inj.http_client("binance");
    // Installed after the client was built: the route's handles are made at its first
    // connection, from the recorder in force then.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    // The dead member is benched during the first request: after this instant.
    let mut before = None;
    for _ in 0..3 {
        before.get_or_insert_with(std::time::Instant::now);
        let response = client
            .get(format!("{base}/x"))
            .header("connection", "close")
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap();
    }
    // A target whose certificate is not trusted: a failure of the target's, counted
    // against the member it was tried through, which is not benched for it.
    let stranger = Origin::start(&TestCa::new()).await;
    let err = client
        .get(format!("https://127.0.0.1:{}/x", stranger.https.port()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &proxy_runtime::ProxyErrorKind::Tls, "{err}");
    // The exchange limits the live member: it cools.
    let limited = client
        .get(format!("{base}/ratelimit/30"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    limited.bytes().await.unwrap();

    let dead_shown = dead.replace("s3cret", "***");
    let live_shown = live.url("socks5h", None);
    let mut counters = BTreeMap::new();
    let mut gauges = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (name, labels) = describe(&key);
        for value in labels.values() {
            assert!(
                !value.contains("s3cret"),
                "a label shows a password: {value}"
            );
        }
        match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                counters.insert((name, labels), n);
            }
            (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                gauges.insert((name, labels), v.into_inner());
            }
            (MetricKind::Histogram, DebugValue::Histogram(v)) => {
                histograms.insert((name, labels), v.len());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let route = [("exchange", "binance"), ("kind", "http")];
    let attempts = |member: &str, outcome: &[(&str, &str)]| {
        let mut l = route.to_vec();
        l.push(("member", member));
        l.extend_from_slice(outcome);
        counters
            .get(&("proxy_connect_attempts_total".to_owned(), labels(&l)))
            .copied()
    };
    // Four connections (three closed after one request each, and the limited one) went
    // through the live member; the dead one was tried, then benched (once, unless the
    // machine was slow enough for its first bench, 0.8 s at the least, to end).
    assert_eq!(
        attempts(&live_shown, &[("outcome", "ok")]),
        Some(4),
        "{counters:#?}"
    );
    let unreachable = [("outcome", "error"), ("error_kind", "proxy_unreachable")];
    let dead_tried = attempts(&dead_shown, &unreachable).expect("counted");
    assert!(dead_tried >= 1, "{counters:#?}");
    assert_eq!(attempts(&dead_shown, &[("outcome", "ok")]), Some(0));
    assert_eq!(
        attempts(
            &live_shown,
            &[("outcome", "error"), ("error_kind", "timeout")]
        ),
        Some(0),
        "every error kind is registered at zero"
    );
    assert_eq!(
        attempts(&live_shown, &[("outcome", "error"), ("error_kind", "tls")]),
        Some(1),
        "the target's certificate: {counters:#?}"
    );
    let gauge = |name: &str| gauges.get(&(name.to_owned(), labels(&route))).copied();
    // The dead member's first bench lasts 0.8 s at the least: counted while it lasts. (That
    // the gauge drops when a bench ends is the pool's unit tests' to show, on a stopped
    // clock.)
    if before.unwrap().elapsed() < std::time::Duration::from_millis(790) {
        assert_eq!(dead_tried, 1, "{counters:#?}");
        assert_eq!(gauge("proxy_members_benched"), Some(1.0), "{gauges:#?}");
    }
    assert_eq!(gauge("proxy_members_cooling"), Some(1.0), "{gauges:#?}");
    let timed = |member: &str, phase: &str| {
        let mut l = route.to_vec();
        l.extend_from_slice(&[("member", member), ("phase", phase)]);
        histograms
            .get(&("proxy_connect_phase_seconds".to_owned(), labels(&l)))
            .copied()
    };
    for phase in ["connect", "proxy_handshake", "tls"] {
        assert_eq!(
            timed(&live_shown, phase),
            Some(5),
            "{phase}: {histograms:#?}"
        );
    }
    assert_eq!(
        timed(&live_shown, "resolve"),
        Some(0),
        "an address is not looked up"
    );
    assert_eq!(
        timed(&dead_shown, "connect"),
        Some(dead_tried as usize),
        "{histograms:#?}"
    );
    assert_eq!(
        timed(&dead_shown, "proxy_handshake"),
        Some(0),
        "never reached"
    );
}
