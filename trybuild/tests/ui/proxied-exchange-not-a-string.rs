use proxy_runtime::proxied;

#[proxied(exchange = binance)]
struct Binance {
    symbols: Vec<String>,
}

#[proxied(exchange = 42)]
struct Kraken {
    symbols: Vec<String>,
}

fn main() {}
