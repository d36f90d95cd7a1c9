use proxy_runtime::proxied;

mod futures {
    use proxy_runtime::proxied;

    #[proxied(exchange = "binance_futures")]
    pub struct Binance {
        pub x: u8,
    }
}

#[proxied(exchange = "binance")]
pub struct Binance {
    x: u8,
}

#[proxied]
impl Binance {
    pub fn new() -> Self {
        Self { x: 0 }
    }

    // A same-named type brought in with `use` is completed with *this* client's
    // connectors, whose type names this client: it does not compile, so the futures
    // client can never travel spot's routes.
    pub fn futures() -> futures::Binance {
        use futures::Binance;
        Binance { x: 1 }
    }
}

fn main() {
    let _ = Binance::new();
    let _ = Binance::futures();
}
