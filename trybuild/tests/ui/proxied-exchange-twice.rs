use proxy_runtime::proxied;

#[proxied(exchange = "binance", exchange = "binance_futures")]
struct Binance {
    symbols: Vec<String>,
}

fn main() {}
