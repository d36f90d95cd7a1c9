use proxy_runtime::proxied;

#[proxied(exchange = "binance_futures")]
pub struct Client {
    n: u8,
}

mod spot {
    use proxy_runtime::proxied;

    #[proxied(exchange = "binance")]
    pub struct Client {
        n: u8,
    }

    #[proxied]
    impl Client {
        // `super::Client` is another type: its literal is not completed with this
        // client's connectors (that would route it through the wrong exchange).
        pub fn futures() -> super::Client {
            super::Client { n: 2 }
        }
    }
}

fn main() {
    let _ = spot::Client::futures();
}
