use proxy_runtime::proxied;

#[proxied(exchange = "binance")]
struct Binance {
    symbols: Vec<String>,
}

#[proxied]
impl Binance {
    fn new() -> Self {
        Self { symbols: Vec::new() }
    }

    // A pattern must end with `..`: the hidden field is there too.
    fn count(&self) -> usize {
        let Self { symbols } = self;
        symbols.len()
    }
}

fn main() {
    let _ = Binance::new().count();
}
