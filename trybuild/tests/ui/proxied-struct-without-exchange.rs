use proxy_runtime::proxied;

#[proxied]
struct Binance {
    symbols: Vec<String>,
}

#[proxied()]
struct Kraken {
    symbols: Vec<String>,
}

fn main() {}
