//! Benchmark: loading proxy settings from the variables of 100 exchanges (402 variables:
//! for each exchange an HTTP and a WebSocket URL and timeout, plus two for the default).
//!
//! `cargo bench -p proxy-benches --bench load_settings` prints the time per load.
//! Target: under 1 ms per load.

use std::hint::black_box;
use std::time::{Duration, Instant};

use proxy_runtime::ProxySettings;

fn variables(exchanges: usize) -> Vec<(String, String)> {
    let mut vars = vec![
        ("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned()),
        (
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL".to_owned(),
            "socks5h://user:password@proxy.example.com:1080".to_owned(),
        ),
    ];
    for i in 0..exchanges {
        let ex = format!("CRYPTOFEED_PROXY_EXCHANGES__EXCHANGE_{i}");
        vars.push((
            format!("{ex}__HTTP__URL"),
            format!("http://u{i}:p%40ss{i}@http-{i}.example.com:8080"),
        ));
        vars.push((format!("{ex}__HTTP__TIMEOUT_SECONDS"), "15".to_owned()));
        vars.push((
            format!("{ex}__WEBSOCKET__URL"),
            format!("socks5h://ws-{i}.example.com:1081"),
        ));
        vars.push((format!("{ex}__WEBSOCKET__TIMEOUT_SECONDS"), "20".to_owned()));
    }
    vars
}

fn main() {
    let vars = variables(100);
    let load = || {
        ProxySettings::loader()
            .env_vars(vars.iter().cloned())
            .load()
            .expect("valid settings")
    };
    let settings = load();
    assert_eq!(settings.exchanges().len(), 100);

    // Warm up, then time single loads.
    for _ in 0..50 {
        black_box(load());
    }
    let runs = 1000;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(load());
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    let pct = |p: usize| times[(runs * p / 100).min(runs - 1)];
    println!(
        "load_settings: {} variables, {} exchanges, {runs} loads: min {:?}, median {:?}, p99 {:?}, max {:?}",
        vars.len(),
        settings.exchanges().len(),
        times[0],
        pct(50),
        pct(99),
        times[runs - 1],
    );
    let target = Duration::from_millis(1);
    println!(
        "target: median under {target:?}: {}",
        if pct(50) < target { "met" } else { "NOT met" }
    );
}
