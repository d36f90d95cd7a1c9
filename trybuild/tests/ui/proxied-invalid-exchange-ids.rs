use proxy_runtime::proxied;

#[proxied(exchange = "")]
struct Empty {}

#[proxied(exchange = "Binance")]
struct UpperCase {}

#[proxied(exchange = "binance-futures")]
struct Dash {}

#[proxied(exchange = "a__b")]
struct DoubleUnderscore {}

#[proxied(exchange = "_binance")]
struct Leading {}

#[proxied(exchange = "binance_")]
struct Trailing {}

#[proxied(exchange = "bin ance")]
struct Space {}

#[proxied(exchange = "bìnance")]
struct NonAscii {}

fn main() {}
