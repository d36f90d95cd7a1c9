//! `proxy-check --probe`: ok through a live microsocks to a local TLS server, and the
//! typed error (exchange and redacted proxy) once the proxy is stopped.

use proxy_tests::origin::Origin;
use proxy_tests::real::{PASSWORD, RealProxy, USER};
use proxy_tests::tls::TestCa;

async fn probe(url: &str, proxy: &str, ca_file: &std::path::Path) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy-check"))
        .args(["--probe", url, "--ca", ca_file.to_str().unwrap(), "binance"])
        .env_clear()
        .env("CRYPTOFEED_PROXY_ENABLED", "true")
        .env("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", proxy)
        .env("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", proxy)
        .output()
        .await
        .expect("run proxy-check");
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn probe_is_ok_through_a_live_proxy_and_typed_when_it_is_stopped() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let ca_file = std::env::temp_dir().join(format!("probe-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();
    let socks = RealProxy::microsocks(true);
    let proxy = socks.url("socks5h", Some((USER, PASSWORD)));
    let shown = format!("socks5h://{USER}:***@127.0.0.1:{}", socks.port);

    for url in [
        format!("https://127.0.0.1:{}/api", origin.https.port()),
        format!("wss://127.0.0.1:{}/ws", origin.wss.port()),
    ] {
        let (code, stdout, stderr) = probe(&url, &proxy, &ca_file).await;
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert_eq!(
            stdout.matches(" ok (").count(),
            2,
            "default and binance:\n{stdout}"
        );
        assert!(stdout.contains(&shown), "{stdout}");
        assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    }

    drop(socks);
    let url = format!("https://127.0.0.1:{}/api", origin.https.port());
    let (code, stdout, stderr) = probe(&url, &proxy, &ca_file).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAILED: binance: proxy unreachable"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "(via {shown} to 127.0.0.1:{})",
            origin.https.port()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD));
    std::fs::remove_file(&ca_file).unwrap();
}
