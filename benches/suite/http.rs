//! The HTTP clients compared: this project's `HttpClient`, plain hyper-util with
//! hyper-rustls (Nagle off; each request parses its URL with `url` and sets this project's
//! `Accept-Encoding`, as this project does), and reqwest (with its own SOCKS and CONNECT support), all
//! with the same rustls configuration (ring, the test CA only, ALPN `h2` and `http/1.1`),
//! and the scenarios each runs.

use std::time::{Duration, Instant};

use proxy_benches::keepalive::{KeepAlive, Version};
use rustls::ClientConfig;

pub(crate) use proxy_benches::{peer_tls, peer_tls_h1};

use crate::harness::{Figure, median_p90};

/// A client of one of the three kinds: this project's and bare hyper-util's as the cost
/// benchmark makes them (`keepalive.rs`), or reqwest.
#[derive(Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "the peers' clients as their users hold them, unboxed; a few are made per run"
)]
pub(crate) enum Client {
    KeepAlive(KeepAlive),
    Reqwest(reqwest::Client),
}

impl Client {
    /// This project's client.
    pub(crate) fn ours(client: proxy_runtime::HttpClient) -> Self {
        Self::KeepAlive(KeepAlive::Ours(client))
    }

    /// A plain hyper-util client on `tls` (direct), offering HTTP/2 and HTTP/1.1.
    pub(crate) fn hyper(tls: &ClientConfig) -> Self {
        Self::KeepAlive(KeepAlive::bare_with(tls, None, Version::Http2))
    }

    /// A reqwest client on `tls`, through `proxy` (a proxy URL) or direct, decoding gzip
    /// and deflate bodies (asking for them) as this project does when `decode` and the
    /// `decompression` feature say so.
    pub(crate) fn reqwest(tls: &ClientConfig, proxy: Option<&str>, decode: bool) -> Self {
        let builder = reqwest::Client::builder();
        let builder = if decode {
            builder
        } else {
            builder.no_gzip().no_deflate()
        };
        Self::reqwest_with(builder, tls, proxy)
    }

    /// [`Client::reqwest`] speaking HTTP/1.1 alone.
    pub(crate) fn reqwest_http1(tls: &ClientConfig, proxy: Option<&str>) -> Self {
        Self::reqwest_with(reqwest::Client::builder().http1_only(), tls, proxy)
    }

    fn reqwest_with(
        builder: reqwest::ClientBuilder,
        tls: &ClientConfig,
        proxy: Option<&str>,
    ) -> Self {
        let builder = builder.use_preconfigured_tls(tls.clone());
        let builder = match proxy {
            Some(url) => builder.proxy(reqwest::Proxy::all(url).expect("a proxy URL")),
            None => builder.no_proxy(),
        };
        Self::Reqwest(builder.build().expect("a reqwest client"))
    }

    /// `GET url`, the whole body read; the number of body bytes. Panics on any failure:
    /// everything here runs on loopback against fixtures that do not fail.
    pub(crate) async fn get(&self, url: &str) -> usize {
        match self {
            Client::KeepAlive(c) => c.get(url).await,
            Client::Reqwest(c) => c
                .get(url)
                .send()
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body")
                .len(),
        }
    }
}

/// `n` GETs one after another on `client` (its connections kept alive).
pub(crate) async fn sequential(client: &Client, url: &str, n: usize) -> Figure {
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(client.get(url).await);
    }
    Figure::Rate(n as f64 / started.elapsed().as_secs_f64())
}

/// `n` GETs one after another on `client`: the 99th percentile of their latencies.
pub(crate) async fn sequential_p99(client: &Client, url: &str, n: usize) -> Figure {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        std::hint::black_box(client.get(url).await);
        samples.push(started.elapsed());
    }
    samples.sort_unstable();
    Figure::Time(samples[(n * 99 / 100).min(n - 1)])
}

/// `batches` times: `tasks` tasks, each making `each` GETs one after another, all on
/// `client`. (Batches so that a round lasts long enough to be measured on a busy machine.)
pub(crate) async fn concurrent(
    client: &Client,
    url: &str,
    tasks: usize,
    each: usize,
    batches: usize,
) -> Figure {
    let started = Instant::now();
    for _ in 0..batches {
        batch(client, url, tasks, each).await;
    }
    Figure::Rate((batches * tasks * each) as f64 / started.elapsed().as_secs_f64())
}

async fn batch(client: &Client, url: &str, tasks: usize, each: usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                for _ in 0..each {
                    std::hint::black_box(client.get(&url).await);
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("a task");
    }
}

/// `n` times: a new client (so a new connection: TCP, any proxy handshake, TLS) and one
/// GET. The median time, and the 90th percentile as a note.
pub(crate) async fn new_connections(
    make: &dyn Fn() -> Client,
    url: &str,
    n: usize,
) -> (Figure, Duration) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let client = make();
        std::hint::black_box(client.get(url).await);
        samples.push(started.elapsed());
    }
    let (median, p90) = median_p90(&mut samples);
    (Figure::Time(median), p90)
}
