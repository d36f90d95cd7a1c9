use proxy_runtime::proxied;

#[proxied(exchange = "binance")]
enum Venue {
    Spot,
    Futures,
}

#[proxied(exchange = "binance")]
union Raw {
    a: u32,
    b: f32,
}

#[proxied(exchange = "binance")]
struct Tuple(Vec<String>);

#[proxied(exchange = "binance")]
struct Unit;

fn main() {}
