//! Routes chosen at run time: clients routed by the target's host (`hosts` per exchange:
//! exact names, IP addresses and `*.suffix` patterns; the default route for the rest),
//! and `#[proxied]` clients whose exchange is an expression or a field. Through real
//! microsocks and tinyproxy servers whose outgoing connections come from addresses of
//! their own, so the origin sees which route each connection took.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::StreamExt;
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{ProxyErrorKind as K, ProxyInjector, ProxySettings, proxied};
use proxy_tests::origin::{Endpoint, Origin, WELCOME};
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;

const DIRECT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn microsocks(last: u8) -> (RealProxy, IpAddr) {
    let out = Ipv4Addr::new(127, 0, 0, last);
    let proxy = RealProxy::microsocks_with(Options {
        outbound: Some(out),
        ..Options::default()
    });
    (proxy, IpAddr::V4(out))
}

fn tinyproxy(last: u8) -> (RealProxy, IpAddr) {
    let out = Ipv4Addr::new(127, 0, 0, last);
    let proxy = RealProxy::tinyproxy_with(Options {
        outbound: Some(out),
        ..Options::default()
    });
    (proxy, IpAddr::V4(out))
}

/// Every test name resolves to loopback, locally (the SOCKS5 route resolves locally, so
/// the proxy is given the address).
fn resolver() -> RecordingResolver {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    RecordingResolver::new(&[
        ("api.binance.test", lo),
        ("data.binance.vision", lo),
        ("a.b.binance.vision", lo),
        ("binance.vision", lo),
        ("stream.binance.vision", lo),
        ("localhost", lo),
    ])
}

/// Where the origin saw the connection of `GET url` come from.
async fn via(client: &proxy_runtime::HttpClient, url: &str, origin: &Endpoint) -> IpAddr {
    let response = client
        .get(url)
        .header("connection", "close")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.unwrap();
    origin.received().pop().unwrap().peer.ip()
}

struct Setup {
    ca: TestCa,
    origin: Origin,
    injector: ProxyInjector,
    binance_out: IpAddr,
    coinbase_out: IpAddr,
    _proxies: (RealProxy, RealProxy),
}

async fn setup() -> Setup {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (socks, binance_out) = microsocks(160);
    let (http, coinbase_out) = tinyproxy(161);
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                socks.url("socks5", None).as_str(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
                socks.url("socks5", None).as_str(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HOSTS",
                r#"["api.binance.test", "*.binance.vision"]"#,
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__COINBASE__HTTP__URL",
                http.url("http", None).as_str(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__COINBASE__WEBSOCKET__URL",
                http.url("http", None).as_str(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__COINBASE__HOSTS",
                r#"["127.0.0.1"]"#,
            ),
        ])
        .load()
        .unwrap();
    let injector = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .resolver(resolver())
        .http1_only()
        .build();
    Setup {
        ca,
        origin,
        injector,
        binance_out,
        coinbase_out,
        _proxies: (socks, http),
    }
}

#[tokio::test]
async fn each_request_takes_the_route_of_the_exchange_that_claims_its_host() {
    let s = setup().await;
    let client = s.injector.http_client_by_host();
    let http = s.origin.http.port();
    // Exact, wildcard at two depths, and the letter case of a URL.
    for host in [
        "api.binance.test",
        "data.binance.vision",
        "a.b.binance.vision",
        "API.Binance.TEST",
    ] {
        let url = format!("http://{host}:{http}/h");
        assert_eq!(
            via(&client, &url, &s.origin.http).await,
            s.binance_out,
            "{host}"
        );
    }
    // An IP address claimed exactly, over TLS too.
    let url = format!("http://127.0.0.1:{http}/h");
    assert_eq!(via(&client, &url, &s.origin.http).await, s.coinbase_out);
    let url = format!("https://127.0.0.1:{}/h", s.origin.https.port());
    assert_eq!(via(&client, &url, &s.origin.https).await, s.coinbase_out);
    // What no exchange claims takes the default route (here: direct); a wildcard does not
    // claim its bare suffix.
    for host in ["localhost", "binance.vision"] {
        let url = format!("http://{host}:{http}/h");
        assert_eq!(via(&client, &url, &s.origin.http).await, DIRECT, "{host}");
    }
    // The exchanges' own clients share the routes.
    let binance = s.injector.http_client("binance");
    let url = format!("http://localhost:{http}/h");
    assert_eq!(via(&binance, &url, &s.origin.http).await, s.binance_out);
    // The error of a request names the exchange whose route it took.
    let err = client
        .get("http://api.binance.test:1/unreachable")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.exchange(), Some("binance"), "{err}");
    drop(s.ca);
}

#[tokio::test]
async fn websockets_take_the_route_of_the_exchange_that_claims_their_host() {
    let s = setup().await;
    let ws = s.origin.ws.port();
    for (host, expected) in [
        ("stream.binance.vision", s.binance_out),
        ("127.0.0.1", s.coinbase_out),
        // Another spelling of the address claimed: compared as `url` writes it.
        ("127.1", s.coinbase_out),
        ("localhost", DIRECT),
    ] {
        let url = format!("ws://{host}:{ws}/ws");
        let (mut stream, _) = s
            .injector
            .connect_websocket_by_host(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            Message::text(WELCOME)
        );
        assert_eq!(
            s.origin.ws.received().pop().unwrap().peer.ip(),
            expected,
            "{host}"
        );
    }
    let err = s
        .injector
        .connect_websocket_by_host("not a url")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::InvalidTarget, "{err}");
}

#[test]
fn two_exchanges_claiming_one_host_is_a_settings_error_naming_both() {
    let err = ProxySettings::loader()
        .env_vars([
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HOSTS",
                r#"["*.example.com"]"#,
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HOSTS",
                r#"["api.kraken.com", "*.EXAMPLE.com."]"#,
            ),
        ])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`*.example.com` is listed in the hosts of both `binance` and `kraken`"),
        "{err}"
    );
    assert!(
        err.contains("CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HOSTS"),
        "names the variable: {err}"
    );
    let yaml = "proxy:\n  exchanges:\n    a:\n      hosts: [x.com]\n    b:\n      hosts:\n        - y.com\n        - X.com\n";
    let err = ProxySettings::loader()
        .yaml_str("hosts.yaml", yaml)
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`x.com` is listed in the hosts of both `a` and `b`"),
        "{err}"
    );
    assert!(err.contains("hosts.yaml"), "{err}");
    // An invalid pattern names its variable, and what was wrong.
    let err = ProxySettings::loader()
        .env_vars([(
            "CRYPTOFEED_PROXY_EXCHANGES__OKX__HOSTS",
            r#"["https://www.okx.com"]"#,
        )])
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CRYPTOFEED_PROXY_EXCHANGES__OKX__HOSTS"),
        "{err}"
    );
    assert!(err.contains("without scheme"), "{err}");
}

/// A generic client that learns its exchange at run time.
#[proxied(exchange_field = venue)]
#[derive(Clone)]
struct Venue {
    venue: String,
}

#[proxied]
impl Venue {
    fn new(venue: &str) -> Self {
        Self {
            venue: venue.to_owned(),
        }
    }

    /// The same client for another venue: `..base` with the exchange's field set anew.
    fn for_venue(&self, venue: &str) -> Self {
        Self {
            venue: venue.to_owned(),
            ..self.clone()
        }
    }
}

const KRAKEN: &str = "kraken";

/// A client whose exchange is a constant expression.
#[proxied(exchange = KRAKEN)]
struct Kraken {}

#[proxied]
impl Kraken {
    fn new() -> Self {
        Self {}
    }
}

#[tokio::test]
async fn clients_built_with_an_expression_or_a_field_take_that_exchange_s_routes() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (socks, kraken_out) = microsocks(162);
    let (http, okx_out) = tinyproxy(163);
    let settings = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__URL",
                socks.url("socks5h", None).as_str(),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__OKX__HTTP__URL",
                http.url("http", None).as_str(),
            ),
        ])
        .load()
        .unwrap();
    let injector = ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .http1_only()
        .build();
    proxy_runtime::init_proxy_system_with(injector);
    let url = format!("https://127.0.0.1:{}/x", origin.https.port());
    let kraken = Kraken::new();
    assert_eq!(kraken.exchange(), "kraken");
    assert_eq!(via(kraken.http(), &url, &origin.https).await, kraken_out);
    let okx = Venue::new("OKX");
    assert_eq!(okx.exchange(), "okx");
    assert_eq!(via(okx.http(), &url, &origin.https).await, okx_out);
    let other = Venue::new("bybit");
    assert_eq!(via(other.http(), &url, &origin.https).await, DIRECT);
    // `..base` with the field set anew takes the new exchange's routes, not the base's.
    let moved = okx.for_venue("kraken");
    assert_eq!(moved.exchange(), "kraken");
    assert_eq!(via(moved.http(), &url, &origin.https).await, kraken_out);
    assert_eq!(okx.exchange(), "okx", "the base is unchanged");
    // An id that is not one: every connection fails, never the default's route.
    let bad = Venue::new("okx-futures");
    let err = bad.http().get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), &K::InvalidExchange, "{err}");
    assert_eq!(origin.https.accepted(), 4);
}
