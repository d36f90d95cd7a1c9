//! A program that builds a `#[proxied]` client before installing its proxy settings (as
//! a `LazyLock` or a library touching the proxy system early would), then installs them
//! and builds another: the first keeps the environment's routes. The tests run it to see
//! what it is told, once: that the environment had no settings (or what was wrong with
//! them), and that settings were installed after the environment served `binance`.
//!
//! Usage: `late_install_client [held]` (prints each client's routes; logs go to stderr).
//! With `held`, the environment's injector is taken first and serves its first client
//! only after the settings are installed (the order a race between two threads can
//! give).

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
    if std::env::args().nth(1).as_deref() == Some("held") {
        let environment = proxy_runtime::proxy_injector();
        init_proxy_system(installed());
        let client = environment.http_client("okx");
        println!("held: {:?}", client.dialer().route());
        return;
    }
    let early = Binance::new();
    init_proxy_system(installed());
    let late = Binance::new();
    // Installing again says nothing more.
    init_proxy_system(installed());
    println!("early: {early:?}");
    println!("late: {late:?}");
}
