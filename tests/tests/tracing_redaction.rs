//! Logs captured at TRACE, from `tracing` and from the `log` crate (which tungstenite and
//! rustls use): no proxy password, nor its Basic-auth base64, in any log line of any crate,
//! error `Display` or error `Debug`; and no target secret (an API key header, a query
//! value, a listen key in a WebSocket URL) in this crate's logs, nor in any once
//! tungstenite is kept below TRACE, as the README advises.

use futures_util::SinkExt;
use proxy_tests::Fetch;

use base64::Engine as _;
use proxy_runtime::{ConnectionKind, Target};
use proxy_tests::fake::{FakeProxy, Session, closed_port};
use proxy_tests::injector;
use proxy_tests::logs::{self, capture};
use proxy_tests::origin::Origin;
use proxy_tests::real::{PASSWORD, RealProxy, USER};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;

const CANARY: &str = "Tr4ce-Canary!";

#[tokio::test]
async fn failing_connections_log_no_secret_at_trace() {
    let (capture, _guard) = capture(logs::everything());

    let ca = TestCa::new();
    let http_407 = FakeProxy::start(|mut s: Session| async move {
        s.read_head().await;
        s.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            .await;
    })
    .await;
    let socks_fail = FakeProxy::start(|mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write(&[5, 2]).await;
        let head = s.read_exact(2).await;
        s.read_exact(usize::from(head[1])).await;
        let plen = s.read_exact(1).await;
        s.read_exact(usize::from(plen[0])).await;
        s.write(&[1, 1]).await;
    })
    .await;
    let hang = FakeProxy::start(|s: Session| s.hang()).await;
    let closed = closed_port().await;
    let encoded = "Tr4ce-Canary%21";
    let urls = [
        format!("http://trader:{encoded}@{}", http_407.authority()),
        format!("https://trader:{encoded}@{}", hang.authority()),
        format!("socks5h://trader:{encoded}@{}", socks_fail.authority()),
        format!("socks5://trader:{encoded}@127.0.0.1:{closed}"),
        format!("http://trader:{encoded}@{}", hang.authority()),
    ];
    let mut shown = String::new();
    for url in &urls {
        let inj = injector(Some(url), 1, &ca, RecordingResolver::failing());
        let err = inj
            .http_client("binance")
            .fetch("https://127.0.0.1:9/x")
            .await
            .unwrap_err();
        shown.push_str(&format!("{err}\n{err:?}\n"));
        let err = inj
            .dialer("binance", ConnectionKind::Websocket)
            .connect(&Target::new("127.0.0.1", 9).unwrap(), true)
            .await
            .unwrap_err();
        shown.push_str(&format!("{err}\n{err:?}\n"));
        let err = inj
            .connect_websocket("binance", "wss://127.0.0.1:9/ws")
            .await
            .map(|(ws, _)| ws)
            .unwrap_err();
        shown.push_str(&format!("{err}\n{err:?}\n"));
        shown.push_str(&format!("{inj:?}\n"));
    }
    let logs = capture.text();
    assert!(
        logs.contains("connection failed"),
        "the capture works:\n{logs}"
    );
    // Each failure is the one meant: the SOCKS5 fake really refused the credentials.
    assert!(shown.contains("proxy rejected the credentials"), "{shown}");
    assert!(
        shown.contains("trader:***@"),
        "errors name the redacted proxy:\n{shown}"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("trader:{CANARY}"));
    for secret in [CANARY, encoded, b64.as_str()] {
        assert!(!logs.contains(secret), "log shows {secret}:\n{logs}");
        assert!(!shown.contains(secret), "error shows {secret}:\n{shown}");
    }
}

/// Traffic that works, through a proxy with a password: HTTPS with an API key header and
/// a signed query, and a WebSocket with a listen key in its URL.
async fn traffic(logs_below_trace_for_tungstenite: bool) -> (String, [&'static str; 3]) {
    const API_KEY: &str = "ApiKey-Canary-7";
    const SIGNATURE: &str = "Signature-Canary-8";
    const LISTEN_KEY: &str = "ListenKey-Canary-9";
    let mut filter = logs::everything();
    if logs_below_trace_for_tungstenite {
        filter = filter.with_target("tungstenite", tracing::Level::DEBUG);
    }
    let (capture, _guard) = capture(filter);
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks(true);
    let inj = injector(
        Some(&socks.url("socks5h", Some((USER, PASSWORD)))),
        10,
        &ca,
        RecordingResolver::failing(),
    );
    let client = inj.http_client("binance");
    client
        .post(format!(
            "https://127.0.0.1:{}/api/v3/order",
            origin.https.port()
        ))
        .header("X-MBX-APIKEY", API_KEY)
        .query(&[("signature", SIGNATURE)])
        .body("symbol=BTCUSDT")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let url = format!(
        "wss://127.0.0.1:{}/ws/{LISTEN_KEY}?listenKey={LISTEN_KEY}",
        origin.wss.port()
    );
    let (mut ws, _) = inj
        .connect_websocket("binance", url.as_str())
        .await
        .unwrap();
    ws.send(proxy_runtime::tungstenite::Message::text("hello"))
        .await
        .unwrap();
    ws.close(None).await.unwrap();
    let logs = capture.text();
    assert!(logs.contains("connected"), "the capture works:\n{logs}");
    (logs, [API_KEY, SIGNATURE, LISTEN_KEY])
}

#[tokio::test]
async fn working_traffic_logs_no_proxy_secret_anywhere_and_no_target_secret_of_ours() {
    let (logs, target_secrets) = traffic(false).await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [PASSWORD, b64.as_str()] {
        assert!(!logs.contains(secret), "a log shows {secret}:\n{logs}");
    }
    // This crate's own records never hold a target secret (only `host:port`).
    let ours: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("proxy_runtime"))
        .collect();
    assert!(!ours.is_empty());
    // What the README warns of: tungstenite, through the `log` crate, writes its upgrade
    // request (a listen key in the URL included) at TRACE. Should it stop, the README's
    // advice can go too.
    assert!(
        logs.lines()
            .any(|l| l.contains("tungstenite::handshake::client") && l.contains(target_secrets[2])),
        "{logs}"
    );
    for secret in target_secrets {
        assert!(
            !ours.iter().any(|l| l.contains(secret)),
            "{secret} in:\n{}",
            ours.join("\n")
        );
    }
}

#[tokio::test]
async fn with_tungstenite_below_trace_no_log_holds_a_target_secret() {
    let (logs, target_secrets) = traffic(true).await;
    for secret in target_secrets {
        assert!(!logs.contains(secret), "a log shows {secret}:\n{logs}");
    }
}
