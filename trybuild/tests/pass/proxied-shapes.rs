//! Every shape `#[proxied]` supports compiles, and constructors complete their literals.

use std::fmt::Debug;

use proxy_runtime::{ProxyError, ProxySettings, init_proxy_system, proxied};

/// A documented client with derives below the attribute and other attributes.
#[proxied(exchange = "binance")]
#[derive(Debug, Clone, PartialEq)]
#[allow(dead_code)]
pub struct Binance {
    /// Symbols.
    pub symbols: Vec<String>,
    limit: u16,
}

#[proxied]
impl Binance {
    /// Plain constructor.
    pub fn new(symbols: Vec<String>) -> Self {
        Self { symbols, limit: 100 }
    }

    /// Named by its type, in a block, inside `Ok`.
    pub fn try_new(limit: u16) -> Result<Binance, String> {
        let client = {
            Binance {
                symbols: vec!["BTCUSDT".into()],
                limit,
            }
        };
        Ok(client)
    }

    /// In a closure, `Some` and `Box::new`.
    pub fn boxed() -> Option<Box<Self>> {
        let make = |n: usize| Self {
            symbols: vec![String::new(); n],
            limit: 1,
        };
        Some(Box::new(make(2)))
    }

    /// An async constructor.
    pub async fn connect() -> Result<Self, ProxyError> {
        Ok(Self {
            symbols: Vec::new(),
            limit: 5,
        })
    }

    /// `..base` is left alone: the hidden field comes from `base`.
    pub fn with_limit(&self, limit: u16) -> Self {
        Self { limit, ..self.clone() }
    }

    /// A nested item keeps its own meaning of `Self` and is not rewritten.
    pub fn nested() -> usize {
        struct Local {
            n: usize,
        }
        impl Local {
            fn make() -> Self {
                Self { n: 3 }
            }
        }
        Local::make().n
    }
}

#[proxied]
impl Default for Binance {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// Generics, lifetimes, const generics and where clauses.
#[proxied(exchange = "binance_futures")]
pub(crate) struct Generic<'a, T, const N: usize>
where
    T: Debug + Clone,
{
    items: [T; N],
    label: &'a str,
}

#[proxied]
impl<'a, T, const N: usize> Generic<'a, T, N>
where
    T: Debug + Clone,
{
    fn new(items: [T; N], label: &'a str) -> Self {
        Generic { items, label }
    }
}

fn main() {
    init_proxy_system(ProxySettings::new(false));
    let a = Binance::new(vec!["ETHUSDT".into()]);
    assert_eq!(a.exchange(), "binance");
    assert_eq!(Binance::EXCHANGE, "binance");
    assert!(format!("{a:?}").contains("websocket: \"direct\""));
    assert_eq!(a.with_limit(7).limit, 7);
    assert_eq!(Binance::try_new(3).unwrap().limit, 3);
    assert_eq!(Binance::boxed().unwrap().symbols.len(), 2);
    assert_eq!(Binance::nested(), 3);
    assert_eq!(Binance::default().symbols.len(), 0);
    assert_eq!(a.clone(), a);
    let _ = Binance::connect();
    let g = Generic::new([1u8, 2], "pair");
    assert_eq!(g.exchange(), "binance_futures");
    assert_eq!((g.items.len(), g.label), (2, "pair"));
    let _ = a.http();
    let _ = a.websocket("wss://example.invalid/ws");
    same_names_and_modules();
    run_time_exchanges();
}

/// The exchange of a client chosen at run time: by an expression, or by a field.
mod venues {
    use proxy_runtime::{ExchangeId, proxied};

    pub const VENUE: &str = "kraken";

    pub fn venue_from(prefix: &str) -> String {
        format!("{prefix}_futures")
    }

    #[proxied(exchange = self::VENUE)]
    pub struct ByConst {
        pub n: u8,
    }

    #[proxied]
    impl ByConst {
        pub fn new() -> Self {
            Self { n: 1 }
        }
    }

    // Any `&str` expression, evaluated in each constructor.
    #[proxied(exchange = &venue_from("bybit"))]
    pub struct ByCall {}

    #[proxied]
    impl ByCall {
        pub fn new() -> Self {
            Self {}
        }
    }

    #[proxied(exchange_field = venue)]
    pub struct Generic {
        pub venue: String,
        pub symbols: Vec<String>,
    }

    #[proxied]
    impl Generic {
        pub fn new(venue: &str) -> Self {
            Self {
                venue: venue.to_owned(),
                symbols: Vec::new(),
            }
        }
    }

    // Any `AsRef<str>` field, of a generic struct too.
    #[proxied(exchange_field = id)]
    pub struct Typed<T: Clone> {
        id: ExchangeId,
        pub extra: T,
    }

    #[proxied]
    impl<T: Clone> Typed<T> {
        pub fn new(id: ExchangeId, extra: T) -> Self {
            Typed { id, extra }
        }
    }
}

fn run_time_exchanges() {
    use venues::*;
    assert_eq!(ByConst::new().exchange(), "kraken");
    assert_eq!(ByConst::new().n, 1);
    let okx = Generic::new("OKX");
    assert_eq!(okx.exchange(), "okx", "a valid id, lowercased");
    assert_eq!(okx.venue, "OKX", "the field as it was set");
    let bad = Generic::new("not-an-id");
    assert_eq!(bad.exchange(), "not-an-id");
    assert!(bad.http().dialer().failure().is_some(), "fails every connection");
    let typed = Typed::new("gate".parse().unwrap(), 3u8);
    assert_eq!((typed.exchange(), typed.extra), ("gate", 3));
    assert_eq!(ByCall::new().exchange(), "bybit_futures");
}

/// Two clients with the same name in different modules: each impl completes only its own
/// type's literals, with its own exchange.
mod spot {
    use proxy_runtime::proxied;

    #[proxied(exchange = "binance")]
    pub struct Client {
        pub n: u8,
    }

    #[proxied]
    impl Client {
        pub fn new() -> Self {
            Client { n: 1 }
        }
    }

    pub mod futures {
        use proxy_runtime::proxied;

        #[proxied(exchange = "binance_futures")]
        pub struct Client {
            pub n: u8,
        }

        #[proxied]
        impl Client {
            pub fn new() -> Self {
                Client { n: 2 }
            }

            /// Builds the other `Client` through its own constructor.
            pub fn spot() -> super::Client {
                super::Client::new()
            }
        }
    }
}

/// An impl block in a sibling module, with `Self` in its where clause.
pub(crate) mod fills {
    use proxy_runtime::proxied;

    #[proxied(exchange = "okx")]
    pub(crate) struct Okx {
        pub(crate) depth: usize,
    }
}

mod fills_impl {
    use super::fills::Okx;
    use proxy_runtime::proxied;

    #[proxied]
    impl Okx
    where
        Self: Send,
    {
        pub(crate) fn new(depth: usize) -> Self {
            Okx { depth }
        }
    }
}

pub fn same_names_and_modules() {
    let spot = spot::Client::new();
    let futures = spot::futures::Client::new();
    assert_eq!((spot.exchange(), spot.n), ("binance", 1));
    assert_eq!((futures.exchange(), futures.n), ("binance_futures", 2));
    assert_eq!(spot::futures::Client::spot().exchange(), "binance");
    assert_eq!(fills::Okx::new(5).exchange(), "okx");
    assert_eq!(fills::Okx::new(5).depth, 5);
}
