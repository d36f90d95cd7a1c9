//! A market-data process of its own: loads its settings from its environment (the tests
//! set `CRYPTOFEED_PROXY_*`, with a connection budget and `SHARED__URL` naming their
//! Redis), opens `N` connections at once through exchange `binance`'s WebSocket route to
//! `URL`'s host and port, holds them until every one is open, and prints one line:
//! `ok N failed N`. Logs go to stderr.
//!
//! Usage: `shared_connects_client URL N`.

use proxy_runtime::{ConnectionKind, ProxyInjector, ProxySettings};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: shared_connects_client URL N");
        return std::process::ExitCode::from(2);
    };
    let n: usize = n.parse().expect("N");
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
    let (ok, failed) = runtime.block_on(async {
        let injector = ProxyInjector::new(settings);
        let dialer = injector.dialer("binance", ConnectionKind::Websocket);
        let attempts = (0..n).map(|_| {
            let (dialer, url) = (dialer.clone(), url.clone());
            tokio::spawn(async move { dialer.connect_url(&url).await })
        });
        let mut open = Vec::new();
        let mut failed = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.expect("task") {
                Ok(stream) => open.push(stream),
                Err(e) => {
                    eprintln!("connection failed: {e}");
                    failed += 1;
                }
            }
        }
        (open.len(), failed)
    });
    println!("ok {ok} failed {failed}");
    std::process::ExitCode::SUCCESS
}
