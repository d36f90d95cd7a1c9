use proxy_runtime::proxied;

// No such field.
#[proxied(exchange_field = venu)]
struct Generic {
    venue: String,
}

// A field that cannot name an exchange.
#[proxied(exchange_field = venue)]
struct Numbered {
    venue: u32,
}

// Both forms at once.
#[proxied(exchange = "binance", exchange_field = venue)]
struct Both {
    venue: String,
}

// Not a field name.
#[proxied(exchange_field = "venue")]
struct Quoted {
    venue: String,
}

fn main() {}
