//! Exits of this host as pool members: local source addresses (Linux routes all of
//! 127.0.0.0/8 to `lo`, so every loopback address can be bound), a network interface, the
//! source of the socket to a proxy, and headers on the CONNECT request; against an origin
//! that logs every peer, scripted proxies and squid. No connection ever leaves from the
//! default address when a member's source cannot be used.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures_util::StreamExt;
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{ProxyError, ProxyErrorKind as K, ProxyInjector, ProxySettings};
use proxy_tests::fake::FakeProxy;
use proxy_tests::origin::{Origin, WELCOME};
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

/// A header value no output may contain.
const SECRET: &str = "sess-42f1e0c9";

fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// An injector whose `binance` WebSocket route is the pool `urls` (a JSON array of
/// strings and objects) by `strategy`.
fn injector(urls: serde_json::Value, strategy: &str, ca: &TestCa) -> ProxyInjector {
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URLS",
            urls.to_string(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__STRATEGY",
            strategy.to_owned(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__TIMEOUT_SECONDS",
            "5".to_owned(),
        ),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
}

/// Opens a WebSocket (a new connection); the address the origin saw it from.
async fn connect(inj: &ProxyInjector, origin: &Origin) -> Result<IpAddr, ProxyError> {
    connect_at(inj, origin, "127.0.0.1").await
}

/// [`connect`] to an origin listening on `host` (`[::1]` for IPv6).
async fn connect_at(
    inj: &ProxyInjector,
    origin: &Origin,
    host: &str,
) -> Result<IpAddr, ProxyError> {
    let url = format!("ws://{host}:{}/ws", origin.ws.port());
    let (mut ws, _) = inj.connect_websocket("binance", url.as_str()).await?;
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    Ok(origin.ws.received().pop().unwrap().peer.ip())
}

#[tokio::test]
async fn round_robin_spreads_connections_over_source_addresses_and_a_proxy() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxy = RealProxy::microsocks_with(Options {
        outbound: Some(Ipv4Addr::new(127, 0, 0, 73)),
        ..Options::default()
    });
    let urls = serde_json::json!([
        "direct://127.0.0.71",
        { "url": "direct://", "source": "127.0.0.72" },
        proxy.url("socks5h", None),
    ]);
    let inj = injector(urls, "round_robin", &ca);
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(connect(&inj, &origin).await.unwrap());
    }
    let want: Vec<IpAddr> = [71, 72, 73, 71, 72, 73].map(loopback).to_vec();
    assert_eq!(seen, want);
    assert_eq!(origin.ws.peers(), want, "nothing from the default address");
}

#[tokio::test]
async fn an_address_not_on_this_host_benches_its_member_and_nothing_leaves_from_another() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // 192.0.2.0/24 is for documentation: on no host.
    let urls = serde_json::json!(["direct://192.0.2.10", "direct://127.0.0.74"]);
    let inj = injector(urls, "failover", &ca);
    assert_eq!(connect(&inj, &origin).await.unwrap(), loopback(74));
    // Benched: the next connection goes straight to the second member.
    assert_eq!(connect(&inj, &origin).await.unwrap(), loopback(74));
    assert_eq!(origin.ws.peers(), [loopback(74), loopback(74)]);

    // Alone, it fails typed, naming the address, and nothing reaches the origin.
    let alone = injector(serde_json::json!(["direct://192.0.2.10"]), "failover", &ca);
    let err = connect(&alone, &origin).await.unwrap_err();
    assert_eq!(err.kind(), &K::SourceUnavailable, "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("cannot bind to the source address 192.0.2.10"),
        "{shown}"
    );
    assert!(shown.contains("via [direct://192.0.2.10]"), "{shown}");
    assert!(err.is_connect());
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::AddrNotAvailable
    );
    assert_eq!(origin.ws.accepted(), 2);
}

/// A loopback source cannot reach an outside address: the system refuses at connect
/// (EINVAL, before any packet), and that is the member's failure, not the target's.
#[tokio::test]
async fn a_source_the_system_refuses_for_the_destination_is_the_member_s_failure() {
    let ca = TestCa::new();
    let inj = injector(serde_json::json!(["direct://127.0.0.79"]), "failover", &ca);
    // 192.0.2.0/24 is for documentation: no packet is sent to it.
    let err = inj
        .connect_websocket("binance", "ws://192.0.2.1:80/ws")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::SourceUnavailable, "{err}");
    assert!(err.to_string().contains("127.0.0.79"), "{err}");
}

#[tokio::test]
async fn an_ipv6_source_cannot_reach_an_ipv4_only_target_and_says_so() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(serde_json::json!(["direct://[::1]"]), "failover", &ca);
    let err = connect(&inj, &origin).await.unwrap_err();
    assert_eq!(err.kind(), &K::SourceUnavailable, "{err}");
    assert!(err.to_string().contains("IPv4 addresses only"), "{err}");
    assert_eq!(origin.ws.accepted(), 0);
    // A source of the target's family connects.
    let origin6 = Origin::start_on(&ca, "::1").await;
    let peer = connect_at(&inj, &origin6, "[::1]").await.unwrap();
    assert_eq!(peer, "::1".parse::<IpAddr>().unwrap());
}

#[tokio::test]
async fn a_source_of_the_wrong_family_is_passed_over_for_the_next_member() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let origin6 = Origin::start_on(&ca, "::1").await;
    let urls = serde_json::json!(["direct://[::1]", "direct://127.0.0.78"]);
    let inj = injector(urls, "failover", &ca);
    // The IPv4 target: the IPv6 source cannot carry it, the next member does.
    assert_eq!(connect(&inj, &origin).await.unwrap(), loopback(78));
    // And still used for what it can carry (passed over, not benched: `cannot_carry`).
    let peer = connect_at(&inj, &origin6, "[::1]").await.unwrap();
    assert_eq!(peer, "::1".parse::<IpAddr>().unwrap());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_member_bound_to_an_interface_connects_through_it_and_a_missing_one_fails() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let urls = serde_json::json!([{ "url": "direct://", "interface": "lo" }]);
    let inj = injector(urls, "failover", &ca);
    assert_eq!(connect(&inj, &origin).await.unwrap(), loopback(1));
    let urls = serde_json::json!([
        { "url": "direct://", "interface": "nosuch0" },
        "direct://127.0.0.75",
    ]);
    let inj = injector(urls, "failover", &ca);
    assert_eq!(connect(&inj, &origin).await.unwrap(), loopback(75));
    let urls = serde_json::json!([{ "url": "direct://", "interface": "nosuch0" }]);
    let err = connect(&injector(urls, "failover", &ca), &origin)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::SourceUnavailable, "{err}");
    assert!(err.to_string().contains("the interface nosuch0"), "{err}");
    assert_eq!(origin.ws.peers(), [loopback(1), loopback(75)]);
}

/// A scripted HTTP CONNECT proxy that keeps each request head and tunnels to the origin.
async fn tunnelling_proxy(origin: &Origin) -> FakeProxy {
    let target: SocketAddr = ([127, 0, 0, 1], origin.ws.port()).into();
    FakeProxy::start(move |mut session| async move {
        session.read_head().await;
        session
            .write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        session.pipe_to(target).await;
    })
    .await
}

#[tokio::test]
async fn the_socket_to_a_proxy_leaves_from_the_member_s_source_with_its_connect_headers() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxy = tunnelling_proxy(&origin).await;
    let urls = serde_json::json!([{
        "url": format!("http://{}", proxy.authority()),
        "source": "127.0.0.76",
        "connect_headers": { "X-Session": SECRET, "x-country": "de" },
    }]);
    let inj = injector(urls, "failover", &ca);
    let (logs, _guard) = proxy_tests::logs::capture(proxy_tests::logs::everything());
    connect(&inj, &origin).await.unwrap();
    assert_eq!(proxy.peers()[0].ip(), loopback(76));
    let head = String::from_utf8(proxy.received()).unwrap();
    assert!(head.starts_with("CONNECT 127.0.0.1:"), "{head}");
    assert!(
        head.contains(&format!("\r\nx-session: {SECRET}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nx-country: de\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"));
    // Never in what the library shows: its logs, the route, the dialer.
    let dialer = inj.dialer("binance", proxy_runtime::ConnectionKind::Websocket);
    for shown in [logs.text(), format!("{dialer:?}"), format!("{inj:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

#[tokio::test]
async fn a_refusing_proxy_s_error_names_the_member_and_never_its_header_values() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let refusing = FakeProxy::start(|mut session| async move {
        session.read_head().await;
        session
            .write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await;
    })
    .await;
    let urls = serde_json::json!([{
        "url": format!("http://{}", refusing.authority()),
        "connect_headers": { "x-session": SECRET },
    }]);
    let err = connect(&injector(urls, "failover", &ca), &origin)
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), K::Refused(_)), "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains(&refusing.authority()), "{shown}");
    }
    assert_eq!(origin.ws.accepted(), 0);
}

#[tokio::test]
async fn squid_receives_the_connect_headers_from_the_member_s_source() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let squid = RealProxy::squid_with(Options {
        log_header: Some("X-Session"),
        ..Options::default()
    });
    let urls = serde_json::json!([{
        "url": squid.url("http", None),
        "source": "127.0.0.77",
        "connect_headers": { "x-session": SECRET },
    }]);
    let inj = injector(urls, "failover", &ca);
    let url = format!("ws://127.0.0.1:{}/ws", origin.ws.port());
    let (ws, _) = inj
        .connect_websocket("binance", url.as_str())
        .await
        .unwrap();
    // squid writes a tunnel's line when it closes.
    drop(ws);
    let line = format!(
        "127.0.0.77 CONNECT 127.0.0.1:{} \"{SECRET}\"",
        origin.ws.port()
    );
    assert!(squid.log_mentions(&line).await, "{}", squid.log());
}
