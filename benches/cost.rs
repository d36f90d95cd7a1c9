//! What one sequential keep-alive request costs, this project against bare hyper-util
//! (with hyper-rustls, doing the same per-request work; see `keepalive.rs`), over HTTP/1.1
//! and HTTP/2, with proxies disabled, through microsocks (SOCKS5) and tinyproxy
//! (CONNECT), and through a round-robin pool of two microsocks (the bare client through
//! the first: hyper-util has no pools of proxies):
//!
//! ```sh
//! cargo bench -p proxy-benches --bench cost                    # CPU time and allocations
//! cargo bench -p proxy-benches --bench cost -- --instructions  # and instructions (callgrind)
//! cargo bench -p proxy-benches --bench cost -- h2 disabled     # rows naming every word
//! cargo bench -p proxy-benches --bench cost -- --profile DIR    # callgrind profiles, in DIR
//! cargo bench -p proxy-benches --bench cost -- serve            # the origin alone, for
//!                                                               # clients run by hand
//! ```
//!
//! Each measurement is a process of its own (this program, with `client` as its first
//! argument) that holds the client alone: the origin and the proxies run in this process
//! and in the proxy servers, so nothing they do is counted. The client runs on a
//! current-thread runtime, so that its thread does all of its work (hyper's connection
//! tasks included) and the per-thread figures are the client's whole cost:
//!
//! - CPU time of that thread per request (and its user-space part, apart from the
//!   kernel's), and wall-clock time, over `N` requests after a
//!   warm-up on the same connection (medians of alternating rounds: evidence on a shared
//!   machine, not a gate);
//! - allocations (count and bytes) per request, counted per thread by `allocation-counter`:
//!   deterministic, whatever the machine is doing;
//! - with `--instructions`, instructions per request, counted by `valgrind --tool=callgrind`
//!   as the difference between a run of 600 and a run of 100 requests (which cancels the
//!   start-up, the handshake and the warm-up): repeatable to a fraction of a percent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use proxy_benches::keepalive::{KeepAlive, Version};
use proxy_tests::origin::Origin;
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

/// What one client process measured, per request.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    cpu_ns: f64,
    /// The user-space part of `cpu_ns` (the rest is the kernel's).
    user_ns: f64,
    wall_ns: f64,
    allocs: f64,
    bytes: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        client(&args[1..]);
    } else if args.first().map(String::as_str) == Some("serve") {
        serve();
    } else {
        drive(&args);
    }
}

/// `serve`: the origin alone, for running clients by hand (under `perf`, say): prints its
/// HTTPS URL, its WSS URL and the CA file, and serves until its input closes.
fn serve() {
    let origin = Served::start();
    println!(
        "{} {} {}",
        origin.https,
        origin.wss,
        origin.ca_file.display()
    );
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

/// The loopback origin on a runtime of its own, its URLs, and its CA in a file for the
/// client processes (removed when dropped).
struct Served {
    https: String,
    wss: String,
    ca_file: PathBuf,
    _origin: Origin,
    _runtime: tokio::runtime::Runtime,
}

impl Served {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let ca = TestCa::new();
        let origin = runtime.block_on(Origin::start(&ca));
        let ca_file =
            std::env::temp_dir().join(format!("proxy-cost-ca-{}.pem", std::process::id()));
        std::fs::write(&ca_file, ca.ca_pem()).expect("the CA file");
        Self {
            https: format!("https://127.0.0.1:{}/api/v3/ping", origin.https.port()),
            wss: format!("wss://127.0.0.1:{}/ws", origin.wss.port()),
            ca_file,
            _origin: origin,
            _runtime: runtime,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// `client SIDE VERSION URL CA_FILE WARM N [PROXY]` (VERSION `h1`, `h2`, or `wss` for the
/// `ws-` sides): `WARM` requests, then `N` measured,
/// one after another; prints `cpu_ns wall_ns allocations bytes` per measured request.
fn client(args: &[String]) {
    let [side, version, url, ca, warm, n, rest @ ..] = args else {
        panic!("client SIDE VERSION URL CA_FILE WARM N [PROXY]");
    };
    let pem = std::fs::read(ca).expect("the CA file");
    let proxy = rest.first().map(String::as_str);
    let (warm, n): (usize, usize) = (warm.parse().expect("WARM"), n.parse().expect("N"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Some(side) = side.strip_prefix("ws-") {
        return websocket(side, &runtime, url, &pem, proxy, warm, n);
    }
    let version = Version::parse(version).expect("h1 or h2");
    if let Some(side) = side.strip_suffix("-concurrent") {
        return concurrent(side, url, &pem, proxy, version, n);
    }
    let client = keepalive(side, &runtime, &pem, proxy, version);
    runtime.block_on(async {
        for _ in 0..warm {
            std::hint::black_box(client.get(url).await);
        }
    });
    let mut cost = Cost::default();
    let counted = measured(&mut cost, || {
        runtime.block_on(async {
            for _ in 0..n {
                std::hint::black_box(client.get(url).await);
            }
        });
    });
    print_cost(&cost, &counted, n);
}

/// The client of `side` (`ours` or `bare`); the bare one is made within `runtime`, as
/// hyper-util's connectors need one.
fn keepalive(
    side: &str,
    runtime: &tokio::runtime::Runtime,
    pem: &[u8],
    proxy: Option<&str>,
    version: Version,
) -> KeepAlive {
    match side {
        "ours" => KeepAlive::ours(pem, proxy, version),
        "bare" => runtime.block_on(async { KeepAlive::bare(pem, proxy, version) }),
        other => panic!("no side {other}"),
    }
}

/// `ours-concurrent` and `bare-concurrent`: 32 tasks on a runtime of two workers, each
/// making `n / 32` requests one after another, five times; prints the requests per
/// second of the last four. For profiling (`perf record -g`) the concurrent rows of the
/// suite, which no per-thread count describes.
fn concurrent(side: &str, url: &str, pem: &[u8], proxy: Option<&str>, version: Version, n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = keepalive(side, &runtime, pem, proxy, version);
    let each = (n / 32).max(1);
    let mut started = Instant::now();
    for round in 0..5 {
        if round == 1 {
            started = Instant::now();
        }
        runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let (client, url) = (client.clone(), url.to_owned());
                    tokio::spawn(async move {
                        for _ in 0..each {
                            std::hint::black_box(client.get(&url).await);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("a task");
            }
        });
    }
    println!(
        "{}",
        (4 * 32 * each) as f64 / started.elapsed().as_secs_f64()
    );
}

/// `ws-ours` and `ws-bare`: one WSS stream to `url` (through `proxy`, a SOCKS5 proxy, if
/// given), `warm` pushed messages read, then `n` measured; prints the same figures per
/// message. The bare side is tokio-tungstenite over tokio-rustls (and tokio-socks) by hand.
fn websocket(
    side: &str,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    pem: &[u8],
    proxy: Option<&str>,
    warm: usize,
    n: usize,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    async fn pushed<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, n: usize)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        ws.send(Message::text(format!("count {n}")))
            .await
            .expect("send");
        let mut got = 0;
        loop {
            match ws.next().await.expect("a message").expect("a message") {
                Message::Text(t) if t.as_str() == "done" => break,
                Message::Text(_) => got += 1,
                _ => {}
            }
        }
        assert_eq!(got, n);
    }

    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the WSS URL's port");
    let socks = proxy.map(|p| {
        p.rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .expect("the proxy's port")
    });
    let mut cost = Cost::default();
    let injector = || {
        let settings = match proxy {
            None => proxy_runtime::ProxySettings::new(false),
            Some(proxy) => proxy_runtime::ProxySettings::loader()
                .env_vars([
                    ("CRYPTOFEED_PROXY_ENABLED", "true"),
                    ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", proxy),
                ])
                .load()
                .expect("settings"),
        };
        let roots = proxy_runtime::TlsRoots::empty()
            .add_pem(pem)
            .expect("the CA");
        proxy_runtime::ProxyInjector::builder(settings)
            .tls_roots(roots)
            .build()
    };
    let counted = match side {
        // A resilient session with the built-in knobs (pings every 10 s, liveness checks).
        "session" => {
            async fn pushed_session(session: &mut proxy_runtime::WebSocketSession, n: usize) {
                session
                    .send(Message::text(format!("count {n}")))
                    .await
                    .expect("send");
                let mut got = 0;
                loop {
                    let item = session.next().await.expect("a message").expect("a message");
                    match item.message {
                        Message::Text(t) if t.as_str() == "done" => break,
                        Message::Text(_) => got += 1,
                        _ => {}
                    }
                }
                assert_eq!(got, n);
            }
            let injector = injector();
            let mut session = runtime.block_on(async {
                let mut session = injector
                    .websocket_session("binance", url)
                    .open()
                    .await
                    .expect("WSS session");
                session.next().await.expect("greeting").expect("greeting");
                pushed_session(&mut session, warm).await;
                session
            });
            measured(&mut cost, || {
                runtime.block_on(pushed_session(&mut session, n))
            })
        }
        "ours" => {
            let injector = injector();
            let mut ws = runtime.block_on(async {
                let (mut ws, _) = injector
                    .connect_websocket("binance", url)
                    .await
                    .expect("WSS");
                ws.next().await.expect("greeting").expect("greeting");
                pushed(&mut ws, warm).await;
                ws
            });
            measured(&mut cost, || runtime.block_on(pushed(&mut ws, n)))
        }
        "bare" => {
            use rustls::pki_types::pem::PemObject;
            let der = rustls::pki_types::CertificateDer::from_pem_slice(pem).expect("a PEM");
            let tls = std::sync::Arc::new(proxy_benches::peer_tls_h1(der));
            let mut ws = runtime.block_on(async {
                let mut ws = proxy_benches::ws_by_hand(&tls, port, socks).await;
                ws.next().await.expect("greeting").expect("greeting");
                pushed(&mut ws, warm).await;
                ws
            });
            measured(&mut cost, || runtime.block_on(pushed(&mut ws, n)))
        }
        other => panic!("no side ws-{other}"),
    };
    print_cost(&cost, &counted, n);
}

/// Runs `f`, counting its allocations, CPU time and wall time into `cost`.
fn measured(cost: &mut Cost, f: impl FnOnce()) -> allocation_counter::AllocationInfo {
    allocation_counter::measure(|| {
        let user = user_time();
        let cpu = cpu_time::ThreadTime::now();
        let wall = Instant::now();
        f();
        cost.cpu_ns = cpu.elapsed().as_nanos() as f64;
        cost.wall_ns = wall.elapsed().as_nanos() as f64;
        cost.user_ns = (user_time() - user) as f64;
    })
}

/// This thread's user-space CPU time so far, in nanoseconds (microsecond resolution).
fn user_time() -> i64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let t = usage.user_time();
    (t.tv_sec() * 1_000_000 + t.tv_usec()) * 1000
}

/// Prints `cost` and `counted` per operation, of `n`.
fn print_cost(cost: &Cost, counted: &allocation_counter::AllocationInfo, n: usize) {
    let n = n as f64;
    println!(
        "{} {} {} {} {}",
        cost.cpu_ns / n,
        cost.wall_ns / n,
        counted.count_total as f64 / n,
        counted.bytes_total as f64 / n,
        cost.user_ns / n
    );
}

/// What a row measures.
#[derive(Clone, Copy)]
enum Kind {
    /// Keep-alive GETs on an HTTP version.
    Get(Version),
    /// Pushed WSS messages.
    Wss,
    /// Pushed WSS messages through a resilient session, against a plain `websocket()`
    /// stream of this project (its "bare" side).
    Session,
}

/// One row: what it measures, and the route.
struct Row {
    kind: Kind,
    route: &'static str,
    proxy: Option<String>,
}

impl Row {
    fn name(&self) -> String {
        let what = match self.kind {
            Kind::Wss => "WSS message",
            Kind::Session => "WSS message, resilient session against plain websocket()",
            Kind::Get(Version::Http1) => "HTTP/1.1 GET",
            Kind::Get(Version::Http2) => "HTTP/2 GET",
        };
        format!("{what}, {}", self.route)
    }

    /// The words the filters of the command line match.
    fn words(&self) -> String {
        match self.kind {
            Kind::Session => format!("session {}", self.route),
            _ => format!("{} {}", self.version_or_wss(), self.route),
        }
    }

    /// `h1`, `h2`, or `wss`: the row's kind as the filters and the client processes'
    /// arguments spell it.
    fn version_or_wss(&self) -> &'static str {
        match self.kind {
            Kind::Get(version) => version.name(),
            Kind::Wss | Kind::Session => "wss",
        }
    }

    /// The client process's name for `side`.
    fn side(&self, side: &str) -> String {
        match self.kind {
            Kind::Get(_) => side.to_owned(),
            Kind::Wss => format!("ws-{side}"),
            Kind::Session if side == "ours" => "ws-session".to_owned(),
            Kind::Session => "ws-ours".to_owned(),
        }
    }

    /// Warm-up and measured operations of a round: requests, or messages.
    fn sizes(&self) -> (usize, usize) {
        match self.kind {
            Kind::Get(_) => (200, 2000),
            Kind::Wss | Kind::Session => (2000, 20_000),
        }
    }

    /// The two counts whose instruction totals are subtracted, and the warm-up of each.
    fn instruction_sizes(&self) -> (usize, usize, usize) {
        match self.kind {
            Kind::Get(_) => (50, 100, 600),
            Kind::Wss | Kind::Session => (500, 2000, 12_000),
        }
    }
}

fn drive(args: &[String]) {
    let (mut instructions, mut rounds, mut profile_dir) = (false, 5, None);
    let mut filters = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--instructions" => instructions = true,
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .expect("--rounds N");
            }
            // A callgrind profile of each side per row, in DIR, instead of figures.
            "--profile" => profile_dir = Some(PathBuf::from(args.next().expect("--profile DIR"))),
            // `cargo bench` passes `--bench`.
            flag if flag.starts_with("--") => {}
            filter => filters.push(filter),
        }
    }
    let served = Served::start();
    let (https, wss, ca_file) = (&served.https, &served.wss, &served.ca_file);
    let mut rows = Vec::new();
    for kind in [Kind::Get(Version::Http1), Kind::Get(Version::Http2)] {
        for route in [
            "disabled",
            "via microsocks",
            "via tinyproxy",
            "via a pool of two microsocks",
        ] {
            rows.push(Row {
                kind,
                route,
                proxy: None,
            });
        }
    }
    for kind in [Kind::Wss, Kind::Session] {
        for route in ["disabled", "via microsocks"] {
            rows.push(Row {
                kind,
                route,
                proxy: None,
            });
        }
    }
    rows.retain(|row| filters.iter().all(|f| row.words().contains(f)));
    // The proxies the rows kept need, started once.
    let mut proxies = Vec::new();
    for (route, start, scheme) in [
        (
            "via microsocks",
            RealProxy::microsocks as fn(bool) -> RealProxy,
            "socks5h",
        ),
        ("via tinyproxy", RealProxy::tinyproxy, "http"),
    ] {
        if rows.iter().any(|r| r.route == route) {
            let proxy = start(false);
            let url = proxy.url(scheme, None);
            for row in rows.iter_mut().filter(|r| r.route == route) {
                row.proxy = Some(url.clone());
            }
            proxies.push(proxy);
        }
    }
    // Ours through a round-robin pool (each request records which connection it is
    // handed); the bare client through its first member.
    let pool = "via a pool of two microsocks";
    if rows.iter().any(|r| r.route == pool) {
        let members = [RealProxy::microsocks(false), RealProxy::microsocks(false)];
        let urls: Vec<String> = members.iter().map(|p| p.url("socks5h", None)).collect();
        let list = serde_json::to_string(&urls).expect("a JSON list");
        for row in rows.iter_mut().filter(|r| r.route == pool) {
            row.proxy = Some(list.clone());
        }
        proxies.extend(members);
    }

    let mut table = String::from(
        "| per request (per message for WSS) | CPU: ours; bare | difference | user-space CPU: \
         ours; bare | difference | wall: ours; bare | allocations: ours; bare | bytes: ours; bare |",
    );
    if instructions {
        table.push_str(" instructions: ours; bare | ratio |");
    }
    table.push('\n');
    table.push_str(&"|---".repeat(if instructions { 10 } else { 8 }));
    table.push_str("|\n");
    for row in &rows {
        let url = match row.kind {
            Kind::Get(_) => https,
            Kind::Wss | Kind::Session => wss,
        };
        if let Some(dir) = &profile_dir {
            std::fs::create_dir_all(dir).expect("the profile directory");
            profile(dir, "ours", row, url, ca_file);
            profile(dir, "bare", row, url, ca_file);
            continue;
        }
        let (warm, n) = row.sizes();
        let run = |side: &str, n: usize| measure(side, row, url, ca_file, warm, n);
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        run("ours", warm);
        run("bare", warm);
        for round in 0..rounds {
            if round % 2 == 0 {
                ours.push(run("ours", n));
                bare.push(run("bare", n));
            } else {
                bare.push(run("bare", n));
                ours.push(run("ours", n));
            }
        }
        let (o, b) = (median(&ours), median(&bare));
        let mut line = format!(
            "| {} | {:.1} us; {:.1} us | {:+.1} us | {:.1} us; {:.1} us | {:+.1} us | {:.1} us; {:.1} us | {:.1}; {:.1} | {:.0}; {:.0} |",
            row.name(),
            o.cpu_ns / 1e3,
            b.cpu_ns / 1e3,
            (o.cpu_ns - b.cpu_ns) / 1e3,
            o.user_ns / 1e3,
            b.user_ns / 1e3,
            (o.user_ns - b.user_ns) / 1e3,
            o.wall_ns / 1e3,
            b.wall_ns / 1e3,
            o.allocs,
            b.allocs,
            o.bytes,
            b.bytes
        );
        if instructions {
            let (oi, bi) = (
                per_request_instructions("ours", row, url, ca_file),
                per_request_instructions("bare", row, url, ca_file),
            );
            line.push_str(&format!(" {oi:.0}; {bi:.0} | {:.3} |", oi / bi));
        }
        eprintln!("{line}");
        table.push_str(&line);
        table.push('\n');
    }
    println!("{table}");
    drop((proxies, served));
}

fn client_args(side: &str, row: &Row, url: &str, ca: &Path, warm: usize, n: usize) -> Vec<String> {
    let mut args = vec![
        "client".to_owned(),
        row.side(side),
        row.version_or_wss().to_owned(),
        url.to_owned(),
        ca.display().to_string(),
        warm.to_string(),
        n.to_string(),
    ];
    args.extend(row.proxy.clone());
    args
}

/// One client process.
fn measure(side: &str, row: &Row, url: &str, ca: &Path, warm: usize, n: usize) -> Cost {
    let exe = std::env::current_exe().expect("this program");
    let out = Command::new(exe)
        .args(client_args(side, row, url, ca, warm, n))
        .output()
        .expect("a client process");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a figure"))
        .collect();
    Cost {
        cpu_ns: f[0],
        wall_ns: f[1],
        allocs: f[2],
        bytes: f[3],
        user_ns: f[4],
    }
}

/// Instructions per request (or message): callgrind's total for 600 requests less its
/// total for 100, divided by 500 (for WSS: 12,000 and 2,000 messages).
fn per_request_instructions(side: &str, row: &Row, url: &str, ca: &Path) -> f64 {
    let (warm, few, many) = row.instruction_sizes();
    let total = |n: usize| {
        let exe = std::env::current_exe().expect("this program");
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(exe)
            .args(client_args(side, row, url, ca, warm, n))
            .output()
            .expect("valgrind (Debian's valgrind package)");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        text.lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no instruction count in: {text}"))
    };
    (total(many) - total(few)) / (many - few) as f64
}

/// A callgrind profile of 2,000 requests of `side` on `row`, written to `dir`.
fn profile(dir: &Path, side: &str, row: &Row, url: &str, ca: &Path) {
    let exe = std::env::current_exe().expect("this program");
    let file = dir.join(format!(
        "{side}-{}.callgrind",
        row.words().replace(' ', "-")
    ));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .args(client_args(side, row, url, ca, 50, 2000))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("valgrind (Debian's valgrind package)");
    assert!(status.success());
    eprintln!("profile: {}", file.display());
}

fn median(costs: &[Cost]) -> Cost {
    let pick = |f: fn(&Cost) -> f64| {
        let mut v: Vec<f64> = costs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Cost {
        cpu_ns: pick(|c| c.cpu_ns),
        wall_ns: pick(|c| c.wall_ns),
        allocs: pick(|c| c.allocs),
        bytes: pick(|c| c.bytes),
        user_ns: pick(|c| c.user_ns),
    }
}
