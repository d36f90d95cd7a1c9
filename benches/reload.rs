//! Benchmark: how long a settings change takes to reach the routes. From the moment a new
//! settings file is renamed into place until a dialer handed out before takes the new
//! route, for the watch's debounce of 0, 50 and 250 ms (the built-in); and how long
//! `reload_with` itself takes with 1 and 50 exchanges served. No peer does this (reqwest
//! and hyper-util read their proxy settings once), so the figures stand alone; the
//! request path's share, the read of the route in force, is in `pool` (`route_in_force`).
//!
//! `cargo bench -p proxy-benches --bench reload`

use std::path::Path;
use std::time::{Duration, Instant};

use proxy_runtime::{ConnectionKind, ProxyInjector, ProxySettings};

const ROUNDS: usize = 20;

fn yaml(debounce_ms: u64, url: &str) -> String {
    format!(
        "proxy:\n  enabled: true\n  reload:\n    watch: true\n    debounce_ms: {debounce_ms}\n  exchanges:\n    binance:\n      http:\n        url: {url}\n"
    )
}

fn replace(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).expect("write");
    std::fs::rename(&next, path).expect("rename");
}

/// Minimum, median and maximum.
fn spread(mut times: Vec<Duration>) -> String {
    times.sort();
    format!(
        "min {:>9.3?}  median {:>9.3?}  max {:>9.3?}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    )
}

fn write_to_route(debounce_ms: u64) -> Vec<Duration> {
    let dir =
        std::env::temp_dir().join(format!("reload-bench-{}-{debounce_ms}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("settings.yaml");
    let url = |i: usize| format!("socks5h://proxy-{}.example:1080", i % 2);
    replace(&file, &yaml(debounce_ms, &url(0)));
    let injector = ProxyInjector::from_loader(ProxySettings::loader().yaml_file(&file)).build();
    let dialer = injector.dialer("binance", ConnectionKind::Http);
    let mut times = Vec::new();
    for i in 1..=ROUNDS {
        // Changes far enough apart that each is a change of its own.
        std::thread::sleep(Duration::from_millis(debounce_ms + 50));
        let wanted = url(i);
        let start = Instant::now();
        replace(&file, &yaml(debounce_ms, &wanted));
        while dialer.proxy().as_deref() != Some(wanted.as_str()) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the change never came"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        times.push(start.elapsed());
    }
    let _ = std::fs::remove_dir_all(dir);
    times
}

fn reload_with(exchanges: usize) -> Vec<Duration> {
    let settings = |timeout: u16| {
        let mut vars = vec![("CRYPTOFEED_PROXY_ENABLED".to_owned(), "true".to_owned())];
        for i in 0..exchanges {
            vars.push((
                format!("CRYPTOFEED_PROXY_EXCHANGES__EX{i}__HTTP__URL"),
                format!("socks5h://proxy-{i}.example:1080"),
            ));
            vars.push((
                format!("CRYPTOFEED_PROXY_EXCHANGES__EX{i}__HTTP__TIMEOUT_SECONDS"),
                timeout.to_string(),
            ));
        }
        ProxySettings::loader()
            .env_vars(vars)
            .load()
            .expect("settings")
    };
    let injector = ProxyInjector::new(settings(10));
    let clients: Vec<_> = (0..exchanges)
        .map(|i| injector.http_client(&format!("ex{i}")))
        .collect();
    let (a, b) = (settings(10), settings(11));
    let mut times = Vec::new();
    for i in 0..ROUNDS * 5 {
        let next = if i % 2 == 0 { b.clone() } else { a.clone() };
        let start = Instant::now();
        let report = injector.reload_with(next);
        times.push(start.elapsed());
        assert_eq!(report.routes().len(), exchanges, "every route changed");
    }
    drop(clients);
    times
}

fn main() {
    println!("from a file renamed into place to the new route in use ({ROUNDS} changes each):");
    for debounce in [0, 50, 250] {
        println!(
            "  debounce {debounce:>3} ms: {}",
            spread(write_to_route(debounce))
        );
    }
    println!(
        "reload_with, every route changed ({} reloads each):",
        ROUNDS * 5
    );
    for exchanges in [1, 50] {
        println!(
            "  {exchanges:>2} exchange(s) served: {}",
            spread(reload_with(exchanges))
        );
    }
}
