//! Every shape `#[proxied]` supports compiles, and constructors complete their literals.

use std::fmt::Debug;

use proxy_runtime::{Proxied, ProxyError, ProxySettings, init_proxy_system, proxied};

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
