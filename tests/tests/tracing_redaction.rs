//! Failing connections with `tracing` captured at TRACE: no password, nor its Basic-auth
//! base64, in any log line, error `Display` or error `Debug`.

use proxy_tests::Fetch;
use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use proxy_runtime::{ConnectionKind, Target};
use proxy_tests::fake::{FakeProxy, Session, closed_port};
use proxy_tests::injector;
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;

const CANARY: &str = "Tr4ce-Canary!";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn failing_connections_log_no_secret_at_trace() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
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
