use proxy_runtime::proxied;

#[proxied(exchnage = "binance")]
struct Binance {
    symbols: Vec<String>,
}

#[proxied(exchange = "kraken", timeout = 5)]
struct Kraken {
    symbols: Vec<String>,
}

fn main() {}
