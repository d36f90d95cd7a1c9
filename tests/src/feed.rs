//! A local market-data feed over WSS that numbers its messages: one ticker for every
//! connection (`tick N`, N counting up), so that two connections subscribed at once carry
//! the same messages, byte for byte, and a reader can tell whether it lost one.
//!
//! Paths: `/feed` waits for a text `subscribe` (answering `subscribed`), then forwards every
//! tick; `/silent` accepts the subscription and then sends nothing (it still answers
//! pings); `/close` forwards three ticks, then closes with code 1001 and the reason
//! `maintenance`; `/once-then-NNN` serves its first upgrade as `/feed` and answers every
//! later one with the HTTP status NNN; `/lagging` forwards the ticks of its Nth connection
//! 50 ms × (N - 1) after they were made (each new connection behind the one before).
//! Every accepted connection is recorded with its time and peer, every
//! subscription counted, and every connection the client closed with a close frame.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use crate::tls::TestCa;

/// The feed: its address and what it saw.
#[derive(Debug, Clone)]
pub struct Feed {
    addr: SocketAddr,
    accepts: Arc<Mutex<Vec<(Instant, IpAddr)>>>,
    subscriptions: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    closed_by_client: Arc<AtomicUsize>,
    /// Upgrades asked for, by path.
    upgrades: Arc<Mutex<HashMap<String, usize>>>,
}

/// The number a tick message carries (`tick N`), if it is one.
pub fn tick_number(message: &Message) -> Option<u64> {
    match message {
        Message::Text(text) => text.as_str().strip_prefix("tick ")?.parse().ok(),
        _ => None,
    }
}

impl Feed {
    /// Starts the feed on 127.0.0.1, ticking every `every`.
    pub async fn start(ca: &TestCa, every: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind feed");
        let feed = Feed {
            addr: listener.local_addr().expect("feed address"),
            accepts: Arc::default(),
            subscriptions: Arc::default(),
            open: Arc::default(),
            closed_by_client: Arc::default(),
            upgrades: Arc::default(),
        };
        let (ticks, _) = broadcast::channel::<(u64, Instant)>(65_536);
        let ticker = ticks.clone();
        // Ticks until the test's runtime ends.
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                n += 1;
                let _ = ticker.send((n, Instant::now()));
            }
        });
        let served = feed.clone();
        let acceptor = ca.acceptor();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                served
                    .accepts
                    .lock()
                    .expect("lock")
                    .push((Instant::now(), peer.ip()));
                let served = served.clone();
                let acceptor = acceptor.clone();
                let ticks = ticks.subscribe();
                tokio::spawn(async move {
                    served.open.fetch_add(1, Ordering::SeqCst);
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        served.serve(tls, ticks).await;
                    }
                    served.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        feed
    }

    #[allow(clippy::result_large_err)] // the error type of tungstenite's header callback
    async fn serve<S>(&self, stream: S, mut ticks: broadcast::Receiver<(u64, Instant)>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let mut path = String::new();
        let mut nth = 0;
        let record = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                      response| {
            path = request.uri().path().to_owned();
            let mut upgrades = self.upgrades.lock().expect("lock");
            let asked = upgrades.entry(path.clone()).or_default();
            *asked += 1;
            nth = *asked;
            let refusal = path.strip_prefix("/once-then-").map(str::parse::<u16>);
            if let (Some(Ok(status)), true) = (refusal, *asked > 1) {
                let mut refused =
                    tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(None);
                *refused.status_mut() = status.try_into().expect("an HTTP status");
                return Err(refused);
            }
            Ok(response)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
            return;
        };
        // Until the subscription: answer pings (reading does), drop what came before.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "subscribe" => break,
                Some(Ok(_)) => continue,
                _ => return,
            }
        }
        self.subscriptions.fetch_add(1, Ordering::SeqCst);
        if ws.send(Message::text("subscribed")).await.is_err() {
            return;
        }
        let silent = path == "/silent";
        let lag = if path == "/lagging" {
            Duration::from_millis(50) * (nth as u32 - 1)
        } else {
            Duration::ZERO
        };
        let mut left = (path == "/close").then_some(3);
        loop {
            if left == Some(0) {
                let frame = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1001.into(),
                    reason: "maintenance".into(),
                };
                let _ = ws.close(Some(frame)).await;
                return;
            }
            tokio::select! {
                tick = ticks.recv(), if !silent => match tick {
                    Ok((n, made)) => {
                        tokio::time::sleep_until((made + lag).into()).await;
                        if ws.send(Message::text(format!("tick {n}"))).await.is_err() {
                            return;
                        }
                        left = left.map(|n| n - 1);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                read = ws.next() => match read {
                    Some(Ok(Message::Close(_))) => {
                        self.closed_by_client.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// `wss://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("wss://127.0.0.1:{}/{path}", self.addr.port())
    }

    /// Each connection accepted: when, and from which address.
    pub fn accepts(&self) -> Vec<(Instant, IpAddr)> {
        self.accepts.lock().expect("lock").clone()
    }

    /// The subscriptions received.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::SeqCst)
    }

    /// The connections the client closed with a close frame.
    pub fn closed_by_client(&self) -> usize {
        self.closed_by_client.load(Ordering::SeqCst)
    }

    /// The connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The most connections accepted within any `window`.
    pub fn most_within(&self, window: Duration) -> usize {
        let mut times: Vec<Instant> = self.accepts().into_iter().map(|(t, _)| t).collect();
        times.sort();
        let mut most = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= window {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
        most
    }
}
