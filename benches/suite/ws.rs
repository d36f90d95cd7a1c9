//! WebSocket streams compared: this project's `connect_websocket` against
//! tokio-tungstenite over tokio-rustls (and tokio-socks for SOCKS5) by hand, and the pushed
//! message rate each reaches.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub(crate) use proxy_benches::ws_by_hand as by_hand;

use crate::harness::Figure;

/// Reads the greeting, asks for `n` messages, and times them until `done`.
pub(crate) async fn pushed<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    n: usize,
) -> Figure {
    let hello = ws.next().await.expect("greeting").expect("greeting");
    assert!(matches!(hello, Message::Text(_)));
    ws.send(Message::text(format!("count {n}")))
        .await
        .expect("send");
    let started = Instant::now();
    let mut got = 0usize;
    loop {
        match ws.next().await.expect("a message").expect("a message") {
            Message::Text(t) if t.as_str() == "done" => break,
            Message::Text(_) => got += 1,
            _ => {}
        }
    }
    let rate = got as f64 / started.elapsed().as_secs_f64();
    assert_eq!(got, n);
    Figure::Rate(rate)
}

/// [`pushed`] through a resilient session.
pub(crate) async fn pushed_session(
    session: &mut proxy_runtime::WebSocketSession,
    n: usize,
) -> Figure {
    let hello = session.next().await.expect("greeting").expect("greeting");
    assert!(matches!(hello.message, Message::Text(_)));
    session
        .send(Message::text(format!("count {n}")))
        .await
        .expect("send");
    let started = Instant::now();
    let mut got = 0usize;
    loop {
        match session
            .next()
            .await
            .expect("a message")
            .expect("a message")
            .message
        {
            Message::Text(t) if t.as_str() == "done" => break,
            Message::Text(_) => got += 1,
            _ => {}
        }
    }
    let rate = got as f64 / started.elapsed().as_secs_f64();
    assert_eq!(got, n);
    Figure::Rate(rate)
}

/// Time from a pool member's death to the first message through the next member, over
/// `rounds` kills: each round opens a session through a new injector (so that no member
/// is benched from an earlier round) over a pool of two microsocks, kills the member the
/// session is on, times the first message through the other, and restarts the killed
/// one. The median, with the p90 in a note. The feed ticks every millisecond.
pub(crate) async fn failover(
    name: &str,
    rounds: usize,
    ca: &proxy_tests::tls::TestCa,
) -> crate::harness::Row {
    use proxy_tests::feed::{Feed, tick_number};
    use proxy_tests::real::RealProxy;
    use std::time::Duration;

    let feed = Feed::start(ca, Duration::from_millis(1)).await;
    let members =
        tokio::sync::Mutex::new([RealProxy::microsocks(false), RealProxy::microsocks(false)]);
    let urls: Vec<String> = members
        .lock()
        .await
        .iter()
        .map(|m| m.url("socks5h", None))
        .collect();
    let times = std::cell::RefCell::new(Vec::new());
    let backoff = proxy_runtime::SessionSettings::new().backoff_initial();
    let (members_ref, times_ref, urls, feed) = (&members, &times, &urls, &feed);
    let mut row = crate::harness::against(
        name,
        rounds,
        Box::new(move || {
            Box::pin(async move {
                let settings = proxy_runtime::ProxySettings::loader()
                    .env_vars([
                        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
                        (
                            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URLS".to_owned(),
                            serde_json::to_string(urls).expect("JSON"),
                        ),
                    ])
                    .load()
                    .expect("settings");
                let injector = proxy_runtime::ProxyInjector::builder(settings)
                    .tls_roots(ca.roots())
                    .build();
                let mut session = injector
                    .websocket_session("binance", feed.url("feed"))
                    .on_connect(|s| async move { s.send(Message::text("subscribe")).await })
                    .open()
                    .await
                    .expect("the session");
                // A tick, to know the connection and its member.
                let connection = loop {
                    let item = session.next().await.expect("open").expect("no error");
                    if tick_number(&item.message).is_some() {
                        break item.connection;
                    }
                };
                let route = session.route().expect("connected").to_owned();
                let mut members = members_ref.lock().await;
                let on = members
                    .iter()
                    .position(|m| route.contains(&format!("socks5h://127.0.0.1:{} ", m.port)))
                    .expect("the member");
                let killed = Instant::now();
                members[on].kill();
                let took = loop {
                    let item = session.next().await.expect("open").expect("no error");
                    if item.connection != connection && tick_number(&item.message).is_some() {
                        break killed.elapsed();
                    }
                };
                members[on].restart();
                times_ref.borrow_mut().push(took);
                Figure::Time(took)
            })
        }),
        (
            "goal: 100 ms + the first backoff ceiling",
            Figure::Time(Duration::from_millis(100) + backoff),
        ),
    )
    .await;
    let mut all = times.into_inner();
    all.sort();
    let p90 = all[(all.len() * 9 / 10).min(all.len() - 1)];
    row.notes.push(format!(
        "p90 {} over {} kills",
        Figure::Time(p90).show(),
        all.len()
    ));
    row
}
