//! Happy Eyeballs (RFC 8305): when a name has several addresses and the first never
//! answers, the next is tried 250 ms later, under the same deadline, for targets reached
//! directly and for proxies. An address that never answers is a listener whose accept
//! queue is full (the kernel drops further SYNs), named through the injectable resolver.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proxy_runtime::{Phase, ProxyErrorKind as K};
use proxy_tests::blackhole::Blackhole;
use proxy_tests::origin::{Origin, body_for};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::socks5::Socks5Server;
use proxy_tests::tls::TestCa;
use proxy_tests::{Fetch, injector};

const LIVE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const DEAD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const DEAD_TOO: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

#[tokio::test]
async fn a_target_address_that_never_answers_costs_the_stagger_not_the_deadline() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let port = origin.https.port();
    // The first address of the name drops every SYN; the second is the origin.
    let _dead = Blackhole::on(SocketAddr::new(DEAD, port));
    let resolver = RecordingResolver::new(&[("exchange.test", DEAD), ("exchange.test", LIVE)]);
    // Direct (no route), with the default 30 s connect deadline.
    let inj = injector(None, 30, &ca, resolver);
    let started = Instant::now();
    let body = inj
        .http_client("coinbase")
        .fetch(&format!("https://exchange.test:{port}/raced"))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(body, body_for("/raced"));
    assert!(
        took >= Duration::from_millis(250),
        "the first address went first: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "not the deadline: {took:?}");
    assert_eq!(origin.https.received()[0].peer.ip(), LIVE);
}

#[tokio::test]
async fn a_proxy_address_that_never_answers_costs_the_stagger_not_the_deadline() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = Socks5Server::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let _dead = Blackhole::on(SocketAddr::new(DEAD, socks.addr.port()));
    let resolver = RecordingResolver::new(&[("proxy.test", DEAD), ("proxy.test", LIVE)]);
    let proxy = format!("socks5h://proxy.test:{}", socks.addr.port());
    let inj = injector(Some(&proxy), 30, &ca, resolver.clone());
    let started = Instant::now();
    let body = inj
        .http_client("kraken")
        .fetch(&format!("https://127.0.0.1:{}/via", origin.https.port()))
        .await
        .unwrap();
    assert_eq!(body, body_for("/via"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(socks.carried(), 1, "through the proxy's live address");
    assert_eq!(
        resolver.asked(),
        ["proxy.test"],
        "only the proxy's name is looked up"
    );
}

/// `GET https://exchange.test/` through a SOCKS5 proxy named `proxy.test`, 127.0.0.2 then
/// 127.0.0.3, on `port`, with a deadline of 1 s: its error and how long it took.
async fn through_proxy_test(port: u16) -> (proxy_runtime::ProxyError, Duration) {
    let ca = TestCa::new();
    let resolver = RecordingResolver::new(&[("proxy.test", DEAD), ("proxy.test", DEAD_TOO)]);
    let proxy = format!("socks5h://proxy.test:{port}");
    let inj = injector(Some(&proxy), 1, &ca, resolver);
    let started = Instant::now();
    let err = inj
        .http_client("kraken")
        .fetch("https://exchange.test/")
        .await
        .unwrap_err();
    (err, started.elapsed())
}

#[tokio::test]
async fn when_no_address_answers_the_race_ends_at_the_deadline_in_the_connect_phase() {
    let dead = Blackhole::on(SocketAddr::new(DEAD, 0));
    let _dead_too = Blackhole::on(SocketAddr::new(DEAD_TOO, dead.addr.port()));
    let (err, took) = through_proxy_test(dead.addr.port()).await;
    assert_eq!(err.kind(), &K::Timeout(Phase::Connect), "{err}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_refused_address_does_not_end_the_race_while_an_earlier_one_may_answer() {
    let dead = Blackhole::on(SocketAddr::new(DEAD, 0));
    // Nothing listens on 127.0.0.3 at that port: the second attempt is refused at once,
    // and the first, still unanswered, keeps its chance until the deadline.
    let (err, took) = through_proxy_test(dead.addr.port()).await;
    assert_eq!(err.kind(), &K::Timeout(Phase::Connect), "{err}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn a_refused_address_moves_on_at_once() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let port = origin.https.port();
    // Nothing listens on 127.0.0.2 at that port: refused at once, the next address
    // starts without waiting for the stagger.
    let resolver = RecordingResolver::new(&[("exchange.test", DEAD), ("exchange.test", LIVE)]);
    let inj = injector(None, 30, &ca, resolver);
    let body = inj
        .http_client("coinbase")
        .fetch(&format!("https://exchange.test:{port}/refused-first"))
        .await
        .unwrap();
    assert_eq!(body, body_for("/refused-first"));
}
