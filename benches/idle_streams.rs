//! One side of the suite's memory scenario, in a process of its own: opens COUNT WSS
//! streams to the origin through the SOCKS5 proxy, subscribes on each and leaves it idle,
//! and prints, per stream, the growth of resident memory (VmRSS) and of live heap bytes
//! (counted by the allocator) from after one warm-up stream to after COUNT more.
//!
//! `idle-streams ours|session|peer ORIGIN_PORT PROXY_PORT CA_PEM_FILE COUNT` (the suite runs
//! it): `session` holds resilient sessions (the built-in knobs) instead of plain streams.

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, usize::MAX);

/// VmRSS of this process, in bytes.
fn rss() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024.0
}

/// What a market-data client does before its stream goes quiet: reads the greeting, sends
/// a subscription, reads the answer. (Both sides then have read from the socket after the
/// upgrade; tungstenite fills its read buffer, 128 KiB by default, on its first read, so
/// a stream that has only read what came with the upgrade response would look cheaper
/// than any stream in use.)
async fn subscribe<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.next().await.expect("greeting").expect("greeting");
    ws.send(Message::text("subscribe")).await.expect("send");
    let answer = ws.next().await.expect("answer").expect("answer");
    assert_eq!(answer, Message::text("echo: subscribe"));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .expect("ours|peer PORT PROXY CA COUNT")
    };
    let (side, port, proxy, ca, count) = (
        arg(0).to_owned(),
        arg(1).parse::<u16>().expect("port"),
        arg(2).parse::<u16>().expect("proxy port"),
        arg(3),
        arg(4).parse::<usize>().expect("count"),
    );
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let pem = std::fs::read(ca).expect("the CA file");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (rss_per, heap_per) = runtime.block_on(async move {
        let url = format!("wss://127.0.0.1:{port}/ws");
        let ours = (side == "ours" || side == "session").then(|| {
            let vars = [
                ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
                (
                    "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
                    format!("socks5h://127.0.0.1:{proxy}"),
                ),
                // A thousand streams at once, past the connection budget (300 per 5
                // minutes by default), which would spread them over many minutes; its
                // state is per exit, not per stream.
                (
                    "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET_SESSION__CONNECTS",
                    "0".to_owned(),
                ),
            ];
            let settings = proxy_runtime::ProxySettings::loader()
                .env_vars(vars)
                .load()
                .expect("settings");
            let roots = proxy_runtime::TlsRoots::empty()
                .add_pem(&pem)
                .expect("the CA");
            proxy_runtime::ProxyInjector::builder(settings)
                .tls_roots(roots)
                .build()
        });
        use rustls::pki_types::pem::PemObject;
        let der =
            rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("a PEM certificate");
        let tls = Arc::new(proxy_benches::peer_tls_h1(der));
        let mut held_ours = Vec::new();
        let mut held_peer = Vec::new();
        let mut held_sessions = Vec::new();
        let (mut rss_before, mut heap_before) = (0.0, 0.0);
        for i in 0..=count {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                (rss_before, heap_before) = (rss(), ALLOCATOR.allocated() as f64);
            }
            match &ours {
                Some(inj) if side == "session" => {
                    use futures_util::SinkExt;
                    use tokio_tungstenite::tungstenite::Message;
                    let mut session = inj
                        .websocket_session("binance", url.as_str())
                        .open()
                        .await
                        .expect("WSS session");
                    session.next().await.expect("greeting").expect("greeting");
                    session
                        .send(Message::text("subscribe"))
                        .await
                        .expect("send");
                    let answer = session.next().await.expect("answer").expect("answer");
                    assert_eq!(answer.message, Message::text("echo: subscribe"));
                    held_sessions.push(session);
                }
                Some(inj) => {
                    let (mut ws, _) = inj
                        .connect_websocket("binance", url.as_str())
                        .await
                        .expect("WSS");
                    subscribe(&mut ws).await;
                    held_ours.push(ws);
                }
                None => {
                    let mut ws = proxy_benches::ws_by_hand(&tls, port, Some(proxy)).await;
                    subscribe(&mut ws).await;
                    held_peer.push(ws);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss_after, heap_after) = (rss(), ALLOCATOR.allocated() as f64);
        assert_eq!(
            held_ours.len() + held_peer.len() + held_sessions.len(),
            count + 1
        );
        let n = count as f64;
        ((rss_after - rss_before) / n, (heap_after - heap_before) / n)
    });
    println!("{rss_per} {heap_per}");
}
