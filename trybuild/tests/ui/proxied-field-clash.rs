use proxy_runtime::proxied;

#[proxied(exchange = "binance")]
struct Binance {
    __proxied: u8,
}

fn main() {}
