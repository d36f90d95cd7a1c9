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
