use proxy_runtime::proxied;

const LIMIT: u32 = 5;

// An expression names the exchange: it must be a `&str`.
#[proxied(exchange = LIMIT)]
struct Binance {
    symbols: Vec<String>,
}

#[proxied(exchange = String::from("kraken"))]
struct Kraken {
    symbols: Vec<String>,
}

// It cannot read the struct's fields: that is `exchange_field`'s job.
#[proxied(exchange = self.venue.as_str())]
struct Generic {
    venue: String,
}

// Nor inside a call.
#[proxied(exchange = str::trim(&self.venue))]
struct Trimmed {
    venue: String,
}

fn main() {}
