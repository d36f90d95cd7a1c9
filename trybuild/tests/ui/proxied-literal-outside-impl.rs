use proxy_runtime::proxied;

#[proxied(exchange = "binance")]
pub struct Binance {
    pub symbols: Vec<String>,
}

// Not in a `#[proxied]` impl block: the literal lacks the hidden field.
fn build() -> Binance {
    Binance { symbols: Vec::new() }
}

fn main() {
    let _ = build();
}
