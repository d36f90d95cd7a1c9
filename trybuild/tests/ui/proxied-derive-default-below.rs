use proxy_runtime::proxied;

// Connectors have no default: they come from the settings in force. Write
// `#[proxied] impl Default for Binance` instead.
#[proxied(exchange = "binance")]
#[derive(Default)]
struct Binance {
    symbols: Vec<String>,
}

fn main() {}
