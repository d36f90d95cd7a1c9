//! What one sequential keep-alive request costs, this project against bare hyper-util
//! (with hyper-rustls, doing the same per-request work; see `keepalive.rs`), over HTTP/1.1
//! and HTTP/2, with proxies disabled and through microsocks (SOCKS5) and tinyproxy
//! (CONNECT):
//!
//! ```sh
//! cargo bench -p proxy-benches --bench cost                    # CPU time and allocations
//! cargo bench -p proxy-benches --bench cost -- --instructions  # and instructions (callgrind)
//! cargo bench -p proxy-benches --bench cost -- h2 disabled     # rows naming every word
//! cargo bench -p proxy-benches --bench cost -- --profile DIR    # callgrind profiles, in DIR
//! ```
//!
//! Each measurement is a process of its own (this program, with `client` as its first
//! argument) that holds the client alone: the origin and the proxies run in this process
//! and in the proxy servers, so nothing they do is counted. The client runs on a
//! current-thread runtime, so that its thread does all of its work (hyper's connection
//! tasks included) and the per-thread figures are the client's whole cost:
//!
//! - CPU time of that thread per request, and wall-clock time, over `N` requests after a
//!   warm-up on the same connection (medians of alternating rounds: evidence on a shared
//!   machine, not a gate);
//! - allocations (count and bytes) per request, counted per thread by `allocation-counter`:
//!   deterministic, whatever the machine is doing;
//! - with `--instructions`, instructions per request, counted by `valgrind --tool=callgrind`
//!   as the difference between a run of 600 and a run of 100 requests (which cancels the
//!   start-up, the handshake and the warm-up): repeatable to a fraction of a percent.

use std::path::Path;
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
    wall_ns: f64,
    allocs: f64,
    bytes: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        client(&args[1..]);
    } else {
        drive(&args);
    }
}

/// `client SIDE VERSION URL CA_FILE WARM N [PROXY]`: `WARM` requests, then `N` measured,
/// one after another; prints `cpu_ns wall_ns allocations bytes` per measured request.
fn client(args: &[String]) {
    let [side, version, url, ca, warm, n, rest @ ..] = args else {
        panic!("client SIDE VERSION URL CA_FILE WARM N [PROXY]");
    };
    let version = Version::parse(version).expect("h1 or h2");
    let pem = std::fs::read(ca).expect("the CA file");
    let proxy = rest.first().map(String::as_str);
    let (warm, n): (usize, usize) = (warm.parse().expect("WARM"), n.parse().expect("N"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let client = match side.as_str() {
        "ours" => KeepAlive::ours(&pem, proxy, version),
        "bare" => runtime.block_on(async { KeepAlive::bare(&pem, proxy, version) }),
        other => panic!("no side {other}"),
    };
    runtime.block_on(async {
        for _ in 0..warm {
            std::hint::black_box(client.get(url).await);
        }
    });
    let mut cost = Cost::default();
    let counted = allocation_counter::measure(|| {
        let cpu = cpu_time::ThreadTime::now();
        let wall = Instant::now();
        runtime.block_on(async {
            for _ in 0..n {
                std::hint::black_box(client.get(url).await);
            }
        });
        cost.cpu_ns = cpu.elapsed().as_nanos() as f64;
        cost.wall_ns = wall.elapsed().as_nanos() as f64;
    });
    let n = n as f64;
    println!(
        "{} {} {} {}",
        cost.cpu_ns / n,
        cost.wall_ns / n,
        counted.count_total as f64 / n,
        counted.bytes_total as f64 / n
    );
}

/// One row: a version and a route.
struct Row {
    version: Version,
    route: &'static str,
    proxy: Option<String>,
}

impl Row {
    fn name(&self) -> String {
        let version = match self.version {
            Version::Http1 => "HTTP/1.1",
            Version::Http2 => "HTTP/2",
        };
        format!("{version}, {}", self.route)
    }

    fn words(&self) -> String {
        format!("{} {}", self.version.name(), self.route)
    }
}

fn drive(args: &[String]) {
    let instructions = args.iter().any(|a| a == "--instructions");
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(5, |r| r.parse().expect("--rounds N"));
    // `--profile DIR`: a callgrind profile of each side per row, in DIR, instead of figures.
    let profile_dir = args
        .iter()
        .position(|a| a == "--profile")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let valued = |a: &String| {
        args.iter().any(|f| {
            (f == "--rounds" || f == "--profile")
                && args.iter().skip_while(|x| *x != f).nth(1) == Some(a)
        })
    };
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--") && !valued(a))
        .map(String::as_str)
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let ca = TestCa::new();
    let origin = runtime.block_on(Origin::start(&ca));
    let ca_file = std::env::temp_dir().join(format!("proxy-cost-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.ca_pem()).expect("the CA file");
    let url = format!("https://127.0.0.1:{}/api/v3/ping", origin.https.port());
    let mut rows = Vec::new();
    for version in [Version::Http1, Version::Http2] {
        for route in ["disabled", "via microsocks", "via tinyproxy"] {
            rows.push(Row {
                version,
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

    let mut table = String::from(
        "| keep-alive GET | CPU per request: ours; bare | difference | wall: ours; bare \
         | allocations: ours; bare | bytes: ours; bare |",
    );
    if instructions {
        table.push_str(" instructions: ours; bare | ratio |");
    }
    table.push('\n');
    table.push_str(&"|---".repeat(if instructions { 8 } else { 6 }));
    table.push_str("|\n");
    for row in &rows {
        if let Some(dir) = &profile_dir {
            std::fs::create_dir_all(dir).expect("the profile directory");
            profile(dir, "ours", row, &url, &ca_file);
            profile(dir, "bare", row, &url, &ca_file);
            continue;
        }
        let run = |side: &str, warm: usize, n: usize| measure(side, row, &url, &ca_file, warm, n);
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        run("ours", 200, 200);
        run("bare", 200, 200);
        for round in 0..rounds {
            if round % 2 == 0 {
                ours.push(run("ours", 200, 2000));
                bare.push(run("bare", 200, 2000));
            } else {
                bare.push(run("bare", 200, 2000));
                ours.push(run("ours", 200, 2000));
            }
        }
        let (o, b) = (median(&ours), median(&bare));
        let mut line = format!(
            "| {} | {:.1} us; {:.1} us | {:+.1} us | {:.1} us; {:.1} us | {:.1}; {:.1} | {:.0}; {:.0} |",
            row.name(),
            o.cpu_ns / 1e3,
            b.cpu_ns / 1e3,
            (o.cpu_ns - b.cpu_ns) / 1e3,
            o.wall_ns / 1e3,
            b.wall_ns / 1e3,
            o.allocs,
            b.allocs,
            o.bytes,
            b.bytes
        );
        if instructions {
            let (oi, bi) = (
                per_request_instructions("ours", row, &url, &ca_file),
                per_request_instructions("bare", row, &url, &ca_file),
            );
            line.push_str(&format!(" {oi:.0}; {bi:.0} | {:.3} |", oi / bi));
        }
        eprintln!("{line}");
        table.push_str(&line);
        table.push('\n');
    }
    println!("{table}");
    let _ = std::fs::remove_file(ca_file);
    drop((origin, proxies));
}

fn client_args(side: &str, row: &Row, url: &str, ca: &Path, warm: usize, n: usize) -> Vec<String> {
    let mut args = vec![
        "client".to_owned(),
        side.to_owned(),
        row.version.name().to_owned(),
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
    }
}

/// Instructions per request: callgrind's total for 600 requests less its total for 100,
/// divided by 500.
fn per_request_instructions(side: &str, row: &Row, url: &str, ca: &Path) -> f64 {
    let total = |n: usize| {
        let exe = std::env::current_exe().expect("this program");
        let out = Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(exe)
            .args(client_args(side, row, url, ca, 50, n))
            .output()
            .expect("valgrind (Debian's valgrind package)");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        text.lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no instruction count in: {text}"))
    };
    (total(600) - total(100)) / 500.0
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
    }
}
