use proxy_runtime::proxied;

struct Binance {
    symbols: Vec<String>,
}

#[proxied]
impl Binance {
    fn symbols(&self) -> usize {
        self.symbols.len()
    }
}

fn main() {}
