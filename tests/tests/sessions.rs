//! Resilient WebSocket sessions against the real proxy servers and a local WSS feed that
//! numbers its messages: failover when a proxy dies, reconnection when it comes back, a
//! stalled tunnel and a silent origin detected, the connection budget under a storm, planned
//! rotation without a lost message, and the ends: a failure no retry fixes, attempts that
//! run out, a send with no connection, a dropped session.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{
    ProxyErrorKind as K, ProxyInjector, ProxySettings, SessionEvent, SessionSettings,
    WebSocketSession,
};
use proxy_tests::GENEROUS;
use proxy_tests::fake::FakeProxy;
use proxy_tests::feed::{Feed, tick_number};
use proxy_tests::origin::eventually;
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

/// Events a session reported, in order.
type Events = Arc<Mutex<Vec<SessionEvent>>>;

/// An injector whose `binance` WebSocket route is `urls` (a pool, failover, when more than
/// one; direct when empty) with a timeout of 2 s.
fn injector(urls: &[String], ca: &TestCa) -> ProxyInjector {
    injector_with(urls, ca, &[])
}

/// [`injector`] with more variables.
fn injector_with(urls: &[String], ca: &TestCa, more: &[(&str, &str)]) -> ProxyInjector {
    let mut vars = vec![("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned())];
    vars.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    if !urls.is_empty() {
        vars.push((
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URLS".to_owned(),
            serde_json::to_string(urls).unwrap(),
        ));
        vars.push((
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__TIMEOUT_SECONDS".to_owned(),
            "2".to_owned(),
        ));
    }
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build()
}

/// The binance WebSocket route as `direct://` (a route of its own, with a timeout).
const DIRECT: (&str, &str) = (
    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
    "direct://",
);

/// The variables of a connection budget of `connects` per `window_ms` for binance.
fn budget(connects: &'static str, window_ms: &'static str) -> [(&'static str, &'static str); 2] {
    [
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__CONNECTS",
            connects,
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET_SESSION__WINDOW_MS",
            window_ms,
        ),
    ]
}

/// A scripted HTTP proxy that refuses every CONNECT with 502 (a member failure).
async fn refusing_proxy() -> FakeProxy {
    FakeProxy::start(|mut session| async move {
        session.read_head().await;
        session
            .write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
    })
    .await
}

/// Quick reconnection, for tests.
fn quick() -> SessionSettings {
    SessionSettings::new().with_backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// Opens a session on `path` of `feed` that subscribes on every connection and records its
/// events.
async fn open(
    injector: &ProxyInjector,
    feed: &Feed,
    path: &str,
    settings: SessionSettings,
) -> (WebSocketSession, Events) {
    let events = Events::default();
    let seen = events.clone();
    let session = injector
        .websocket_session("binance", feed.url(path))
        .settings(settings)
        .on_connect(|subscriber| async move { subscriber.send(Message::text("subscribe")).await })
        .on_event(move |event| seen.lock().unwrap().push(event.clone()))
        .open()
        .await
        .expect("the session opens");
    (session, events)
}

/// The next tick (connection, number), skipping the subscription's answer; panics on an
/// error (the reader must see none) or after [`GENEROUS`].
async fn next_tick(session: &mut WebSocketSession) -> (u64, u64) {
    loop {
        let item = tokio::time::timeout(GENEROUS, session.next())
            .await
            .expect("a message within the bound")
            .expect("the session goes on")
            .expect("no error reaches the reader");
        if let Some(n) = tick_number(&item.message) {
            return (item.connection, n);
        }
    }
}

/// Reads `session` in a task of its own (reading drives it), keeping every item.
fn drive(mut session: WebSocketSession) -> (Items, tokio::task::JoinHandle<()>) {
    let items = Items::default();
    let kept = items.clone();
    let task = tokio::spawn(async move {
        while let Some(item) = session.next().await {
            kept.lock().unwrap().push(item);
        }
    });
    (items, task)
}

/// What a driven session read.
type Items = Arc<Mutex<Vec<Result<proxy_runtime::SessionMessage, proxy_runtime::ProxyError>>>>;

/// Reads until a tick arrives from a connection other than `connection`; the time it took.
async fn until_moved(session: &mut WebSocketSession, connection: u64) -> (u64, Duration) {
    let start = Instant::now();
    loop {
        let (from, _) = next_tick(session).await;
        if from != connection {
            return (from, start.elapsed());
        }
    }
}

fn via(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 160 + n))
}

fn with_outbound(n: u8) -> Options {
    Options {
        outbound: Some(Ipv4Addr::new(127, 0, 0, 160 + n)),
        ..Options::default()
    }
}

fn count(events: &Events, which: impl Fn(&SessionEvent) -> bool) -> usize {
    events.lock().unwrap().iter().filter(|e| which(e)).count()
}

/// A pool of `first` (killed mid-stream) and dante: the stream goes on through dante, the
/// subscription is sent again, the reader sees events and no error, and every connection
/// the feed accepted came through a proxy.
async fn failover_when_killed(mut first: RealProxy, scheme: &str) {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let dante = RealProxy::dante_with(with_outbound(2));
    let urls = [first.url(scheme, None), dante.url("socks5h", None)];
    let injector = injector(&urls, &ca);
    let (mut session, events) = open(&injector, &feed, "feed", quick()).await;
    let (connection, _) = next_tick(&mut session).await;
    assert_eq!(connection, 1);
    assert!(session.route().unwrap().contains(&first.port.to_string()));

    first.kill();
    let (moved_to, took) = until_moved(&mut session, 1).await;
    assert!(
        session.route().unwrap().contains(&dante.port.to_string()),
        "{:?}",
        session.route()
    );
    // The stated bound: the first backoff (at most 50 ms here) plus one connection through
    // the next member, well within a second on loopback; generous for a loaded machine.
    assert!(
        took < Duration::from_secs(10),
        "{} recovered in {took:?}",
        first.name()
    );
    assert_eq!(
        feed.subscriptions(),
        2,
        "subscribed again on the new connection"
    );
    assert!(
        count(
            &events,
            |e| matches!(e, SessionEvent::Disconnected { connection: 1, error } if error.kind() == &K::Disconnected)
        ) == 1
    );
    assert!(
        count(
            &events,
            |e| matches!(e, SessionEvent::Connected { connection, .. } if *connection == moved_to)
        ) == 1
    );
    let peers: Vec<IpAddr> = feed.accepts().into_iter().map(|(_, peer)| peer).collect();
    assert!(
        peers.iter().all(|p| *p == via(1) || *p == via(2)),
        "nothing reaches the feed directly: {peers:?}"
    );
}

#[tokio::test]
async fn a_pool_goes_on_through_dante_when_microsocks_dies() {
    failover_when_killed(RealProxy::microsocks_with(with_outbound(1)), "socks5h").await;
}

#[tokio::test]
async fn a_pool_goes_on_through_dante_when_tinyproxy_dies() {
    failover_when_killed(RealProxy::tinyproxy_with(with_outbound(1)), "http").await;
}

#[tokio::test]
async fn a_pool_goes_on_through_dante_when_squid_dies() {
    failover_when_killed(RealProxy::squid_with(with_outbound(1)), "http").await;
}

#[tokio::test]
async fn one_member_reconnects_once_the_proxy_is_back() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let mut proxy = RealProxy::microsocks_with(with_outbound(3));
    let injector = injector(&[proxy.url("socks5h", None)], &ca);
    let (mut session, events) = open(&injector, &feed, "feed", quick()).await;
    next_tick(&mut session).await;
    proxy.kill();
    let (items, reader) = drive(session);
    // Down for a while: attempts fail, back off and keep going, with nothing direct.
    assert!(
        eventually(|| count(
            &events,
            |e| matches!(e, SessionEvent::Reconnecting { attempt, .. } if *attempt >= 3)
        ) > 0)
        .await,
        "{:?}",
        events.lock().unwrap()
    );
    proxy.restart();
    let moved = || {
        items.lock().unwrap().iter().any(|item| {
            item.as_ref()
                .is_ok_and(|m| m.connection > 2 && tick_number(&m.message).is_some())
        })
    };
    assert!(
        eventually(moved).await,
        "ticks from a later connection (attempts that failed took numbers too)"
    );
    assert!(
        items.lock().unwrap().iter().all(Result::is_ok),
        "no error reaches the reader"
    );
    reader.abort();
    assert_eq!(feed.subscriptions(), 2);
    assert!(feed.accepts().iter().all(|(_, peer)| *peer == via(3)));
}

/// A scripted HTTP CONNECT proxy to `feed` whose tunnels relay until the returned
/// `Notify` is notified, and then relay nothing and read nothing, staying open.
async fn freezing_proxy(feed: &Feed) -> (FakeProxy, Arc<tokio::sync::Notify>) {
    let freeze = Arc::new(tokio::sync::Notify::new());
    let target = feed.url("feed");
    let port: u16 = target
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let frozen = freeze.clone();
    let proxy = FakeProxy::start(move |mut session| {
        let freeze = frozen.clone();
        async move {
            session.read_head().await;
            session
                .write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await;
            session
                .pipe_until(([127, 0, 0, 1], port).into(), freeze)
                .await;
        }
    })
    .await;
    (proxy, freeze)
}

#[tokio::test]
async fn a_tunnel_that_relays_nothing_is_declared_dead_and_replaced() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let (proxy, freeze) = freezing_proxy(&feed).await;
    let injector = injector(&[format!("http://{}", proxy.authority())], &ca);
    let dead_after = Duration::from_secs(4);
    let settings = quick()
        .with_ping_interval(Duration::from_millis(300))
        .with_dead_after(dead_after);
    let (mut session, events) = open(&injector, &feed, "feed", settings).await;
    next_tick(&mut session).await;
    let frozen_at = Instant::now();
    freeze.notify_waiters();
    let (_, took) = until_moved(&mut session, 1).await;
    let dead = events.lock().unwrap().iter().find_map(|e| match e {
        SessionEvent::Disconnected {
            connection: 1,
            error,
        } => Some(error.to_string()),
        _ => None,
    });
    let dead = dead.expect("the stalled connection was declared lost");
    assert!(dead.contains("declared dead"), "{dead}");
    // Not before `dead_after` (ticks stopped at the freeze, less what was in flight).
    assert!(
        frozen_at.elapsed() >= dead_after - Duration::from_millis(100),
        "{took:?}"
    );
    // Found within a quarter more than the limit (the session reads its clock at least
    // every quarter of it), with 1.5 s to spare for a loaded machine.
    assert!(
        took < dead_after * 5 / 4 + Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(proxy.accepted(), 2);
}

/// A message written into a tunnel that stalls cannot be flushed; the connection is then
/// declared dead and replaced. The flush (or the close) that follows fails with
/// `NotConnected`, though a new connection is up by then: the message may never have
/// left, and the library does not send it again. The error is reported once.
async fn a_write_the_lost_connection_never_flushed_fails(close: bool) {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let (proxy, freeze) = freezing_proxy(&feed).await;
    let injector = injector(&[format!("http://{}", proxy.authority())], &ca);
    let settings = quick()
        .with_ping_interval(Duration::from_millis(300))
        .with_dead_after(Duration::from_secs(2));
    let (mut session, _events) = open(&injector, &feed, "feed", settings).await;
    next_tick(&mut session).await;
    freeze.notify_waiters();
    // More than the loopback socket buffers hold: it stays in the session's buffer.
    let big = Message::binary(vec![7u8; 32 << 20]);
    session
        .feed(big)
        .await
        .expect("written to the live connection");
    until_moved(&mut session, 1).await;
    assert_eq!(session.connection(), Some(2));
    let err = if close {
        session.close().await.unwrap_err()
    } else {
        session.flush().await.unwrap_err()
    };
    assert_eq!(*err.kind(), proxy_runtime::ProxyErrorKind::NotConnected);
    assert!(err.to_string().contains("may not have been sent"), "{err}");
    if close {
        assert!(session.close().await.is_ok(), "reported once");
    } else {
        session.flush().await.expect("reported once");
        // The new connection takes writes.
        session.send(Message::text("ping me")).await.expect("sent");
    }
}

#[tokio::test]
async fn a_flush_after_the_connection_holding_the_write_was_lost_fails_not_connected() {
    a_write_the_lost_connection_never_flushed_fails(false).await;
}

#[tokio::test]
async fn a_close_after_the_connection_holding_the_write_was_lost_fails_not_connected() {
    a_write_the_lost_connection_never_flushed_fails(true).await;
}

#[tokio::test]
async fn an_origin_that_sends_nothing_after_the_subscription_is_left_for_another_connection() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let proxy = RealProxy::microsocks_with(with_outbound(4));
    let injector = injector(&[proxy.url("socks5h", None)], &ca);
    let settings = quick()
        .with_ping_interval(Duration::from_millis(100))
        .with_dead_after(Duration::from_secs(5))
        .with_idle_after(Duration::from_millis(700));
    let (mut session, events) = open(&injector, &feed, "silent", settings).await;
    // The subscription's answer is data: idleness counts from it.
    let first = tokio::time::timeout(GENEROUS, session.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.message, Message::text("subscribed"));
    let (items, reader) = drive(session);
    assert!(
        eventually(|| feed.subscriptions() >= 2).await,
        "idle_after reconnects: {:?}",
        events.lock().unwrap()
    );
    let reasons: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Disconnected { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert!(reasons[0].contains("declared idle"), "{reasons:?}");
    // The next connection's answer arrived, with no error.
    let items = items.lock().unwrap();
    assert!(items.iter().all(Result::is_ok));
    assert!(
        items
            .iter()
            .any(|item| item.as_ref().is_ok_and(|m| m.connection > 1))
    );
    reader.abort();
}

#[tokio::test]
async fn a_silent_origin_that_answers_pings_is_not_declared_dead() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let dead_after = Duration::from_millis(600);
    let settings = quick()
        .with_ping_interval(Duration::from_millis(100))
        .with_dead_after(dead_after);
    let (session, events) = open(&injector, &feed, "silent", settings).await;
    let (items, reader) = drive(session);
    // Five times the limit: only the pongs to the session's pings arrive, and they count.
    tokio::time::sleep(dead_after * 5).await;
    assert_eq!(feed.subscriptions(), 1, "{:?}", events.lock().unwrap());
    assert_eq!(
        count(&events, |e| matches!(e, SessionEvent::Disconnected { .. })),
        0
    );
    // The pongs are the session's own: the reader saw only the subscription's answer.
    let items = items.lock().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_lets_the_stream_pause_still_rotates_and_loses_nothing() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(1)).await;
    let injector = injector(&[], &ca);
    let settings = quick().with_max_lifetime(Duration::from_millis(300), Duration::from_secs(10));
    let (mut session, events) = open(&injector, &feed, "feed", settings).await;
    let (mut connection, mut last) = next_tick(&mut session).await;
    let rotated = tokio::time::timeout(GENEROUS, async {
        let mut switched = 0;
        while switched < 1 {
            // Slower than the feed (for the second or so this takes: the backlog stays
            // small): the old connection always has a message waiting.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let (from, n) = next_tick(&mut session).await;
            assert_eq!(n, last + 1, "tick {n} after {last} (connection {from})");
            last = n;
            if from != connection {
                connection = from;
                switched += 1;
            }
        }
    })
    .await;
    assert!(rotated.is_ok(), "rotated: {:?}", events.lock().unwrap());
    assert_eq!(
        count(&events, |e| matches!(
            e,
            SessionEvent::Rotated { overlap: true, .. }
        )),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_streams_losing_their_proxy_recover_within_the_connection_budget() {
    const STREAMS: usize = 200;
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(100)).await;
    let mut proxy = RealProxy::microsocks_with(with_outbound(5));
    // The budget is the route's (every stream of the exchange shares it): in the settings.
    let injector = Arc::new(injector_with(
        &[proxy.url("socks5h", None)],
        &ca,
        &budget("50", "10000"),
    ));
    let window = Duration::from_secs(10);
    let settings = quick();
    // Every stream records the connection of each tick it reads.
    let latest: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; STREAMS]));
    let mut tasks = Vec::new();
    for i in 0..STREAMS {
        let (injector, feed, latest) = (injector.clone(), feed.clone(), latest.clone());
        tasks.push(tokio::spawn(async move {
            let (mut session, _) = open(&injector, &feed, "feed", settings).await;
            // No bound per message: a stream waits its turn in the budget.
            while let Some(item) = session.next().await {
                let item = item.expect("no error reaches the reader");
                if tick_number(&item.message).is_some() {
                    latest.lock().unwrap()[i] = item.connection;
                }
            }
        }));
    }
    let all = |pred: &dyn Fn(u64) -> bool| latest.lock().unwrap().iter().all(|c| pred(*c));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all(&|c| c == 1) {
        assert!(Instant::now() < deadline, "the streams opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restart();
    while !all(&|c| c > 1) {
        assert!(Instant::now() < deadline, "every stream recovered");
        for task in &tasks {
            assert!(!task.is_finished(), "no stream failed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let most = feed.most_within(window);
    assert!(
        most <= 50,
        "the feed saw {most} connections within {window:?}"
    );
    assert!(most >= 40, "the budget was used: {most}");
    assert_eq!(feed.subscriptions(), 2 * STREAMS);
    for task in tasks {
        task.abort();
    }
}

/// Reads ticks across `rotations` rotations; asserts none is lost or repeated.
async fn rotations_lose_nothing(session: &mut WebSocketSession, events: &Events, rotations: usize) {
    let (mut connection, mut last) = next_tick(session).await;
    let mut switched = 0;
    while switched < rotations {
        let (from, n) = next_tick(session).await;
        assert_eq!(n, last + 1, "tick {n} after {last} (connection {from})");
        last = n;
        if from != connection {
            connection = from;
            switched += 1;
        }
    }
    // What the last new connection still owed is dropped too.
    for _ in 0..40 {
        let (from, n) = next_tick(session).await;
        assert_eq!(n, last + 1, "tick {n} after {last} (connection {from})");
        last = n;
    }
    let rotated: Vec<bool> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Rotated { overlap, .. } => Some(*overlap),
            _ => None,
        })
        .collect();
    assert!(
        rotated.len() >= rotations && rotated.iter().all(|o| *o),
        "{rotated:?}"
    );
    assert_eq!(
        count(events, |e| matches!(e, SessionEvent::Disconnected { .. })),
        0
    );
}

#[tokio::test]
async fn rotation_through_tinyproxy_switches_on_a_message_seen_on_both_and_loses_none() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(3)).await;
    let proxy = RealProxy::tinyproxy_with(with_outbound(6));
    let injector = injector(&[proxy.url("http", None)], &ca);
    let settings = quick().with_max_lifetime(Duration::from_millis(800), Duration::from_secs(10));
    let opened = Instant::now();
    let (mut session, events) = open(&injector, &feed, "feed", settings).await;
    rotations_lose_nothing(&mut session, &events, 3).await;
    // Not before their time: three lifetimes at least.
    assert!(
        opened.elapsed() >= Duration::from_millis(2400),
        "{:?}",
        opened.elapsed()
    );
    assert!(feed.accepts().iter().all(|(_, peer)| *peer == via(6)));
    // Each old connection was closed with a close frame, not dropped.
    assert!(
        eventually(|| feed.closed_by_client() >= 3).await,
        "{}",
        feed.closed_by_client()
    );
}

/// Each new connection 50 ms behind the one before: the overlap shows on the new
/// connection, and what it still owes the reader is dropped as it comes.
#[tokio::test]
async fn rotation_onto_a_connection_that_lags_drops_what_it_owes_and_loses_none() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let settings = quick().with_max_lifetime(Duration::from_millis(800), Duration::from_secs(10));
    let (mut session, events) = open(&injector, &feed, "lagging", settings).await;
    rotations_lose_nothing(&mut session, &events, 3).await;
}

#[tokio::test]
async fn rotation_with_a_sequence_hook_switches_where_the_numbers_meet() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(3)).await;
    let injector = injector(&[], &ca);
    let settings = quick().with_max_lifetime(Duration::from_millis(800), Duration::from_secs(10));
    let events = Events::default();
    let seen = events.clone();
    let mut session = injector
        .websocket_session("binance", feed.url("feed"))
        .settings(settings)
        .sequence(tick_number)
        .on_connect(|subscriber| async move { subscriber.send(Message::text("subscribe")).await })
        .on_event(move |event| seen.lock().unwrap().push(event.clone()))
        .open()
        .await
        .unwrap();
    rotations_lose_nothing(&mut session, &events, 3).await;
}

/// Reads `session` until `until` passes: every tick from connection 1, in order.
async fn read_on_connection_one(session: &mut WebSocketSession, until: Instant) {
    let mut last = None;
    while Instant::now() < until {
        let (connection, n) = next_tick(session).await;
        assert_eq!(connection, 1);
        assert!(last.is_none_or(|last| n == last + 1), "{last:?} then {n}");
        last = Some(n);
    }
}

#[tokio::test]
async fn a_rotation_the_origin_refuses_is_tried_again_after_the_overlap_wait() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let overlap_wait = Duration::from_millis(1500);
    let settings = quick().with_max_lifetime(Duration::from_millis(300), overlap_wait);
    let opened = Instant::now();
    let (mut session, events) = open(&injector, &feed, "once-then-503", settings).await;
    // Rotations at 300 ms and, refused, again no sooner than an overlap wait later: at most
    // three upgrades within 300 ms + 1.5 s + 1.4 s.
    read_on_connection_one(&mut session, opened + Duration::from_millis(3200)).await;
    assert!(feed.accepts().len() <= 3, "{:?}", feed.accepts());
    // And tried again (a 503 is worth retrying).
    let retried = tokio::time::timeout(GENEROUS, async {
        while feed.accepts().len() < 3 {
            next_tick(&mut session).await;
        }
    });
    assert!(retried.await.is_ok(), "{:?}", feed.accepts());
    // The reader never noticed.
    assert_eq!(session.connection(), Some(1));
    assert_eq!(
        count(&events, |e| !matches!(
            e,
            SessionEvent::Connected { connection: 1, .. }
        )),
        0,
        "{events:?}"
    );
}

#[tokio::test]
async fn a_rotation_refused_for_good_is_not_tried_again() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let overlap_wait = Duration::from_millis(500);
    let settings = quick().with_max_lifetime(Duration::from_millis(300), overlap_wait);
    let (mut session, _events) = open(&injector, &feed, "once-then-404", settings).await;
    let refused = tokio::time::timeout(GENEROUS, async {
        while feed.accepts().len() < 2 {
            next_tick(&mut session).await;
        }
    });
    assert!(refused.await.is_ok(), "the rotation was tried");
    // A 404 is no retry's to fix: well past several overlap waits, no third upgrade.
    read_on_connection_one(&mut session, Instant::now() + Duration::from_secs(3)).await;
    assert_eq!(feed.accepts().len(), 2, "{:?}", feed.accepts());
}

#[tokio::test]
async fn a_failure_no_retry_fixes_ends_the_open_at_once() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(50)).await;
    // A feed whose certificate this injector does not trust.
    let settings = ProxySettings::new(true);
    let untrusting = ProxyInjector::builder(settings)
        .tls_roots(TestCa::new().roots())
        .build();
    let err = untrusting
        .websocket_session("binance", feed.url("feed"))
        .settings(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::Tls, "{err}");
    assert_eq!(feed.accepts().len(), 1, "no second attempt");
}

#[tokio::test]
async fn attempts_that_run_out_end_the_stream_with_one_error_and_sends_fail_typed() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let mut proxy = RealProxy::microsocks_with(with_outbound(7));
    let injector = injector(&[proxy.url("socks5h", None)], &ca);
    let settings = quick().with_max_attempts(3, Duration::from_secs(60));
    let (mut session, events) = open(&injector, &feed, "feed", settings).await;
    next_tick(&mut session).await;
    proxy.kill();
    // A session opened now fails at once: its first attempt tried the route.
    let err = injector
        .websocket_session("binance", feed.url("feed"))
        .settings(settings)
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::ProxyUnreachable, "{err}");
    // Reads until the end: the ticks in flight, then one error, then nothing.
    let mut errors = Vec::new();
    while let Some(item) = tokio::time::timeout(GENEROUS, session.next())
        .await
        .unwrap()
    {
        if let Err(e) = item {
            errors.push(e);
        }
    }
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].to_string().contains("gave up after 3 attempts"),
        "{}",
        errors[0]
    );
    assert_eq!(
        count(&events, |e| matches!(e, SessionEvent::Reconnecting { .. })),
        3
    );
    assert_eq!(
        count(&events, |e| matches!(e, SessionEvent::Ended { .. })),
        1
    );
    let err = session.send(Message::text("order")).await.unwrap_err();
    assert_eq!(err.kind(), &K::NotConnected);
}

#[tokio::test]
async fn a_send_while_reconnecting_waits_for_the_route_timeout_then_fails_unsent() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let mut proxy = RealProxy::microsocks_with(with_outbound(8));
    let injector = injector(&[proxy.url("socks5h", None)], &ca);
    let (session, _) = open(&injector, &feed, "feed", quick()).await;
    let (mut sink, mut stream) = session.split();
    proxy.kill();
    // The reader drives the session: it finds the loss and reconnects (in vain).
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let err = sink.send(Message::text("order")).await.unwrap_err();
    assert_eq!(err.kind(), &K::NotConnected, "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
    // Back: the next send goes out on the new connection.
    proxy.restart();
    tokio::time::timeout(GENEROUS, sink.send(Message::text("subscribe")))
        .await
        .unwrap()
        .unwrap();
    reader.abort();
}

/// A send abandoned while the session reconnects leaves nothing behind for the next one:
/// a send from another task gets a deadline of its own and is woken when the connection
/// is back, though the abandoned send's deadline passed meanwhile.
#[tokio::test]
async fn a_send_from_another_task_after_an_abandoned_one_waits_for_the_connection() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let mut proxy = RealProxy::microsocks_with(with_outbound(11));
    let timeout = Duration::from_secs(5);
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true".to_owned()),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
                proxy.url("socks5h", None),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__TIMEOUT_SECONDS",
                timeout.as_secs().to_string(),
            ),
        ])
        .load()
        .unwrap();
    let injector = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build();
    let (session, events) = open(&injector, &feed, "feed", quick()).await;
    let (mut sink, mut stream) = session.split();
    proxy.kill();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    assert!(
        eventually(|| count(&events, |e| matches!(e, SessionEvent::Disconnected { .. })) > 0).await
    );
    // Abandoned after 100 ms, in a task of its own.
    let abandoned_at = Instant::now();
    let mut sink = tokio::spawn(async move {
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            sink.send(Message::text("abandoned")),
        )
        .await;
        assert!(abandoned.is_err(), "still reconnecting");
        sink
    })
    .await
    .unwrap();
    // Another task sends shortly before the abandoned send's deadline; the connection is
    // back only after that deadline.
    tokio::time::sleep_until((abandoned_at + timeout - Duration::from_millis(500)).into()).await;
    let sent = tokio::spawn(async move { sink.send(Message::text("subscribe")).await });
    tokio::time::sleep_until((abandoned_at + timeout + Duration::from_millis(500)).into()).await;
    proxy.restart();
    tokio::time::timeout(GENEROUS, sent)
        .await
        .expect("woken")
        .unwrap()
        .expect("sent on the new connection, within its own deadline");
    reader.abort();
}

/// Open descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test]
async fn dropping_sessions_closes_their_connections_and_leaves_no_task() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(20)).await;
    let injector = injector(&[], &ca);
    let metrics = tokio::runtime::Handle::current().metrics();
    // Warm: the dialer and its caches exist before the baseline.
    let (first, _) = open(&injector, &feed, "feed", quick()).await;
    drop(first);
    assert!(eventually(|| feed.open() == 0).await);
    let (tasks, fds) = (metrics.num_alive_tasks(), descriptors());
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let settings =
            quick().with_max_lifetime(Duration::from_millis(300), Duration::from_secs(5));
        let (mut session, _) = open(&injector, &feed, "feed", settings).await;
        next_tick(&mut session).await;
        sessions.push(session);
    }
    // Some rotate meanwhile, closing their old connections in the background.
    for session in &mut sessions {
        next_tick(session).await;
    }
    assert!(feed.open() >= 20);
    drop(sessions);
    assert!(
        eventually(|| feed.open() == 0).await,
        "{} still open",
        feed.open()
    );
    assert!(
        eventually(|| metrics.num_alive_tasks() <= tasks && descriptors() <= fds).await,
        "tasks {} (was {tasks}), descriptors {} (was {fds})",
        metrics.num_alive_tasks(),
        descriptors()
    );
}

#[tokio::test]
async fn a_wait_for_the_budget_does_not_eat_the_route_s_timeout() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(50)).await;
    // Direct, with a timeout of 1 s and a budget of one connection per 1.5 s.
    let injector = injector_with(
        &[],
        &ca,
        &[
            [
                DIRECT,
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__TIMEOUT_SECONDS",
                    "1",
                ),
            ]
            .as_slice(),
            &budget("1", "1500"),
        ]
        .concat(),
    );
    let (_first, _) = injector
        .connect_websocket("binance", feed.url("feed"))
        .await
        .unwrap();
    let start = Instant::now();
    // Past the route's timeout in the queue, then connected: the timeout starts at admission.
    let (_second, _) = injector
        .connect_websocket("binance", feed.url("feed"))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(feed.accepts().len(), 2);
}

/// A place in the budget is held through the WebSocket upgrade, not only the TCP connect:
/// against a server that takes 600 ms to answer the upgrade, with one connection per
/// 300 ms, the second connection starts a window after the first upgrade ended.
#[tokio::test]
async fn a_direct_connection_holds_its_place_in_the_budget_until_its_upgrade_ends() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let times = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            times.lock().unwrap().push(Instant::now());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(600)).await;
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    let ca = TestCa::new();
    let injector = injector_with(
        &[],
        &ca,
        &[[DIRECT].as_slice(), &budget("1", "300")].concat(),
    );
    let url = format!("ws://127.0.0.1:{port}/");
    let (first, second) = tokio::join!(
        injector.connect_websocket("binance", url.as_str()),
        injector.connect_websocket("binance", url.as_str()),
    );
    first.unwrap();
    second.unwrap();
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2);
    let gap = accepted[1] - accepted[0];
    assert!(gap >= Duration::from_millis(850), "{gap:?}");
}

#[tokio::test]
async fn the_hook_knows_the_connection_it_sets_up() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let seen = hooked.clone();
    let settings = quick().with_max_lifetime(Duration::from_millis(300), Duration::from_secs(10));
    let mut session = injector
        .websocket_session("binance", feed.url("feed"))
        .settings(settings)
        .on_connect(move |subscriber| {
            seen.lock().unwrap().push(subscriber.connection());
            async move { subscriber.send(Message::text("subscribe")).await }
        })
        .open()
        .await
        .unwrap();
    let (first, _) = next_tick(&mut session).await;
    let (moved_to, _) = until_moved(&mut session, first).await;
    assert_eq!(*hooked.lock().unwrap(), [first, moved_to]);
    assert_eq!((first, moved_to), (1, 2));
}

#[tokio::test]
async fn debug_output_names_the_route_and_state_and_never_the_password() {
    use proxy_tests::real::{PASSWORD, USER};
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(20)).await;
    let proxy = RealProxy::microsocks(true);
    let injector = injector(&[proxy.url("socks5h", Some((USER, PASSWORD)))], &ca);
    let builder = injector.websocket_session("binance", feed.url("feed"));
    let shown = format!("{builder:?}");
    assert!(shown.starts_with("WebSocketSessionBuilder {"), "{shown}");
    assert!(
        shown.contains(&format!("{USER}:***@127.0.0.1:{}", proxy.port)),
        "{shown}"
    );
    assert!(shown.contains("ping_interval 10000ms"), "{shown}");
    let session = builder.open().await.unwrap();
    assert_eq!(session.connection(), Some(1));
    assert_eq!(
        session.settings().ping_interval(),
        Some(Duration::from_secs(10))
    );
    let shown = format!("{session:?}");
    assert!(shown.contains("exchange: \"binance\""), "{shown}");
    assert!(shown.contains("connected (1, via socks5h://"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
}

/// This process's CPU time so far (user and system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command's closing parenthesis; utime and stime are the 12th
    // and 13th of them, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test]
async fn an_idle_session_sleeps_between_its_timers() {
    let settings = quick()
        .with_ping_interval(Duration::from_millis(500))
        .with_dead_after(Duration::from_secs(5))
        .with_idle_after(Duration::from_secs(60));
    // A session whose timer were never armed for later would spin on it the whole time.
    assert_sleeps_when_idle(settings, |_| {}).await;
}

/// Opens a session with `settings` on a silent origin (`inspect` sees it first), lets it
/// settle, and asserts that it uses under 0.8 s of CPU in 2 s and loses nothing.
async fn assert_sleeps_when_idle(
    settings: SessionSettings,
    inspect: impl FnOnce(&WebSocketSession),
) {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let (session, events) = open(&injector, &feed, "silent", settings).await;
    inspect(&session);
    let (_items, reader) = drive(session);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_time();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time() - before;
    assert!(
        used < Duration::from_millis(800),
        "{used:?} of CPU in 2 s idle"
    );
    assert_eq!(
        count(&events, |e| matches!(e, SessionEvent::Disconnected { .. })),
        0
    );
    reader.abort();
}

#[tokio::test]
async fn a_hook_s_error_fails_the_attempt_with_its_message_and_its_cause() {
    #[derive(Debug)]
    struct Rejected;
    impl std::fmt::Display for Rejected {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the exchange rejected the subscription")
        }
    }
    impl std::error::Error for Rejected {}
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let err = injector
        .websocket_session("binance", feed.url("feed"))
        .on_connect(|_| async {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                Rejected,
            ))
        })
        .open()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::Hook, "{err}");
    assert!(
        err.to_string()
            .contains("the exchange rejected the subscription"),
        "{err}"
    );
    // The hook's own error is the source, to downcast.
    let source = std::error::Error::source(&err).expect("the hook's error");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("the io::Error returned");
    assert!(io.get_ref().is_some_and(|e| e.is::<Rejected>()), "{err:?}");
}

#[tokio::test]
async fn a_server_s_close_frame_is_the_disconnection_s_reason() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let (mut session, events) = open(&injector, &feed, "close", quick()).await;
    let (first, _) = next_tick(&mut session).await;
    until_moved(&mut session, first).await;
    let reason = events.lock().unwrap().iter().find_map(|e| match e {
        SessionEvent::Disconnected {
            connection: 1,
            error,
        } => Some(error.to_string()),
        _ => None,
    });
    let reason = reason.expect("a disconnection");
    assert!(
        reason.contains("the server closed the connection (1001 maintenance)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_member_benched_while_an_attempt_waited_for_its_budget_is_skipped() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(50)).await;
    // The first member refuses every CONNECT (a member failure: it is benched).
    let refusing = refusing_proxy().await;
    let good = RealProxy::microsocks_with(with_outbound(9));
    let urls = [
        format!("http://{}", refusing.authority()),
        good.url("socks5h", None),
    ];
    let injector = injector_with(&urls, &ca, &budget("1", "500"));
    // Both start with the first member healthy; the second waits for its budget, and by
    // then the first attempt has benched it.
    let (first, second) = tokio::join!(
        injector.connect_websocket("binance", feed.url("feed")),
        injector.connect_websocket("binance", feed.url("feed")),
    );
    first.unwrap();
    second.unwrap();
    assert_eq!(
        refusing.accepted(),
        1,
        "the benched member was not dialed again"
    );
    assert_eq!(feed.accepts().len(), 2);
}

/// The last member left is dialed though it was benched while the attempt waited for its
/// budget: an attempt never fails without a try, and its error is that member's.
#[tokio::test]
async fn the_last_member_is_tried_though_benched_while_the_attempt_waited() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(50)).await;
    let (one, two) = tokio::join!(refusing_proxy(), refusing_proxy());
    let urls = [
        format!("http://{}", one.authority()),
        format!("http://{}", two.authority()),
    ];
    let injector = injector_with(&urls, &ca, &budget("1", "300"));
    // The first attempt benches both; the second waits its turn at each, skips the
    // first and dials the second anyway.
    let (first, second) = tokio::join!(
        injector.connect_websocket("binance", feed.url("feed")),
        injector.connect_websocket("binance", feed.url("feed")),
    );
    assert!(first.is_err());
    let err = second.unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!((one.accepted(), two.accepted()), (1, 2));
    assert!(feed.accepts().is_empty(), "nothing direct");
}

#[tokio::test]
async fn a_session_with_every_timer_off_sleeps_too() {
    let settings = quick()
        .with_ping_interval(Duration::ZERO)
        .with_dead_after(Duration::ZERO)
        .with_max_attempts(0, Duration::from_millis(100));
    // Past `stable_after` nothing is due any more, and the timer is a day away.
    assert_sleeps_when_idle(settings, |session| {
        assert_eq!(session.settings().ping_interval(), None);
    })
    .await;
}

#[tokio::test]
async fn without_pings_a_silent_connection_is_declared_dead_within_a_quarter_more() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    let dead_after = Duration::from_secs(4);
    let settings = quick()
        .with_ping_interval(Duration::ZERO)
        .with_dead_after(dead_after);
    let opened = Instant::now();
    let (session, events) = open(&injector, &feed, "silent", settings).await;
    let (_items, reader) = drive(session);
    let lost = || count(&events, |e| matches!(e, SessionEvent::Disconnected { .. })) > 0;
    while !lost() {
        assert!(opened.elapsed() < GENEROUS, "never declared dead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = opened.elapsed();
    // Its last frame (the subscription's answer) came at once; the session looks at its
    // clock every quarter of the limit. 1.5 s to spare for a loaded machine.
    assert!(took >= dead_after, "{took:?}");
    assert!(
        took < dead_after * 5 / 4 + Duration::from_millis(1500),
        "{took:?}"
    );
    reader.abort();
}

#[tokio::test]
async fn connections_that_keep_dropping_use_up_the_attempts_however_often_the_timers_look() {
    let ca = TestCa::new();
    let feed = Feed::start(&ca, Duration::from_millis(5)).await;
    let injector = injector(&[], &ca);
    // Each connection on /close lives for three ticks: never `stable_after`, while the
    // timers look every 5 ms.
    let settings = quick()
        .with_ping_interval(Duration::from_millis(5))
        .with_dead_after(Duration::from_secs(5))
        .with_max_attempts(3, Duration::from_secs(60));
    let (mut session, events) = open(&injector, &feed, "close", settings).await;
    let ended = tokio::time::timeout(GENEROUS, async {
        while let Some(item) = session.next().await {
            if item.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the attempts never ran out: {:?}",
        events.lock().unwrap()
    );
    assert_eq!(
        count(&events, |e| matches!(e, SessionEvent::Ended { .. })),
        1
    );
}

#[tokio::test]
async fn messages_sent_through_a_session_arrive_and_a_flush_reports_them_written() {
    use proxy_tests::origin::{Origin, WELCOME};
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let injector = injector(&[], &ca);
    let url = format!("wss://127.0.0.1:{}/ws", origin.wss.port());
    let mut session = injector
        .websocket_session("binance", url)
        .open()
        .await
        .unwrap();
    let greeting = session.next().await.unwrap().unwrap();
    assert_eq!(greeting.message, Message::text(WELCOME));
    // `feed` writes without flushing; `flush` sends; the origin echoes.
    session.feed(Message::text("order 1")).await.unwrap();
    session.feed(Message::text("order 2")).await.unwrap();
    session.flush().await.unwrap();
    for expected in ["echo: order 1", "echo: order 2"] {
        let reply = tokio::time::timeout(GENEROUS, session.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(reply.message, Message::text(expected));
    }
    session.close().await.unwrap();
    assert!(
        session.next().await.is_none(),
        "closed by the caller: the stream ends"
    );
    let err = session.send(Message::text("order 3")).await.unwrap_err();
    assert_eq!(err.kind(), &K::NotConnected);
}
