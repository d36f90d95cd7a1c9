//! The system's proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, and
//! their lowercase forms), honoured as reqwest and curl honour them for the routes the
//! settings leave unset, through real tinyproxy and microsocks servers whose outgoing
//! connections come from addresses of their own (so the origin sees which way each
//! connection went). Explicit settings always win; fail closed as for every route.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::StreamExt;
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{ConnectionKind, ProxyErrorKind as K, ProxyInjector, ProxySettings};
use proxy_tests::fake::{FakeProxy, Session, closed_port};
use proxy_tests::origin::{Origin, WELCOME};
use proxy_tests::real::{Options, RealProxy};
use proxy_tests::tls::TestCa;

const DIRECT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn tinyproxy(n: u8) -> (RealProxy, IpAddr) {
    let out = Ipv4Addr::new(127, 0, 0, 130 + n);
    let proxy = RealProxy::tinyproxy_with(Options {
        outbound: Some(out),
        ..Options::default()
    });
    (proxy, IpAddr::V4(out))
}

/// An injector loaded from `vars` alone (as a process with only those variables).
fn injector(vars: &[(&str, &str)], ca: &TestCa) -> ProxyInjector {
    let settings = ProxySettings::loader()
        .env_vars(vars.iter().copied())
        .load()
        .unwrap();
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .http1_only()
        .build()
}

/// Where the origin saw a new connection for `GET url` come from.
async fn via(inj: &ProxyInjector, url: &str, origin: &proxy_tests::origin::Endpoint) -> IpAddr {
    let response = inj
        .http_client("binance")
        .get(url)
        .header("connection", "close")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    response.bytes().await.unwrap();
    origin.received().pop().unwrap().peer.ip()
}

/// A proxy that must never be used: it counts connections and answers none.
async fn decoy() -> FakeProxy {
    FakeProxy::start(|s: Session| s.hang()).await
}

#[tokio::test]
async fn https_proxy_routes_https_and_wss_and_leaves_http_and_ws_direct() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (proxy, out) = tinyproxy(1);
    let url = proxy.url("http", None);
    for name in ["HTTPS_PROXY", "https_proxy"] {
        let inj = injector(&[(name, url.as_str())], &ca);
        let https = format!("https://127.0.0.1:{}/s", origin.https.port());
        assert_eq!(via(&inj, &https, &origin.https).await, out, "{name}");
        let http = format!("http://127.0.0.1:{}/s", origin.http.port());
        assert_eq!(via(&inj, &http, &origin.http).await, DIRECT, "{name}");
        let wss = format!("wss://127.0.0.1:{}/ws", origin.wss.port());
        let (mut ws, _) = inj
            .connect_websocket("binance", wss.as_str())
            .await
            .unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
        assert_eq!(origin.wss.received().pop().unwrap().peer.ip(), out);
        let ws_url = format!("ws://127.0.0.1:{}/ws", origin.ws.port());
        let (mut ws, _) = inj
            .connect_websocket("binance", ws_url.as_str())
            .await
            .unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
        assert_eq!(origin.ws.received().pop().unwrap().peer.ip(), DIRECT);
    }
}

#[tokio::test]
async fn all_proxy_covers_both_schemes_and_the_uppercase_form_comes_first() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks_with(Options {
        outbound: Some(Ipv4Addr::new(127, 0, 0, 140)),
        ..Options::default()
    });
    let out = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 140));
    let dead = format!("http://127.0.0.1:{}", closed_port().await);
    let all = socks.url("socks5h", None);
    let inj = injector(
        &[("ALL_PROXY", all.as_str()), ("all_proxy", dead.as_str())],
        &ca,
    );
    let https = format!("https://127.0.0.1:{}/a", origin.https.port());
    let http = format!("http://127.0.0.1:{}/a", origin.http.port());
    assert_eq!(via(&inj, &https, &origin.https).await, out);
    assert_eq!(via(&inj, &http, &origin.http).await, out);
    // HTTPS_PROXY over ALL_PROXY for https.
    let (proxy, tiny_out) = tinyproxy(2);
    let url = proxy.url("http", None);
    let inj = injector(
        &[("ALL_PROXY", all.as_str()), ("HTTPS_PROXY", url.as_str())],
        &ca,
    );
    assert_eq!(via(&inj, &https, &origin.https).await, tiny_out);
    assert_eq!(via(&inj, &http, &origin.http).await, out);
}

#[tokio::test]
async fn no_proxy_and_explicit_settings_send_direct_and_the_decoy_sees_nothing() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let decoy = decoy().await;
    let proxy = format!("http://{}", decoy.authority());
    let https = format!("https://127.0.0.1:{}/d", origin.https.port());
    let cases: [&[(&str, &str)]; 8] = [
        &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "127.0.0.1")],
        &[
            ("HTTPS_PROXY", &proxy),
            ("no_proxy", "localhost, 127.0.0.0/8"),
        ],
        &[
            ("HTTPS_PROXY", &proxy),
            ("CRYPTOFEED_PROXY_SYSTEM", "false"),
        ],
        &[
            ("HTTPS_PROXY", &proxy),
            ("CRYPTOFEED_PROXY_ENABLED", "false"),
        ],
        &[
            ("HTTPS_PROXY", &proxy),
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "direct://"),
        ],
        // Routes configured but not enabled: what they say (direct://, or a proxy not
        // enabled) is what was meant; the variables do not take over.
        &[
            ("HTTPS_PROXY", &proxy),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "direct://"),
        ],
        &[
            ("HTTPS_PROXY", &proxy),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                "socks5h://127.0.0.1:1",
            ),
        ],
        // Under CGI, HTTP_PROXY may come from a request's `Proxy:` header: ignored.
        &[("HTTP_PROXY", &proxy), ("REQUEST_METHOD", "GET")],
    ];
    for vars in cases {
        let inj = injector(vars, &ca);
        let url = if vars[0].0 == "HTTP_PROXY" {
            format!("http://127.0.0.1:{}/d", origin.http.port())
        } else {
            https.clone()
        };
        let endpoint = if vars[0].0 == "HTTP_PROXY" {
            &origin.http
        } else {
            &origin.https
        };
        assert_eq!(via(&inj, &url, endpoint).await, DIRECT, "{vars:?}");
    }
    assert_eq!(decoy.accepted(), 0, "never through the variables' proxy");
}

#[tokio::test]
async fn a_system_proxy_that_fails_fails_the_connection_never_direct() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let dead = format!("127.0.0.1:{}", closed_port().await); // no scheme: http://
    let inj = injector(&[("HTTPS_PROXY", dead.as_str())], &ca);
    let url = format!("https://127.0.0.1:{}/f", origin.https.port());
    let err = inj
        .http_client("binance")
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::ProxyUnreachable, "{err}");
    assert_eq!(
        err.proxy(),
        Some(format!("http://{dead}").as_str()),
        "{err}"
    );
    assert_eq!(origin.https.accepted(), 0);
    let dialer = inj.dialer("binance", ConnectionKind::Http);
    assert!(
        dialer.route().contains("HTTPS_PROXY=http://"),
        "{}",
        dialer.route()
    );
}

#[tokio::test]
async fn an_invalid_variable_fails_the_load_naming_it() {
    for (name, value) in [
        ("HTTPS_PROXY", "ftp://p:21"),
        ("http_proxy", "http://p"),
        ("ALL_PROXY", "socks5://u:s3cret@p:99999"),
        ("HTTPS_PROXY", "direct://127.0.0.2"),
    ] {
        let err = ProxySettings::loader()
            .env_vars([(name, value)])
            .load()
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("`{name}` (environment)")),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    // Off, or with proxies disabled explicitly, they are not read at all.
    for off in [
        ("CRYPTOFEED_PROXY_SYSTEM", "false"),
        ("CRYPTOFEED_PROXY_ENABLED", "false"),
    ] {
        let settings = ProxySettings::loader()
            .env_vars([("HTTPS_PROXY", "ftp://p:21"), off])
            .load()
            .unwrap();
        assert!(settings.system_proxies().is_none());
    }
}

#[tokio::test]
async fn a_connection_without_a_url_is_routed_as_https_s() {
    let ca = TestCa::new();
    let (proxy, out) = tinyproxy(3);
    let url = proxy.url("http", None);
    let inj = injector(&[("HTTPS_PROXY", url.as_str())], &ca);
    let dialer = inj.dialer("binance", ConnectionKind::Http);
    // A target whose TLS the caller does itself: no scheme says `https`, and it is still
    // not sent direct.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = proxy_runtime::Target::new("127.0.0.1", port).unwrap();
    let (stream, accepted) = tokio::join!(dialer.connect(&target, false), listener.accept());
    stream.unwrap();
    assert_eq!(accepted.unwrap().1.ip(), out);
}
