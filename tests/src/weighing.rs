//! An exchange that limits request weight per client IP, as Binance does: a sliding
//! window per peer address, the weight of each request read from its `x-weight` header
//! (1 without one), the used weight reported in `x-mbx-used-weight-1m`, and 429 past the
//! limit. Its count can be preloaded, as another process on the same IP would spend.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Response, StatusCode};

use crate::origin::{Body, Handler, Received, full};

/// The header the origin reports the used weight in.
pub const USED: &str = "x-mbx-used-weight-1m";

/// The limits and what each peer spent.
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    limit: u32,
    spent: Mutex<HashMap<IpAddr, VecDeque<(Instant, u32)>>>,
    over: AtomicUsize,
    answered: AtomicUsize,
    /// When each request answered 200 arrived.
    arrivals: Mutex<Vec<Instant>>,
}

impl Limiter {
    /// At most `limit` weight per `window` per peer address.
    pub fn new(limit: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self {
            window,
            limit,
            spent: Mutex::default(),
            over: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            arrivals: Mutex::default(),
        })
    }

    /// `weight` spent by `peer` now, as by another client.
    pub fn preload(&self, peer: IpAddr, weight: u32) {
        let mut spent = self.spent.lock().expect("lock");
        spent
            .entry(peer)
            .or_default()
            .push_back((Instant::now(), weight));
    }

    /// The requests answered 429.
    pub fn over(&self) -> usize {
        self.over.load(Ordering::SeqCst)
    }

    /// The requests answered 200.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// When the requests answered 200 arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("lock").clone()
    }

    /// The origin's handler.
    pub fn handler(self: &Arc<Self>) -> Handler {
        let me = self.clone();
        Arc::new(move |request: &Received| me.answer(request))
    }

    fn answer(&self, request: &Received) -> Response<Body> {
        let weight = request
            .headers
            .get("x-weight")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1u32);
        let now = Instant::now();
        let mut spent = self.spent.lock().expect("lock");
        let peer = spent.entry(request.peer.ip()).or_default();
        while peer.front().is_some_and(|(t, _)| now - *t >= self.window) {
            peer.pop_front();
        }
        let used: u32 = peer.iter().map(|(_, w)| w).sum();
        let (status, used) = if used + weight > self.limit {
            self.over.fetch_add(1, Ordering::SeqCst);
            (StatusCode::TOO_MANY_REQUESTS, used)
        } else {
            self.answered.fetch_add(1, Ordering::SeqCst);
            peer.push_back((now, weight));
            self.arrivals.lock().expect("lock").push(now);
            (StatusCode::OK, used + weight)
        };
        let mut response = Response::new(full("{}"));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(USED, used.to_string().parse().expect("a number"));
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", "1".parse().expect("a number"));
        }
        response
    }
}
