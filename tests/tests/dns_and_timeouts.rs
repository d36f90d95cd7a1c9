//! Which names are resolved locally, per scheme; and timeouts that name their phase.

use proxy_tests::Fetch;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proxy_runtime::{Phase, ProxyErrorKind as K};
use proxy_tests::fake::{FakeProxy, Session};
use proxy_tests::injector;
use proxy_tests::origin::{Origin, WELCOME, body_for};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// A SOCKS5 fake that accepts any request and tunnels to `to`, recording the request.
async fn socks5_tunnel(
    to: std::net::SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| {
        let log = log.clone();
        async move {
            s.read_socks5_greeting().await;
            s.write(&[5, 0]).await;
            let req = s.read_socks5_request().await;
            log.lock().unwrap().push(req);
            s.write(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 80]).await;
            s.pipe_to(to).await;
        }
    })
    .await
}

/// An HTTP CONNECT fake that tunnels to `to`.
async fn connect_tunnel(to: std::net::SocketAddr) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| async move {
        s.read_head().await;
        s.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        s.pipe_to(to).await;
    })
    .await
}

/// A SOCKS4 fake that tunnels to `to`, recording the request head (8 bytes).
async fn socks4_tunnel(
    to: std::net::SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| {
        let log = log.clone();
        async move {
            let req = s.read_socks4_request().await;
            log.lock().unwrap().push(req);
            s.write(&[0, 0x5a, 0, 0, 0, 0, 0, 0]).await;
            s.pipe_to(to).await;
        }
    })
    .await
}

#[tokio::test]
async fn proxy_resolving_schemes_never_resolve_the_target_locally() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let log = std::sync::Arc::default();
    let socks = socks5_tunnel(origin.https.addr, log).await;
    let http = connect_tunnel(origin.https.addr).await;
    let socks4a = FakeProxy::start({
        let to = origin.https.addr;
        move |mut s: Session| async move {
            s.read_socks4_request().await;
            s.write(&[0, 0x5a, 0, 0, 0, 0, 0, 0]).await;
            s.pipe_to(to).await;
        }
    })
    .await;
    for url in [
        format!("socks5h://{}", socks.authority()),
        format!("http://{}", http.authority()),
        format!("socks4a://{}", socks4a.authority()),
    ] {
        // A resolver that fails, and records, any lookup: none may happen.
        let resolver = RecordingResolver::failing();
        let inj = injector(Some(&url), 5, &ca, resolver.clone());
        let body = inj
            .http_client("binance")
            .fetch(&format!(
                "https://exchange.test:{}/remote-dns",
                origin.https.port()
            ))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(body, body_for("/remote-dns"));
        assert!(
            resolver.asked().is_empty(),
            "{url} resolved locally: {:?}",
            resolver.asked()
        );
    }
}

#[tokio::test]
async fn local_dns_schemes_resolve_and_send_an_address() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let log5 = std::sync::Arc::default();
    let socks5 = socks5_tunnel(origin.https.addr, std::sync::Arc::clone(&log5)).await;
    let log4 = std::sync::Arc::default();
    let socks4 = socks4_tunnel(origin.https.addr, std::sync::Arc::clone(&log4)).await;
    let resolver =
        RecordingResolver::new(&[("exchange.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))]);
    let port = origin.https.port();
    for url in [
        format!("socks5://{}", socks5.authority()),
        format!("socks4://{}", socks4.authority()),
    ] {
        let inj = injector(Some(&url), 5, &ca, resolver.clone());
        let body = inj
            .http_client("kraken")
            .fetch(&format!("https://exchange.test:{port}/local-dns"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(body, body_for("/local-dns"));
    }
    assert_eq!(resolver.asked(), ["exchange.test", "exchange.test"]);
    let mut expected5 = vec![5, 1, 0, 1, 127, 0, 0, 1];
    expected5.extend(port.to_be_bytes());
    assert_eq!(log5.lock().unwrap()[0], expected5);
    let mut expected4 = vec![4, 1];
    expected4.extend(port.to_be_bytes());
    expected4.extend([127, 0, 0, 1, 0]);
    assert_eq!(log4.lock().unwrap()[0], expected4);
}

#[tokio::test]
async fn a_local_dns_failure_is_a_target_error_and_the_proxy_sees_nothing() {
    let ca = TestCa::new();
    let socks = FakeProxy::start(|s: Session| s.hang()).await;
    for scheme in ["socks5", "socks4"] {
        let inj = injector(
            Some(&format!("{scheme}://{}", socks.authority())),
            5,
            &ca,
            RecordingResolver::failing(),
        );
        let err = inj
            .http_client("okx")
            .fetch("https://unknown.test/")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &K::TargetResolution, "{scheme}: {err}");
        assert!(
            err.to_string().contains("cannot resolve the target's name"),
            "{err}"
        );
    }
    assert_eq!(socks.accepted(), 0);
}

#[tokio::test]
async fn direct_routes_resolve_locally_and_need_no_proxy() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let resolver =
        RecordingResolver::new(&[("exchange.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))]);
    let inj = injector(None, 5, &ca, resolver.clone());
    let body = inj
        .http_client("coinbase")
        .fetch(&format!(
            "https://exchange.test:{}/direct",
            origin.https.port()
        ))
        .await
        .unwrap();
    assert_eq!(body, body_for("/direct"));
    assert_eq!(resolver.asked(), ["exchange.test"]);
    let mut ws = inj
        .connect_websocket(
            "coinbase",
            &format!("ws://127.0.0.1:{}/ws", origin.ws.port()),
        )
        .await
        .map(|(ws, _)| ws)
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
}

async fn timeout_phase(url: &str, target: &str, ws: bool) -> (Phase, Duration) {
    let ca = TestCa::new();
    let inj = injector(Some(url), 1, &ca, RecordingResolver::failing());
    let started = Instant::now();
    let err = if ws {
        inj.connect_websocket("htx", target)
            .await
            .map(|(ws, _)| ws)
            .unwrap_err()
    } else {
        inj.http_client("htx").fetch(target).await.unwrap_err()
    };
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{url}: took {took:?}");
    assert!(err.to_string().contains("timed out during"), "{err}");
    (
        err.timeout_phase()
            .unwrap_or_else(|| panic!("not a timeout: {err}")),
        took,
    )
}

#[tokio::test]
async fn timeouts_name_the_phase_and_hold_the_bound() {
    // SOCKS greeting never answered; one byte then a stall.
    let silent = FakeProxy::start(|s: Session| s.hang()).await;
    let one_byte = FakeProxy::start(|mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write(&[5]).await;
        s.hang().await;
    })
    .await;
    for proxy in [&silent, &one_byte] {
        let (phase, _) = timeout_phase(
            &format!("socks5h://{}", proxy.authority()),
            "https://exchange.test/",
            false,
        )
        .await;
        assert_eq!(phase, Phase::ProxyHandshake);
    }
    // TLS to the target never answered: the tunnel is up, the target accepts and stalls.
    let stalling_target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stall_addr = stalling_target.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = stalling_target.accept().await {
            held.push(s);
        }
    });
    let tunnel = connect_tunnel(stall_addr).await;
    let (phase, _) = timeout_phase(
        &format!("http://{}", tunnel.authority()),
        "https://exchange.test/",
        false,
    )
    .await;
    assert_eq!(phase, Phase::Tls);
    // TLS to an https:// proxy never answered.
    let (phase, _) = timeout_phase(
        &format!("https://{}", silent.authority()),
        "https://exchange.test/",
        false,
    )
    .await;
    assert_eq!(phase, Phase::ProxyTls);
    // WebSocket upgrade never answered: plain ws:// through a tunnel to a silent target.
    let (phase, _) = timeout_phase(
        &format!("http://{}", tunnel.authority()),
        "ws://exchange.test/stream",
        true,
    )
    .await;
    assert_eq!(phase, Phase::WebSocketUpgrade);
}

#[tokio::test]
async fn websocket_messages_flow_through_a_proxy() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxy = connect_tunnel(origin.wss.addr).await;
    let inj = injector(
        Some(&format!("http://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    let mut ws = inj
        .connect_websocket(
            "binance",
            &format!("wss://exchange.test:{}/ws/btcusdt@trade", origin.wss.port()),
        )
        .await
        .map(|(ws, _)| ws)
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    for i in 0..3 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("echo: m{i}"))
        );
    }
    assert_eq!(proxy.accepted(), 1);
    assert_eq!(
        ws.get_ref().description(),
        format!(
            "via http://{} to exchange.test:{}",
            proxy.authority(),
            origin.wss.port()
        )
    );
}

#[tokio::test]
async fn ipv6_targets_through_connect_are_bracketed_and_tls_names_are_not() {
    let ca = TestCa::new();
    let origin = Origin::start_on(&ca, "::1").await;
    let proxy = connect_tunnel(origin.https.addr).await;
    let inj = injector(
        Some(&format!("http://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    let body = inj
        .http_client("okx")
        .fetch(&format!("https://[::1]:{}/v6", origin.https.port()))
        .await
        .unwrap();
    assert_eq!(body, body_for("/v6"));
    let head = String::from_utf8(proxy.received()).unwrap();
    assert!(
        head.starts_with(&format!(
            "CONNECT [::1]:{} HTTP/1.1\r\n",
            origin.https.port()
        )),
        "{head}"
    );
}

#[tokio::test]
async fn local_dns_tries_each_address_in_order_through_the_proxy() {
    // The target's name resolves to an IPv6 address first, where nothing listens, then to
    // the IPv4 address of the origin: a real SOCKS5 server is asked for the first, answers
    // that the connection was refused, and is asked for the second on a new connection.
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let resolver = RecordingResolver::new(&[
        ("exchange.test", IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
        ("exchange.test", IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ]);
    let port = origin.https.port();
    for proxy in [
        proxy_tests::real::RealProxy::microsocks(false),
        proxy_tests::real::RealProxy::dante(),
    ] {
        let inj = injector(Some(&proxy.url("socks5", None)), 5, &ca, resolver.clone());
        let body = inj
            .http_client("kraken")
            .fetch(&format!("https://exchange.test:{port}/every-address"))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", proxy.name()));
        assert_eq!(body, body_for("/every-address"));
    }
    // Resolved once per connection, never again per address.
    assert_eq!(resolver.asked(), ["exchange.test", "exchange.test"]);
}
