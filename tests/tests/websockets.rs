//! WebSockets as exchange clients open them, direct and through each real proxy server:
//! a request with headers and a subprotocol (tokio-tungstenite's `IntoClientRequest`), the
//! upgrade response beside the stream, size limits from `WebSocketConfig`, and URLs that
//! are refused before anything is dialed.

use futures_util::{SinkExt, StreamExt};
use proxy_runtime::tungstenite::Message;
use proxy_runtime::tungstenite::client::IntoClientRequest;
use proxy_runtime::tungstenite::protocol::WebSocketConfig;
use proxy_runtime::{ProxyErrorKind as K, ProxyInjector, ProxySettings, proxied};
use proxy_tests::fake::FakeProxy;
use proxy_tests::origin::{Origin, WELCOME};
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

fn injector(proxy: Option<&str>, ca: &TestCa) -> ProxyInjector {
    let mut vars = vec![("CRYPTOFEED_PROXY_ENABLED", "true")];
    if let Some(url) = proxy {
        vars.push(("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", url));
    }
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
}

async fn exercise(proxy: Option<&str>) {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(proxy, &ca);
    let url = format!("wss://127.0.0.1:{}/ws/private", origin.wss.port());

    // Headers of one's own and subprotocols, as with `connect_async`.
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-listen-key", "lk-123".parse().unwrap());
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "v2.stream, v1.stream".parse().unwrap(),
    );
    let (mut ws, response) = inj.connect_websocket("binance", request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "v2.stream");
    let upgrade = origin.wss.received().pop().unwrap();
    assert_eq!(upgrade.target, "/ws/private");
    assert_eq!(upgrade.headers["x-listen-key"], "lk-123");
    assert_eq!(
        upgrade.headers["host"],
        format!("127.0.0.1:{}", origin.wss.port())
    );
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("echo: ping")
    );

    // A message over the configured limit is an error; under it, it arrives.
    let config = WebSocketConfig::default().max_message_size(Some(1024));
    let (mut ws, _) = inj
        .dialer("binance", proxy_runtime::ConnectionKind::Websocket)
        .connect_websocket_with_config(url.as_str(), Some(config))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    ws.send(Message::text("big 1000")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().len(), 1000);
    ws.send(Message::text("big 5000")).await.unwrap();
    let err = ws.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, proxy_runtime::tungstenite::Error::Capacity(_)),
        "{err}"
    );
}

#[tokio::test]
async fn direct() {
    exercise(None).await;
}

#[tokio::test]
async fn through_microsocks() {
    let proxy = RealProxy::microsocks(false);
    exercise(Some(&proxy.url("socks5h", None))).await;
}

#[tokio::test]
async fn through_dante() {
    let proxy = RealProxy::dante();
    exercise(Some(&proxy.url("socks5", None))).await;
}

#[tokio::test]
async fn through_tinyproxy() {
    let proxy = RealProxy::tinyproxy(false);
    exercise(Some(&proxy.url("http", None))).await;
}

#[tokio::test]
async fn through_squid() {
    let proxy = RealProxy::squid(false);
    exercise(Some(&proxy.url("http", None))).await;
}

#[proxied(exchange = "okx")]
struct Okx {
    stream: String,
}

#[proxied]
impl Okx {
    fn new(stream: String) -> Self {
        Self { stream }
    }
}

#[tokio::test]
async fn proxied_clients_take_requests_and_configs_too() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = std::sync::Arc::new(injector(None, &ca));
    let client = proxy_runtime::with_proxy_injector_sync(inj, || {
        Okx::new(format!("ws://127.0.0.1:{}/ws/public", origin.ws.port()))
    });
    let (mut ws, response) = client.websocket(client.stream.as_str()).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    let config = WebSocketConfig::default().max_frame_size(Some(16));
    let (mut ws, _) = client
        .websocket_with_config(client.stream.clone(), Some(config))
        .await
        .unwrap();
    assert!(ws.next().await.unwrap().is_ok(), "{WELCOME} fits 16 bytes");
    ws.send(Message::text("big 64")).await.unwrap();
    assert!(
        ws.next().await.unwrap().is_err(),
        "a 64-byte frame does not"
    );
}

#[tokio::test]
async fn urls_two_parsers_would_read_differently_are_refused_before_dialing() {
    let ca = TestCa::new();
    let decoy = FakeProxy::start(|s| s.hang()).await;
    let inj = injector(Some(&format!("socks5h://{}", decoy.authority())), &ca);
    for url in [
        "ws://user@a.com@b.com/".to_owned(),
        format!("wss://u:p@127.0.0.1:{}/", decoy.addr.port()),
        "wss://127.0.0.1:99999/".to_owned(),
        "https://127.0.0.1/".to_owned(),
        "wss:///nohost".to_owned(),
    ] {
        let err = inj
            .connect_websocket("binance", url.as_str())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &K::InvalidTarget, "{url}: {err}");
        assert!(!err.to_string().contains("u:p"), "{err}");
    }
    // A request missing a header tungstenite needs: refused before the tunnel opens.
    let request = http::Request::get("wss://exchange.test/ws")
        .body(())
        .unwrap();
    let err = inj.connect_websocket("binance", request).await.unwrap_err();
    assert_eq!(err.kind(), &K::InvalidTarget, "{err}");
    assert_eq!(decoy.accepted(), 0, "nothing was dialed");
}

#[tokio::test]
async fn a_config_tungstenite_would_reject_is_refused_before_dialing() {
    let ca = TestCa::new();
    let decoy = FakeProxy::start(|s| s.hang()).await;
    let inj = injector(Some(&format!("socks5h://{}", decoy.authority())), &ca);
    // tungstenite asserts that the write buffer's bound is above its target size, once
    // the tunnel and TLS are up: a panic in the caller's task, then.
    for (target, max) in [(1024, 1024), (4096, 1024)] {
        let config = WebSocketConfig::default()
            .write_buffer_size(target)
            .max_write_buffer_size(max);
        let err = inj
            .dialer("binance", proxy_runtime::ConnectionKind::Websocket)
            .connect_websocket_with_config("wss://exchange.test/ws", Some(config))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &K::InvalidRequest, "{err}");
        assert!(err.to_string().contains("max_write_buffer_size"), "{err}");
    }
    assert_eq!(decoy.accepted(), 0, "nothing was dialed");
}
