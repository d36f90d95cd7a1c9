//! A pool goes on to its next member on every failure that is the member's, within the
//! member's share of the deadline, and benches it: TLS with an `https://` proxy that is no
//! TLS proxy (a real squid written as `https://`) or whose certificate is not trusted,
//! and a tunnel that relays nothing. A failure that is the target's (its certificate)
//! ends the attempt and benches no one.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use proxy_runtime::{HttpClient, Phase, ProxyErrorKind as K, ProxyInjector, ProxySettings};
use proxy_tests::GENEROUS;
use proxy_tests::fake::{FakeProxy, Session, https_connect_proxy};
use proxy_tests::origin::Origin;
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

/// The address proxy `n`'s outgoing connections come from.
fn via(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 110 + n))
}

fn microsocks(n: u8) -> RealProxy {
    RealProxy::microsocks_with(Options {
        outbound: Some(Ipv4Addr::new(127, 0, 0, 110 + n)),
        ..Options::default()
    })
}

/// The `binance` HTTP client of a failover pool of `urls` (HTTP/1.1: a connection per
/// request when asked to close) with a route timeout of `timeout` seconds.
fn client(urls: &[String], timeout: u16, ca: &TestCa) -> HttpClient {
    let timeout = timeout.to_string();
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
            serde_json::to_string(urls).unwrap(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS",
            timeout,
        ),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .http1_only()
        .build()
        .http_client("binance")
}

/// `GET /pool` on a new connection: where the origin saw it come from.
async fn get(client: &HttpClient, origin: &Origin) -> Result<IpAddr, proxy_runtime::ProxyError> {
    let url = format!("https://127.0.0.1:{}/pool", origin.https.port());
    let response = client.get(url).header("connection", "close").send().await?;
    assert_eq!(response.status(), 200);
    response.bytes().await?;
    Ok(origin.https.received().pop().unwrap().peer.ip())
}

/// Two requests through a pool whose first member is `broken`: both are served by the
/// second member, and the second request does not try the first again (it is benched).
async fn served_by_the_second_and_the_first_benched(broken: &FakeProxy, timeout: u16, ca: &TestCa) {
    let origin = Origin::start(ca).await;
    let healthy = microsocks(2);
    let urls = [
        format!("https://{}", broken.authority()),
        healthy.url("socks5h", None),
    ];
    let client = client(&urls, timeout, ca);
    for _ in 0..2 {
        let served = tokio::time::timeout(GENEROUS, get(&client, &origin)).await;
        assert_eq!(served.expect("within the bound").unwrap(), via(2));
    }
    assert_eq!(
        broken.accepted(),
        1,
        "the broken member was benched after its failure"
    );
}

#[tokio::test]
async fn a_plain_proxy_written_as_https_is_the_member_s_failure() {
    let ca = TestCa::new();
    // A real squid, reached as if it spoke TLS: it answers the ClientHello with an HTTP
    // error. The fake in front of it only counts connections.
    let squid = RealProxy::squid(false);
    let port = squid.port;
    let counted = FakeProxy::start(move |s: Session| {
        s.pipe_to(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    })
    .await;
    served_by_the_second_and_the_first_benched(&counted, 10, &ca).await;
}

#[tokio::test]
async fn an_https_proxy_whose_certificate_is_not_trusted_is_the_member_s_failure() {
    let ca = TestCa::new();
    let stranger = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (untrusted, _) = https_connect_proxy(stranger.acceptor(), origin.https.addr).await;
    served_by_the_second_and_the_first_benched(&untrusted, 10, &ca).await;
}

#[tokio::test]
async fn a_tunnel_that_relays_nothing_is_left_after_its_share_of_the_deadline() {
    let ca = TestCa::new();
    // Answers CONNECT and then holds the tunnel without relaying a byte: TLS with the
    // target through it never completes.
    let stalled = FakeProxy::start(|mut s: Session| async move {
        s.read_head().await;
        s.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        s.hang().await;
    })
    .await;
    let origin = Origin::start(&ca).await;
    let healthy = microsocks(3);
    let urls = [
        format!("http://{}", stalled.authority()),
        healthy.url("socks5h", None),
    ];
    // 6 s for two members: the stalled one is left after its share (3 s), with time to
    // spare for the second.
    let client = client(&urls, 6, &ca);
    let started = Instant::now();
    assert_eq!(get(&client, &origin).await.unwrap(), via(3));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "left before its share: {took:?}"
    );
    assert!(took < GENEROUS, "{took:?}");
    assert_eq!(get(&client, &origin).await.unwrap(), via(3));
    assert_eq!(stalled.accepted(), 1, "benched after its failure");
}

#[tokio::test]
async fn the_target_s_certificate_ends_the_attempt_and_benches_no_one() {
    let ca = TestCa::new();
    let first = microsocks(4);
    let second = microsocks(5);
    let client = client(
        &[first.url("socks5h", None), second.url("socks5h", None)],
        10,
        &ca,
    );
    // An origin whose certificate the client does not trust: every exit would see it.
    let stranger = TestCa::new();
    let untrusted = Origin::start(&stranger).await;
    let err = get(&client, &untrusted).await.unwrap_err();
    assert_eq!(err.kind(), &K::Tls, "{err}");
    assert_eq!(err.phase(), Some(Phase::Tls));
    assert!(err.member_failures().is_empty(), "one member tried: {err}");
    assert_eq!(
        untrusted.https.accepted(),
        1,
        "the second member was not tried"
    );
    // The first member is not benched: the next connection goes through it.
    let trusted = Origin::start(&ca).await;
    assert_eq!(get(&client, &trusted).await.unwrap(), via(4));
}

#[tokio::test]
async fn a_member_reached_after_the_deadline_is_neither_tried_nor_benched() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // A member that never answers, first: under a 2 s timeout it is given all of it.
    let silent = FakeProxy::start(|s: Session| s.hang()).await;
    let healthy = microsocks(6);
    let urls = [
        format!("socks5h://{}", silent.authority()),
        healthy.url("socks5h", None),
    ];
    let client = client(&urls, 2, &ca);
    let err = get(&client, &origin).await.unwrap_err();
    assert_eq!(err.kind(), &K::AllMembersFailed, "{err}");
    assert_eq!(
        err.member_failures().len(),
        1,
        "only the first was tried: {err}"
    );
    assert!(
        err.to_string()
            .contains("1 more not tried: the deadline passed"),
        "{err}"
    );
    // The second was not benched for a timeout it never had time for: the next
    // connection goes through it at once (the first is benched).
    assert_eq!(get(&client, &origin).await.unwrap(), via(6));
    assert_eq!(silent.accepted(), 1);
}

#[tokio::test]
async fn a_member_whose_protocol_cannot_carry_the_target_is_passed_over_not_benched() {
    let ca = TestCa::new();
    // SOCKS4 carries no IPv6 address: a socks4:// member cannot reach an IPv6 target,
    // and the next member can.
    let socks4 = RealProxy::dante_with(Options {
        outbound: Some(Ipv4Addr::new(127, 0, 0, 117)),
        ..Options::default()
    });
    let socks5 = microsocks(8);
    let client = client(
        &[socks4.url("socks4", None), socks5.url("socks5h", None)],
        10,
        &ca,
    );
    let v6 = Origin::start_on(&ca, "::1").await;
    let url = format!("https://[::1]:{}/v6", v6.https.port());
    let response = client.get(&url).header("connection", "close").send().await;
    assert_eq!(response.expect("through the second member").status(), 200);
    // The first member was not benched for it: an IPv4 target goes through it first.
    let v4 = Origin::start(&ca).await;
    assert_eq!(
        get(&client, &v4).await.unwrap(),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 117))
    );
    // When no member can carry the target, the error says why for each.
    let only_socks4 = self::client(
        &[socks4.url("socks4", None), socks4.url("socks4a", None)],
        10,
        &ca,
    );
    let err = only_socks4.get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), &K::AllMembersFailed, "{err}");
    assert_eq!(err.member_failures().len(), 2, "{err}");
    for failure in err.member_failures() {
        assert_eq!(failure.kind(), &K::InvalidTarget, "{failure}");
        assert!(
            failure
                .to_string()
                .contains("SOCKS4 carries only IPv4 addresses"),
            "{failure}"
        );
    }
}

#[tokio::test]
async fn when_every_member_was_tried_and_failed_none_is_said_untried() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let closed = [
        proxy_tests::fake::closed_port().await,
        proxy_tests::fake::closed_port().await,
    ];
    let urls = closed.map(|port| format!("socks5h://127.0.0.1:{port}"));
    let err = get(&client(&urls, 10, &ca), &origin).await.unwrap_err();
    assert_eq!(err.kind(), &K::AllMembersFailed, "{err}");
    assert_eq!(err.member_failures().len(), 2, "{err}");
    assert!(!err.to_string().contains("not tried"), "{err}");
}
