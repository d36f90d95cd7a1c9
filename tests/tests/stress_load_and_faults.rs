//! Load and faults against the real proxy servers on loopback: 500 concurrent WSS streams
//! of 1,000 messages through each server, every message once and in order, with file
//! descriptors and tasks back to their baseline once the clients are dropped; 10,000 HTTPS
//! requests over 8 exchanges with 8 routes, none crossing to another's proxy; a proxy
//! killed under running streams and started again; a proxy that stalls a tunnel.
//!
//! Counts and bounds are checked, never speed; the figures (resident memory, how long the
//! streams took to end) are printed for the record.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{Phase, ProxyInjector, ProxySettings};
use proxy_tests::GENEROUS;
use proxy_tests::fake::{FakeProxy, Session};
use proxy_tests::origin::{Origin, WELCOME, body_for};
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// An injector whose routes are `routes` (exchange, proxy URL), trusting `ca`.
fn injector(routes: &[(String, String)], ca: &TestCa) -> ProxyInjector {
    // The load opens 500 streams at once through one proxy, past any exchange's limit on
    // new connections: the connection budget, which would spread them over minutes, is
    // off here (its own tests are in sessions.rs).
    let mut vars = vec![
        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__CONNECTS".to_owned(),
            "0".to_owned(),
        ),
    ];
    for (exchange, url) in routes {
        let id = exchange.to_ascii_uppercase();
        vars.push((
            format!("CRYPTOFEED_PROXY_EXCHANGES__{id}__HTTP__URL"),
            url.clone(),
        ));
        vars.push((
            format!("CRYPTOFEED_PROXY_EXCHANGES__{id}__WEBSOCKET__URL"),
            url.clone(),
        ));
    }
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
}

/// Waits for open file descriptors and live tasks to come back to (about) `before`.
async fn back_to_baseline(fds_before: usize, tasks_before: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        let (fds, tasks) = (open_fds(), metrics.num_alive_tasks());
        if fds <= fds_before + 4 && tasks <= tasks_before + 2 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {fds} fds (before {fds_before}), {tasks} tasks (before {tasks_before})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const STREAMS: usize = 500;
const MESSAGES: usize = 1000;

/// 500 WSS streams of 1,000 pushed messages each through `proxy`.
async fn streams_through(proxy: RealProxy, scheme: &str) {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let (fds_before, tasks_before, rss_before) = (open_fds(), metrics.num_alive_tasks(), rss_kib());
    let started = Instant::now();
    let mut rss_peak = rss_before;
    {
        let inj = Arc::new(injector(
            &[("binance".to_owned(), proxy.url(scheme, None))],
            &ca,
        ));
        let mut streams = Vec::new();
        for s in 0..STREAMS {
            let inj = inj.clone();
            let url = format!("wss://127.0.0.1:{}/ws/{s}", origin.wss.port());
            streams.push(tokio::spawn(async move {
                let (mut ws, _) = inj
                    .connect_websocket("binance", url.as_str())
                    .await
                    .unwrap();
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
                ws.send(Message::text(format!("count {MESSAGES}")))
                    .await
                    .unwrap();
                for m in 0..MESSAGES {
                    let got = ws.next().await.unwrap().unwrap();
                    assert_eq!(
                        got,
                        Message::text(m.to_string()),
                        "stream {s}: once, in order"
                    );
                }
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("done"));
                ws
            }));
        }
        let mut open = Vec::new();
        for s in streams {
            open.push(s.await.unwrap());
        }
        rss_peak = rss_peak.max(rss_kib());
        assert_eq!(origin.wss.accepted(), STREAMS);
        // Dropped without a closing handshake, as a crashing client would.
        drop(open);
    }
    back_to_baseline(fds_before, tasks_before).await;
    println!(
        "{scheme} via {}: {STREAMS} streams x {MESSAGES} messages in {:?}; resident memory {} KiB before, {} KiB at the peak",
        proxy.name(),
        started.elapsed(),
        rss_before,
        rss_peak
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_streams_through_microsocks() {
    streams_through(RealProxy::microsocks(false), "socks5h").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_streams_through_dante() {
    streams_through(RealProxy::dante(), "socks5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_streams_through_tinyproxy() {
    streams_through(RealProxy::tinyproxy(false), "http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_streams_through_squid() {
    streams_through(RealProxy::squid(false), "http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_over_eight_routes_never_cross() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // Eight routes, two through each server; each proxy's outgoing connections come from
    // an address of its own, so the origin sees which proxy every request came through.
    let outbound = |n: u8| Ipv4Addr::new(127, 0, 0, 10 + n);
    let with = |n: u8| Options {
        outbound: Some(outbound(n)),
        ..Options::default()
    };
    let proxies = [
        (RealProxy::microsocks_with(with(1)), "socks5h"),
        (RealProxy::microsocks_with(with(2)), "socks5h"),
        (RealProxy::dante_with(with(3)), "socks5"),
        (RealProxy::dante_with(with(4)), "socks5h"),
        (RealProxy::tinyproxy_with(with(5)), "http"),
        (RealProxy::tinyproxy_with(with(6)), "http"),
        (RealProxy::squid_with(with(7)), "http"),
        (RealProxy::squid_with(with(8)), "http"),
    ];
    let routes: Vec<(String, String)> = proxies
        .iter()
        .enumerate()
        .map(|(i, (p, scheme))| (format!("ex{}", i + 1), p.url(scheme, None)))
        .collect();
    let expected: HashMap<String, IpAddr> = (1..=8u8)
        .map(|n| (format!("ex{n}"), IpAddr::V4(outbound(n))))
        .collect();
    let inj = Arc::new(injector(&routes, &ca));
    const REQUESTS: usize = 10_000;
    const WORKERS: usize = 64;
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let inj = inj.clone();
        let port = origin.https.port();
        workers.push(tokio::spawn(async move {
            for r in (w..REQUESTS).step_by(WORKERS) {
                let exchange = format!("ex{}", r % 8 + 1);
                let path = format!("/{exchange}/{r}");
                let body = inj
                    .http_client(&exchange)
                    .get(format!("https://127.0.0.1:{port}{path}"))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{exchange}: {e}"))
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(body, body_for(&path));
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let received = origin.https.received();
    assert_eq!(received.len(), REQUESTS);
    for request in &received {
        let exchange = request.target.split('/').nth(1).unwrap();
        assert_eq!(
            request.peer.ip(),
            expected[exchange],
            "{} came through another exchange's proxy",
            request.target
        );
    }
    println!(
        "{REQUESTS} requests over 8 routes on {} connections",
        origin.https.accepted()
    );
    // Each proxy's own log shows its tunnels (those that log: dante, tinyproxy, squid).
    for (proxy, _) in &proxies[2..] {
        assert!(
            proxy.log_mentions(&origin.https.port().to_string()).await,
            "{}",
            proxy.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_proxy_ends_every_stream_and_a_restarted_one_serves_again() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let via = Ipv4Addr::new(127, 0, 0, 21);
    let mut proxy = RealProxy::microsocks_with(Options {
        outbound: Some(via),
        ..Options::default()
    });
    let inj = Arc::new(injector(
        &[("binance".to_owned(), proxy.url("socks5h", None))],
        &ca,
    ));
    let url = format!("wss://127.0.0.1:{}/ws/live", origin.wss.port());
    let mut streams = Vec::new();
    for _ in 0..50 {
        let (mut ws, _) = inj
            .connect_websocket("binance", url.as_str())
            .await
            .unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
        streams.push(ws);
    }
    proxy.kill();
    let killed = Instant::now();
    let mut readers = Vec::new();
    for mut ws in streams {
        readers.push(tokio::spawn(async move {
            match tokio::time::timeout(GENEROUS, ws.next()).await {
                Err(_) => panic!("a stream hung after its proxy died"),
                Ok(Some(Ok(message))) => panic!("a message after the proxy died: {message}"),
                Ok(Some(Err(e))) => e.to_string(),
                Ok(None) => "ended".to_owned(),
            }
        }));
    }
    for r in readers {
        r.await.unwrap();
    }
    let ended_in = killed.elapsed();
    // New connections while it is down fail, typed, and never go direct.
    let err = inj
        .connect_websocket("binance", url.as_str())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &proxy_runtime::ProxyErrorKind::ProxyUnreachable,
        "{err}"
    );
    proxy.restart();
    let (mut ws, _) = inj
        .connect_websocket("binance", url.as_str())
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    let upgrades = origin.wss.received();
    assert_eq!(upgrades.len(), 51);
    assert!(
        upgrades.iter().all(|u| u.peer.ip() == IpAddr::V4(via)),
        "every connection came through the proxy"
    );
    println!("50 streams ended {ended_in:?} after their proxy was killed");
}

#[tokio::test]
async fn a_stalled_tunnel_ends_requests_at_their_deadline() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let to = origin.http.addr;
    // Opens the tunnel, carries the request, then stops forwarding the answer.
    let proxy = FakeProxy::start(move |mut s: Session| async move {
        s.read_head().await;
        s.write(b"HTTP/1.1 200 OK\r\n\r\n").await;
        let Ok(_upstream) = tokio::net::TcpStream::connect(to).await else {
            return;
        };
        s.hang().await;
    })
    .await;
    let inj = injector(
        &[("okx".to_owned(), format!("http://{}", proxy.authority()))],
        &ca,
    );
    let started = Instant::now();
    let err = inj
        .http_client("okx")
        .get(format!("http://127.0.0.1:{}/stalled", origin.http.port()))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.timeout_phase(), Some(Phase::ResponseHead), "{err}");
    assert!(started.elapsed() < GENEROUS);
}
