//! A program with `#[proxied]` clients and no proxy setup at all: the settings are loaded
//! lazily from its environment. The tests run it with broken settings and check that every
//! connection fails with the load error, logged once, and never goes direct.
//!
//! Usage: `lazy_env_client PORT` (a local port to try to reach).

use proxy_runtime::proxied;

#[proxied(exchange = "binance")]
#[derive(Debug)]
struct Binance {
    symbols: Vec<String>,
}

#[proxied]
impl Binance {
    fn new() -> Self {
        Self {
            symbols: vec!["BTCUSDT".to_owned()],
        }
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = 0;
    for _ in 0..3 {
        let client = Binance::new();
        println!("{client:?}");
        let url = format!("https://127.0.0.1:{port}/depth");
        match runtime.block_on(client.http().get(&url).send()) {
            Ok(_) => println!("connected"),
            Err(e) => {
                failures += 1;
                println!("error: {e}");
            }
        }
        let ws = format!("wss://127.0.0.1:{port}/ws");
        if let Err(e) = runtime.block_on(client.websocket(&ws)) {
            failures += 1;
            println!("error: {e}");
        }
        assert_eq!(client.symbols.len(), 1);
    }
    println!("failures: {failures}");
    std::process::ExitCode::SUCCESS
}
