//! The side-by-side benchmark suite: every scenario runs this project and its peer in the
//! same run, alternating, against a loopback HTTPS/WSS origin (a generated certificate)
//! and the real proxy servers (microsocks, dante, tinyproxy, squid) started here.
//!
//! ```sh
//! cargo bench -p proxy-benches --bench suite                 # every scenario, 5 rounds
//! cargo bench -p proxy-benches --bench suite -- --quick      # 1 round, smaller counts
//! cargo bench -p proxy-benches --bench suite -- --json tinyproxy   # scenarios naming it
//! ```
//!
//! It prints a Markdown table (or JSON with `--json`): per scenario the median of the
//! rounds for this project and its peer, the ratio (above 1: this project is better, for
//! rates and times alike) and the spread of the rounds. A harness of our own rather than
//! criterion or divan: the two sides must alternate round by round on this noisy shared
//! machine, each scenario has its own unit (rates, latencies, bytes), and the peers need
//! the same fixtures started once.

mod harness;
mod http;
mod memory;
mod micro;
mod ws;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use harness::{Figure, Row, Side, compare};
use http::Client;
use proxy_runtime::{ConnectionKind, HttpClient, ProxyInjector, ProxySettings};
use proxy_tests::origin::Origin;
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

/// Whether this project decodes bodies in this build (the `decompression` feature): the
/// peers are then asked to as well.
const DECODES: bool = cfg!(feature = "decompression");

/// How much each scenario does.
struct Sizes {
    rounds: usize,
    sequential: usize,
    tasks: usize,
    each: usize,
    /// How many times a round runs the `tasks` x `each` GETs.
    batches: usize,
    new_connections: usize,
    messages: usize,
    idle_streams: usize,
}

const FULL: Sizes = Sizes {
    rounds: 5,
    sequential: 2000,
    tasks: 32,
    each: 50,
    batches: 10,
    new_connections: 60,
    messages: 20_000,
    idle_streams: 1000,
};

const QUICK: Sizes = Sizes {
    rounds: 1,
    sequential: 100,
    tasks: 8,
    each: 10,
    batches: 1,
    new_connections: 10,
    messages: 2000,
    idle_streams: 50,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    memory::raise_fd_limit();
    let json = args.iter().any(|a| a == "--json");
    let sizes = if args.iter().any(|a| a == "--quick") {
        QUICK
    } else {
        FULL
    };
    // `cargo bench` passes `--bench`; every other argument not a flag filters scenarios.
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let rows = runtime.block_on(run(&sizes, &filters));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&harness::json(&rows)).expect("JSON")
        );
    } else {
        println!("{}", harness::table(&rows));
    }
}

/// The proxies, each with the URL both sides are given.
struct Proxies {
    list: Vec<(RealProxy, String)>,
}

impl Proxies {
    fn start() -> Self {
        let microsocks = RealProxy::microsocks(false);
        let dante = RealProxy::dante();
        let tinyproxy = RealProxy::tinyproxy(false);
        let squid = RealProxy::squid(false);
        let list = vec![
            (microsocks.url("socks5h", None), microsocks),
            (dante.url("socks5h", None), dante),
            (tinyproxy.url("http", None), tinyproxy),
            (squid.url("http", None), squid),
        ]
        .into_iter()
        .map(|(url, p)| (p, url))
        .collect();
        Self { list }
    }
}

fn injector(ca: &TestCa, proxy: Option<&str>, http1: bool) -> ProxyInjector {
    let settings = match proxy {
        None => ProxySettings::new(false),
        Some(url) => ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url),
                ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", url),
            ])
            .load()
            .expect("settings"),
    };
    let builder = ProxyInjector::builder(settings).tls_roots(ca.roots());
    if http1 { builder.http1_only() } else { builder }.build()
}

/// binance's HTTP client of this project, with the settings `vars` set, trusting `ca`.
fn binance_client<K: Into<String>, V: Into<String>>(
    ca: &TestCa,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Client {
    let settings = ProxySettings::loader()
        .env_vars(vars)
        .load()
        .expect("settings");
    let inj = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .build();
    Client::ours(inj.http_client("binance"))
}

/// A new client of this project with a pool of its own (so its first GET opens a new
/// connection), from `inj`'s route.
fn ours_new(inj: &ProxyInjector) -> Client {
    Client::ours(HttpClient::new(inj.dialer("binance", ConnectionKind::Http)))
}

fn side<'a, F, Fut>(f: F) -> Side<'a>
where
    F: FnMut() -> Fut + 'a,
    Fut: std::future::Future<Output = Figure> + 'a,
{
    let mut f = f;
    Box::new(move || Box::pin(f()))
}

/// The idle-memory row `name`: `idle-streams` run as side `ours` against side `peer`
/// (shown as `peer_name`), `count` streams through the proxy on `proxy` to `wss_port`,
/// at most 3 rounds; with the medians of each side's live heap per stream.
async fn idle_memory(
    (name, ours, peer, peer_name): (&str, &str, &str, &str),
    ca: &TestCa,
    wss_port: u16,
    proxy: u16,
    count: usize,
    rounds: usize,
) -> (harness::Row, f64, f64) {
    let ca_file = std::env::temp_dir().join(format!(
        "proxy-benches-ca-{ours}-{}.pem",
        std::process::id()
    ));
    std::fs::write(&ca_file, ca.ca_pem()).expect("the CA file");
    let heaps = RefCell::new((Vec::new(), Vec::new()));
    let (ca_file_ref, heaps_ref) = (&ca_file, &heaps);
    let row = compare(
        name,
        rounds.min(3),
        side(|| async move {
            let (rss, heap) = memory::per_stream(ours, wss_port, proxy, ca_file_ref, count).await;
            heaps_ref.borrow_mut().0.push(heap);
            rss
        }),
        peer_name,
        side(|| async move {
            let (rss, heap) = memory::per_stream(peer, wss_port, proxy, ca_file_ref, count).await;
            heaps_ref.borrow_mut().1.push(heap);
            rss
        }),
    )
    .await;
    let _ = std::fs::remove_file(&ca_file);
    let (mine, theirs) = heaps.into_inner();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (row, median(mine), median(theirs))
}

fn wanted(filters: &[String], scenario: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| scenario.contains(f.as_str()))
}

async fn run(sizes: &Sizes, filters: &[String]) -> Vec<Row> {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxies = Proxies::start();
    let url = format!("https://127.0.0.1:{}/api/v3/ping", origin.https.port());
    let peer_tls = http::peer_tls(ca.ca_der());
    let mut rows = Vec::new();
    let r = sizes.rounds;

    // Proxies disabled: this project against plain hyper-util (and reqwest).
    let disabled = injector(&ca, None, false);
    let ours = Client::ours(disabled.http_client("binance"));
    let hyper = Client::hyper(&peer_tls);
    let reqwest = Client::reqwest(&peer_tls, None, DECODES);
    let name = "keep-alive GET, sequential, disabled";
    if wanted(filters, name) {
        let mut row = compare(
            name,
            r,
            side(|| http::sequential(&ours, &url, sizes.sequential)),
            "hyper-util + hyper-rustls",
            side(|| http::sequential(&hyper, &url, sizes.sequential)),
        )
        .await;
        if let Some((_, peer)) = &row.peer
            && let (Figure::Rate(o), Figure::Rate(p)) = (row.ours.median, peer.median)
        {
            row.notes
                .push(format!("{:+.1} us per request", (1.0 / o - 1.0 / p) * 1e6));
        }
        rows.push(row);
    }
    let name = format!("{} tasks x {} GETs, disabled", sizes.tasks, sizes.each);
    if wanted(filters, &name) {
        for (peer_name, peer) in [("hyper-util, Nagle off", &hyper), ("reqwest", &reqwest)] {
            rows.push(
                compare(
                    &name,
                    r,
                    side(|| http::concurrent(&ours, &url, sizes.tasks, sizes.each, sizes.batches)),
                    peer_name,
                    side(|| http::concurrent(peer, &url, sizes.tasks, sizes.each, sizes.batches)),
                )
                .await,
            );
        }
    }
    let name = format!(
        "{} tasks x {} GETs, disabled: HTTP/2 against HTTP/1.1",
        sizes.tasks, sizes.each
    );
    if wanted(filters, &name) {
        let h1 = Client::ours(injector(&ca, None, true).http_client("binance"));
        rows.push(
            compare(
                &name,
                r,
                side(|| http::concurrent(&ours, &url, sizes.tasks, sizes.each, sizes.batches)),
                "this project, HTTP/1.1",
                side(|| http::concurrent(&h1, &url, sizes.tasks, sizes.each, sizes.batches)),
            )
            .await,
        );
    }
    let name = "new client + TLS + GET, disabled";
    if wanted(filters, name) {
        rows.push(
            new_connection_row(
                name,
                r,
                sizes,
                &url,
                &|| ours_new(&disabled),
                "hyper-util",
                &|| Client::hyper(&peer_tls),
            )
            .await,
        );
    }

    // Weight budgets: a pool of two loopback source addresses with a budget that never
    // binds (every request is admitted, counted, and corrected from its answer), against
    // the same pool without one.
    let pool = |budget: bool| {
        let mut vars = vec![
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URLS",
                r#"["direct://127.0.0.2", "direct://127.0.0.3"]"#,
            ),
        ];
        if budget {
            vars.extend([
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT",
                    "4000000000",
                ),
                (
                    "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER",
                    "x-mbx-used-weight-1m",
                ),
            ]);
        }
        binance_client(&ca, vars)
    };
    let (budgeted, unbudgeted) = (pool(true), pool(false));
    let name = "keep-alive GET, sequential, pool of 2, budget not binding";
    if wanted(filters, name) {
        rows.push(
            compare(
                name,
                r,
                side(|| http::sequential(&budgeted, &url, sizes.sequential)),
                "this project, no budget",
                side(|| http::sequential(&unbudgeted, &url, sizes.sequential)),
            )
            .await,
        );
    }
    let name = format!(
        "{} tasks x {} GETs, pool of 2, budget not binding",
        sizes.tasks, sizes.each
    );
    if wanted(filters, &name) {
        rows.push(
            compare(
                &name,
                r,
                side(|| http::concurrent(&budgeted, &url, sizes.tasks, sizes.each, sizes.batches)),
                "this project, no budget",
                side(|| {
                    http::concurrent(&unbudgeted, &url, sizes.tasks, sizes.each, sizes.batches)
                }),
            )
            .await,
        );
    }

    // A budget shared through Redis (a real redis-server on loopback) against the same
    // budget kept in the process: one exit, a budget that never binds, and blocks of 125
    // (`processes` 1000 makes the block an eighth of a thousandth of the budget), so a
    // lease is asked for every 125 requests, ahead of need.
    let redis = proxy_tests::redis::RedisServer::start();
    let exit = |shared: bool| {
        let mut vars = vec![
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__WEIGHT".to_owned(),
                "1000000".to_owned(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP_BUDGET__USED_WEIGHT_HEADER".to_owned(),
                "x-mbx-used-weight-1m".to_owned(),
            ),
            ("CRYPTOFEED_PROXY_SYSTEM".to_owned(), "false".to_owned()),
        ];
        if shared {
            vars.extend([
                ("CRYPTOFEED_PROXY_SHARED__URL".to_owned(), redis.url(None)),
                (
                    "CRYPTOFEED_PROXY_SHARED__PROCESSES".to_owned(),
                    "1000".to_owned(),
                ),
            ]);
        }
        binance_client(&ca, vars)
    };
    let (shared, local) = (exit(true), exit(false));
    let name = "keep-alive GET, sequential, budget shared through Redis (a lease per 125)";
    if wanted(filters, name) {
        rows.push(
            compare(
                name,
                r,
                side(|| http::sequential(&shared, &url, sizes.sequential)),
                "this project, budget in the process",
                side(|| http::sequential(&local, &url, sizes.sequential)),
            )
            .await,
        );
    }
    let name = "p99 of a keep-alive GET, budget shared through Redis (a lease per 125)";
    if wanted(filters, name) {
        rows.push(
            compare(
                name,
                r,
                side(|| http::sequential_p99(&shared, &url, sizes.sequential)),
                "this project, budget in the process",
                side(|| http::sequential_p99(&local, &url, sizes.sequential)),
            )
            .await,
        );
    }

    // Through each real proxy: this project against reqwest with the same proxy.
    for (proxy, proxy_url) in &proxies.list {
        let via = injector(&ca, Some(proxy_url), false);
        let ours = Client::ours(via.http_client("binance"));
        // reqwest with the decoders this project has (the same work), and without any.
        let reqwests: Vec<(&str, Client)> = if DECODES {
            vec![
                (
                    "reqwest, gzip + deflate",
                    Client::reqwest(&peer_tls, Some(proxy_url), true),
                ),
                (
                    "reqwest, no decoders",
                    Client::reqwest(&peer_tls, Some(proxy_url), false),
                ),
            ]
        } else {
            vec![(
                "reqwest",
                Client::reqwest(&peer_tls, Some(proxy_url), false),
            )]
        };
        let scheme = proxy_url.split(':').next().unwrap_or_default();
        let label = format!("via {} ({scheme})", proxy.name());
        let name = format!("keep-alive GET, sequential, {label}");
        if wanted(filters, &name) {
            for (peer_name, reqwest) in &reqwests {
                rows.push(
                    compare(
                        &name,
                        r,
                        side(|| http::sequential(&ours, &url, sizes.sequential / 2)),
                        peer_name,
                        side(|| http::sequential(reqwest, &url, sizes.sequential / 2)),
                    )
                    .await,
                );
            }
        }
        let name = format!("{} tasks x {} GETs, {label}", sizes.tasks, sizes.each);
        if wanted(filters, &name) {
            for (peer_name, reqwest) in &reqwests {
                rows.push(
                    compare(
                        &name,
                        r,
                        side(|| {
                            http::concurrent(&ours, &url, sizes.tasks, sizes.each, sizes.batches)
                        }),
                        peer_name,
                        side(|| {
                            http::concurrent(reqwest, &url, sizes.tasks, sizes.each, sizes.batches)
                        }),
                    )
                    .await,
                );
            }
        }
        let name = format!("new connection + GET, {label}");
        if wanted(filters, &name) {
            let peer = || Client::reqwest(&peer_tls, Some(proxy_url), DECODES);
            rows.push(
                new_connection_row(&name, r, sizes, &url, &|| ours_new(&via), "reqwest", &peer)
                    .await,
            );
        }
        // The same over HTTP/1.1, which has none of HTTP/2's unanswered small writes (see
        // the README's Performance section).
        let name = format!("new connection + GET, HTTP/1.1, {label}");
        if wanted(filters, &name) {
            let via = injector(&ca, Some(proxy_url), true);
            let peer = || Client::reqwest_http1(&peer_tls, Some(proxy_url));
            rows.push(
                new_connection_row(
                    &name,
                    r,
                    sizes,
                    &url,
                    &|| ours_new(&via),
                    "reqwest, HTTP/1.1",
                    &peer,
                )
                .await,
            );
        }
    }

    // WSS: pushed messages, direct and through the SOCKS5 proxies.
    let wss_port = origin.wss.port();
    let wss = format!("wss://127.0.0.1:{wss_port}/ws");
    let tls = Arc::new(http::peer_tls_h1(ca.ca_der()));
    let mut ws_routes: Vec<(String, Option<(String, u16)>)> = vec![("disabled".to_owned(), None)];
    for (proxy, proxy_url) in &proxies.list {
        if proxy_url.starts_with("socks5") {
            ws_routes.push((
                format!("via {} (socks5h)", proxy.name()),
                Some((proxy_url.clone(), proxy.port)),
            ));
        }
    }
    for (label, route) in ws_routes {
        let name = format!("WSS, {} pushed messages, {label}", sizes.messages);
        if !wanted(filters, &name) {
            continue;
        }
        let inj = injector(&ca, route.as_ref().map(|(u, _)| u.as_str()), false);
        let socks = route.as_ref().map(|(_, port)| *port);
        let peer_name = if socks.is_some() {
            "tokio-socks + tokio-tungstenite by hand"
        } else {
            "tokio-tungstenite"
        };
        let (inj, wss, tls) = (&inj, &wss, &tls);
        rows.push(
            compare(
                &name,
                r,
                side(|| async move {
                    let (mut s, _) = inj
                        .connect_websocket("binance", wss.as_str())
                        .await
                        .expect("WSS");
                    ws::pushed(&mut s, sizes.messages).await
                }),
                peer_name,
                side(|| async move {
                    let mut s = ws::by_hand(tls, wss_port, socks).await;
                    ws::pushed(&mut s, sizes.messages).await
                }),
            )
            .await,
        );
    }

    // WSS through a resilient session against a plain stream of this project.
    for (label, route) in [
        ("disabled", None),
        ("via microsocks (socks5h)", Some(proxies.list[0].1.clone())),
    ] {
        let name = format!(
            "WSS, {} pushed messages, resilient session, {label}",
            sizes.messages
        );
        if !wanted(filters, &name) {
            continue;
        }
        let inj = injector(&ca, route.as_deref(), false);
        let (inj, wss) = (&inj, &wss);
        rows.push(
            compare(
                &name,
                r,
                side(|| async move {
                    let mut session = inj
                        .websocket_session("binance", wss.as_str())
                        .open()
                        .await
                        .expect("WSS session");
                    ws::pushed_session(&mut session, sizes.messages).await
                }),
                "plain websocket() of this project",
                side(|| async move {
                    let (mut s, _) = inj
                        .connect_websocket("binance", wss.as_str())
                        .await
                        .expect("WSS");
                    ws::pushed(&mut s, sizes.messages).await
                }),
            )
            .await,
        );
    }

    // Failover: a pool member killed under a session, to the first message through the
    // next member.
    let name = "WSS session: proxy killed, to the first message through the next member";
    if wanted(filters, name) {
        rows.push(ws::failover(name, r.max(10), &ca).await);
    }

    // Memory: idle WSS streams through microsocks, each side in a process of its own.
    let microsocks = proxies.list[0].0.port;
    let idle = |sides| idle_memory(sides, &ca, wss_port, microsocks, sizes.idle_streams, r);
    let name = format!(
        "resident memory per idle WSS stream via microsocks ({} streams)",
        sizes.idle_streams
    );
    if wanted(filters, &name) {
        let peer = "tokio-socks + tokio-tungstenite by hand";
        let (mut row, mine, theirs) = idle((&name, "ours", "peer", peer)).await;
        row.notes.push(format!(
            "live heap {}, peer {}",
            Figure::Bytes(mine).show(),
            Figure::Bytes(theirs).show()
        ));
        rows.push(row);
    }
    let name = format!(
        "resident memory per idle WSS stream via microsocks ({} streams), resilient session",
        sizes.idle_streams
    );
    if wanted(filters, &name) {
        let peer = "plain websocket() of this project";
        let (mut row, mine, theirs) = idle((&name, "session", "ours", peer)).await;
        row.notes.push(format!(
            "live heap {}, plain {}: {} more per stream (goal: at most 2 KiB)",
            Figure::Bytes(mine).show(),
            Figure::Bytes(theirs).show(),
            Figure::Bytes(mine - theirs).show()
        ));
        rows.push(row);
    }

    // Settings and clients, against the figures of the original Python implementation.
    rows.extend(micro::rows(r, filters).await);
    rows
}

/// New connections, this project against a peer, with each side's p90 as a note.
async fn new_connection_row(
    name: &str,
    rounds: usize,
    sizes: &Sizes,
    url: &str,
    ours: &dyn Fn() -> Client,
    peer_name: &str,
    peer: &dyn Fn() -> Client,
) -> Row {
    let p90s = RefCell::new((Vec::new(), Vec::new()));
    let n = sizes.new_connections;
    let mut row = compare(
        name,
        rounds,
        side(|| async {
            let (median, p90) = http::new_connections(ours, url, n).await;
            p90s.borrow_mut().0.push(p90);
            median
        }),
        peer_name,
        side(|| async {
            let (median, p90) = http::new_connections(peer, url, n).await;
            p90s.borrow_mut().1.push(p90);
            median
        }),
    )
    .await;
    let (mine, theirs) = p90s.into_inner();
    let worst = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    row.notes.push(format!(
        "p90 {}, peer {}, worst round",
        Figure::Time(worst(&mine)).show(),
        Figure::Time(worst(&theirs)).show()
    ));
    row
}
