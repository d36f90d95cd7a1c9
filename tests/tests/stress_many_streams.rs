//! Load through one real SOCKS5 proxy (microsocks) on loopback: hundreds of concurrent
//! WebSocket streams and thousands of HTTP requests; every message delivered once and in
//! order per stream; no file descriptors or tasks left behind once the clients are dropped.
//! Counts are checked, never speed.

use proxy_tests::Fetch;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proxy_tests::injector;
use proxy_tests::origin::{Origin, WELCOME, body_for};
use proxy_tests::real::RealProxy;
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;
use tokio_tungstenite::tungstenite::Message;

const STREAMS: usize = 200;
const MESSAGES: usize = 20;
const REQUESTS: usize = 2000;
const CONCURRENCY: usize = 50;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
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

/// What the whole run may add to resident memory: generous, but far below what keeping
/// every message or connection would take.
const MEMORY_BOUND_KIB: usize = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_streams_and_thousands_of_requests_through_one_proxy() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks(false);
    let metrics = tokio::runtime::Handle::current().metrics();
    let fds_before = open_fds();
    let tasks_before = metrics.num_alive_tasks();
    let rss_before = rss_kib();
    {
        let inj = std::sync::Arc::new(injector(
            Some(&socks.url("socks5h", None)),
            30,
            &ca,
            RecordingResolver::failing(),
        ));

        let mut streams = Vec::new();
        for s in 0..STREAMS {
            let inj = inj.clone();
            let url = format!("wss://127.0.0.1:{}/ws/{s}", origin.wss.port());
            streams.push(tokio::spawn(async move {
                let mut ws = inj
                    .connect_websocket("binance", &url)
                    .await
                    .map(|(ws, _)| ws)
                    .expect("stream opens");
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
                for m in 0..MESSAGES {
                    ws.send(Message::text(format!("{s}/{m}"))).await.unwrap();
                }
                for m in 0..MESSAGES {
                    let got = ws.next().await.unwrap().unwrap();
                    assert_eq!(
                        got,
                        Message::text(format!("echo: {s}/{m}")),
                        "once, in order"
                    );
                }
                ws.close(None).await.unwrap();
            }));
        }
        for s in streams {
            s.await.unwrap();
        }

        let client = inj.http_client("binance");
        let mut workers = Vec::new();
        for w in 0..CONCURRENCY {
            let client = client.clone();
            let port = origin.https.port();
            workers.push(tokio::spawn(async move {
                for r in (w..REQUESTS).step_by(CONCURRENCY) {
                    let path = format!("/r/{r}");
                    let body = client
                        .fetch(&format!("https://127.0.0.1:{port}{path}"))
                        .await
                        .expect("request");
                    assert_eq!(body, body_for(&path));
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        assert!(
            origin.https.accepted() <= CONCURRENCY * 2,
            "the pool reuses connections: {} for {REQUESTS} requests",
            origin.https.accepted()
        );
        assert_eq!(origin.wss.accepted(), STREAMS);
    }
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < MEMORY_BOUND_KIB,
        "resident memory grew by {grown} KiB"
    );
    // Everything the clients opened is closed once they are dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (fds, tasks) = (open_fds(), metrics.num_alive_tasks());
        if fds <= fds_before + 4 && tasks <= tasks_before + 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {fds} fds (before {fds_before}), {tasks} tasks (before {tasks_before})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
