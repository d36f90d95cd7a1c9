use proxy_runtime::proxied;

// The derive runs before `#[proxied]` adds its field: `Default` cannot build it.
#[derive(Default)]
#[proxied(exchange = "binance")]
struct Binance {
    symbols: Vec<String>,
}

fn main() {}
