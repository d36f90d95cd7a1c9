use proxy_runtime::proxied;

// Three mistakes in one attribute, all reported; the impl block below still compiles.
#[proxied(exchange = "Binance", exchnage = "x", exchange = "kraken")]
struct Binance {
    symbols: Vec<String>,
}

#[proxied]
impl Binance {
    fn new() -> Self {
        Self { symbols: Vec::new() }
    }
}

fn main() {
    let _ = Binance::new();
}
