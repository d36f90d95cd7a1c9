//! A trading process of its own: loads its settings from its environment (the tests set
//! `CRYPTOFEED_PROXY_*`, with `SHARED__URL` naming their Redis), and sends requests of
//! weight 1 through exchange `binance`'s HTTP route as fast as `CONCURRENCY` tasks can,
//! for `SECONDS`; then prints one line of counts: `ok N limited N refused N failed N`
//! (answered 200, answered 429 or 418, refused by the budget, failed otherwise). Logs go to
//! stderr.
//!
//! Usage: `shared_budget_client URL SECONDS CONCURRENCY`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proxy_runtime::{ProxyErrorKind, ProxyInjector, ProxySettings};

#[derive(Default)]
struct Counts {
    ok: AtomicUsize,
    limited: AtomicUsize,
    refused: AtomicUsize,
    failed: AtomicUsize,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(seconds), Some(concurrency)) = (args.next(), args.next(), args.next())
    else {
        eprintln!("usage: shared_budget_client URL SECONDS CONCURRENCY");
        return std::process::ExitCode::from(2);
    };
    let seconds: f64 = seconds.parse().expect("SECONDS");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY");
    let settings = match ProxySettings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("settings: {e}");
            return std::process::ExitCode::from(3);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let counts = Arc::new(Counts::default());
    runtime.block_on(async {
        let injector = ProxyInjector::new(settings);
        let client = injector.http_client("binance");
        let end = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, counts, url) = (client.clone(), counts.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                while tokio::time::Instant::now() < end {
                    let sent = client
                        .get(&url)
                        .timeout(end.saturating_duration_since(tokio::time::Instant::now()))
                        .send()
                        .await;
                    let counter = match sent {
                        Ok(response) if response.status() == 200 => &counts.ok,
                        Ok(response) if matches!(response.status().as_u16(), 418 | 429) => {
                            &counts.limited
                        }
                        Ok(_) => &counts.failed,
                        // Refused: its turn would come after the end of the run.
                        Err(e) if matches!(e.kind(), ProxyErrorKind::RateLimited { .. }) => {
                            counts.refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(e) if matches!(e.kind(), ProxyErrorKind::Timeout(_)) => continue,
                        Err(e) => {
                            eprintln!("request failed: {e}");
                            &counts.failed
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
    });
    println!(
        "ok {} limited {} refused {} failed {}",
        counts.ok.load(Ordering::Relaxed),
        counts.limited.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed)
    );
    std::process::ExitCode::SUCCESS
}
