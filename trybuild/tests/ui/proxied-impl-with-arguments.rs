use proxy_runtime::proxied;

#[proxied(exchange = "binance")]
struct Binance {
    symbols: Vec<String>,
}

#[proxied(exchange = "binance")]
impl Binance {
    fn new() -> Self {
        Self { symbols: Vec::new() }
    }
}

fn main() {
    let _ = Binance::new();
}
