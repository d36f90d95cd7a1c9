//! A program that builds a `#[proxied]` client before installing its proxy settings (as
//! a `LazyLock` or a library touching the proxy system early would), then installs them
//! and builds another: the first keeps the environment's routes. The tests run it to see
//! what it is told, once: that the environment had no settings (or what was wrong with
//! them), and that settings were installed after the environment served `binance`.
//!
//! Usage: `late_install_client` (prints each client's routes; logs go to stderr).

use proxy_runtime::{ProxySettings, init_proxy_system, proxied};

#[proxied(exchange = "binance")]
#[derive(Debug)]
struct Binance {}

#[proxied]
impl Binance {
    fn new() -> Self {
        Self {}
    }
}

fn installed() -> ProxySettings {
    ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5h://installed.test:1080",
            ),
        ])
        .load()
        .expect("valid settings")
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let early = Binance::new();
    init_proxy_system(installed());
    let late = Binance::new();
    // Installing again says nothing more.
    init_proxy_system(installed());
    println!("early: {early:?}");
    println!("late: {late:?}");
}
