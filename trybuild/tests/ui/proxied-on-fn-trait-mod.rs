use proxy_runtime::proxied;

#[proxied]
fn connect() {}

#[proxied(exchange = "binance")]
trait Client {}

#[proxied]
mod clients {}

fn main() {}
