//! Settings and client construction: loading the settings of 100 exchanges and
//! `get_proxy`, against the original Python implementation's figures (pydantic-settings,
//! measured for this project: 6.9 ms and 203 ns), and building a `#[proxied]` client
//! against the same struct built by hand.

use std::hint::black_box;
use std::time::{Duration, Instant};

use proxy_runtime::{ConnectionKind, ProxySettings, init_proxy_system, proxied};

use crate::harness::{Figure, Row, against, compare};
use crate::{side, wanted};

/// The variables of `exchanges` exchanges: for each an HTTP and a WebSocket URL and
/// timeout, plus the default route and `enabled`.
pub(crate) fn variables(exchanges: usize) -> Vec<(String, String)> {
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

/// The median time of one call of `f`, over `batches` batches of `per_batch` calls.
fn per_call(batches: usize, per_batch: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..batches)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            started.elapsed() / u32::try_from(per_batch).unwrap_or(u32::MAX)
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The client, with `#[proxied]`.
#[proxied(exchange = "binance")]
#[derive(Debug)]
pub(crate) struct Binance {
    symbols: Vec<String>,
}

#[proxied]
impl Binance {
    /// A client for these symbols.
    pub(crate) fn new(symbols: Vec<String>) -> Self {
        Self { symbols }
    }
}

/// The same client without `#[proxied]`.
#[derive(Debug)]
pub(crate) struct Plain {
    symbols: Vec<String>,
}

pub(crate) async fn rows(rounds: usize, filters: &[String]) -> Vec<Row> {
    let mut rows = Vec::new();
    let vars = variables(100);
    let load = || {
        ProxySettings::loader()
            .env_vars(vars.iter().cloned())
            .load()
            .expect("valid settings")
    };
    let name = "settings load, 100 exchanges (402 variables)";
    if wanted(filters, name) {
        let reference = (
            "goal 1 ms; pydantic-settings",
            Figure::Time(Duration::from_micros(6900)),
        );
        let mut row = against(
            name,
            rounds,
            side(|| async { Figure::Time(per_call(20, 10, || drop(black_box(load())))) }),
            reference,
        )
        .await;
        row.notes.push("goal: under 1 ms".to_owned());
        rows.push(row);
    }
    let name = "get_proxy, 100 exchanges";
    if wanted(filters, name) {
        let settings = load();
        let ids: Vec<String> = (0..100).map(|i| format!("exchange_{i}")).collect();
        let mut i = 0usize;
        let mut row = against(
            name,
            rounds,
            side(|| {
                let figure = Figure::Time(per_call(50, 10_000, || {
                    i = (i + 1) % ids.len();
                    black_box(settings.get_proxy(black_box(&ids[i]), ConnectionKind::Websocket));
                }));
                async move { figure }
            }),
            ("pydantic-settings", Figure::Time(Duration::from_nanos(203))),
        )
        .await;
        row.notes.push("goal: under 50 ns".to_owned());
        rows.push(row);
    }
    let name = "build a #[proxied] client, disabled";
    if wanted(filters, name) {
        init_proxy_system(ProxySettings::new(false));
        let symbols = vec!["BTCUSDT".to_owned()];
        rows.push(
            compare(
                name,
                rounds,
                side(|| {
                    let t = per_call(50, 2000, || {
                        drop(black_box(Binance::new(black_box(symbols.clone()))))
                    });
                    async move { Figure::Time(t) }
                }),
                "the struct built by hand",
                side(|| {
                    let t = per_call(50, 2000, || {
                        drop(black_box(Plain {
                            symbols: black_box(symbols.clone()),
                        }));
                    });
                    async move { Figure::Time(t) }
                }),
            )
            .await,
        );
        let _ = black_box(
            Binance::new(Vec::new()).symbols.len()
                + Plain {
                    symbols: Vec::new(),
                }
                .symbols
                .len(),
        );
    }
    rows
}
