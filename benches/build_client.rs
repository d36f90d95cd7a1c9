//! Benchmark: building a `#[proxied]` client with proxies disabled, against building the
//! same struct by hand (and against building a plain hyper-util client, which is what the
//! proxied client holds).
//!
//! `cargo bench -p proxy-benches --bench build_client` prints the time per construction.

use std::hint::black_box;
use std::time::{Duration, Instant};

use proxy_runtime::{ProxySettings, init_proxy_system, proxied};

/// The client, with `#[proxied]`.
#[proxied(exchange = "binance")]
#[derive(Debug)]
pub struct Binance {
    symbols: Vec<String>,
}

#[proxied]
impl Binance {
    /// A client for these symbols.
    pub fn new(symbols: Vec<String>) -> Self {
        Self { symbols }
    }
}

/// The same client without `#[proxied]`.
#[derive(Debug)]
pub struct Plain {
    symbols: Vec<String>,
}

fn time(name: &str, runs: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..runs / 10 {
        f();
    }
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let median = samples[runs / 2];
    println!(
        "{name:<32} median {median:>10.2?}  p99 {:>10.2?}",
        samples[runs * 99 / 100]
    );
    median
}

fn main() {
    init_proxy_system(ProxySettings::new(false));
    let symbols = vec!["BTCUSDT".to_owned()];
    let runs = 20_000;
    let by_hand = time("struct built by hand", runs, || {
        black_box(Plain {
            symbols: black_box(symbols.clone()),
        });
    });
    let proxied = time("#[proxied] client, disabled", runs, || {
        black_box(Binance::new(black_box(symbols.clone())));
    });
    let _ = black_box(Binance::new(Vec::new()).symbols.len());
    let _ = black_box(
        Plain {
            symbols: Vec::new(),
        }
        .symbols
        .len(),
    );
    println!(
        "cost of the proxied constructor: {:.2?} per client (resolving the routes and cloning the exchange's pooled HTTP client)",
        proxied.saturating_sub(by_hand)
    );
}
