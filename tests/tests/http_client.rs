//! The HTTP client as exchange clients use it, direct and through each real proxy server
//! (microsocks, dante, tinyproxy, squid): requests built with reqwest's shapes arrive
//! byte for byte, responses are read with their headers, bodies are decompressed and
//! bounded, HTTP/2 is negotiated through every proxy kind and multiplexed, and deadlines
//! name the phase they ran out in.

use std::time::Duration;

use proxy_runtime::http::{HeaderMap, Method, StatusCode, Version};
use proxy_runtime::{
    HttpClient, Phase, ProxyError, ProxyErrorKind as K, ProxyInjector, ProxyInjectorBuilder,
    ProxySettings,
};
use proxy_tests::GENEROUS;
use proxy_tests::origin::{ENCODED_BODY, Origin, body_for};
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

use proxy_tests::injector_built as injector;

#[tokio::test]
async fn http2_inside_an_https_proxy_never_http2_to_the_proxy() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // An HTTPS CONNECT proxy that would speak h2 if offered it: ALPN to the proxy must
    // offer only http/1.1, and h2 is then negotiated with the target inside the tunnel.
    let (proxy, proxy_alpn) =
        proxy_tests::fake::https_connect_proxy(ca.acceptor_h2(), origin.https.addr).await;
    let url = format!("https://localhost:{}", proxy.addr.port());
    let inj = injector(Some(&url), &ca, |b| b);
    let response = inj
        .http_client("deribit")
        .get(format!(
            "https://127.0.0.1:{}/tls-in-tls",
            origin.https.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(*proxy_alpn.lock().unwrap(), [Some(b"http/1.1".to_vec())]);
}

#[tokio::test]
async fn the_connector_serves_a_hyper_util_client_of_ones_own() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks(false);
    let inj = injector(Some(&socks.url("socks5h", None)), &ca, |b| b);
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(inj.connector("binance"));
    let url = format!("https://127.0.0.1:{}/own-client", origin.https.port());
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, body_for("/own-client"));

    // The same client, its connector switched to HTTP/1.1: TLS offers `http/1.1` alone.
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(inj.connector("binance").http1_only());
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(origin.https.received()[1].version, Version::HTTP_11);

    // Fail closed under that client too: a dead proxy is the connector's typed error.
    let dead = format!(
        "socks5h://127.0.0.1:{}",
        proxy_tests::fake::closed_port().await
    );
    let inj = injector(Some(&dead), &ca, |b| b);
    let client: Client<_, Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(inj.connector("binance"));
    let err = client.get(url.parse().unwrap()).await.unwrap_err();
    let ours = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<ProxyError>())
        .expect("the connector's error");
    assert_eq!(ours.kind(), &K::ProxyUnreachable);
    assert_eq!(origin.https.accepted(), 2, "never direct");
}

/// What every route must do, checked against `origin` through `client`.
async fn exercise(client: &HttpClient, origin: &Origin) {
    let base = format!("https://127.0.0.1:{}", origin.https.port());

    // A signed-order shape: POST, a JSON body, query and a custom header, byte for byte.
    let order = serde_json::json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"});
    let response = client
        .post(format!("{base}/api/v3/order"))
        .query(&[("timestamp", "1700000000000"), ("signature", "abc123")])
        .header("X-MBX-APIKEY", "key-for-test")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2, "ALPN chose h2");
    let sent = origin.https.received().pop().unwrap();
    assert_eq!(sent.method, Method::POST);
    assert_eq!(
        sent.target,
        "/api/v3/order?timestamp=1700000000000&signature=abc123"
    );
    assert_eq!(sent.version, Version::HTTP_2);
    assert_eq!(sent.headers["x-mbx-apikey"], "key-for-test");
    assert_eq!(sent.headers["content-type"], "application/json");
    assert_eq!(sent.body, serde_json::to_vec(&order).unwrap());
    assert_eq!(
        response.text().await.unwrap(),
        body_for("/api/v3/order"),
        "the body of an HTTP/2 response"
    );

    // Response headers are read.
    let response = client.get(format!("{base}/headers")).send().await.unwrap();
    assert_eq!(response.headers()["x-mbx-used-weight-1m"], "7");
    assert_eq!(
        response.content_length(),
        Some(body_for("/headers").len() as u64)
    );

    // Every codec decodes, with Content-Encoding and Content-Length dropped.
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let response = client
            .get(format!("{base}/encoded/{coding}"))
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().get("content-encoding").is_none(),
            "{coding}"
        );
        assert!(
            response.headers().get("content-length").is_none(),
            "{coding}"
        );
        assert_eq!(response.bytes().await.unwrap(), ENCODED_BODY, "{coding}");
        let asked = origin.https.received().pop().unwrap();
        assert_eq!(
            asked.headers["accept-encoding"], "zstd,gzip,deflate,br",
            "every codec of the build is offered"
        );
    }
}

/// The body limit stops an endless body and a gzip bomb, with a typed error.
async fn bounded(origin: &Origin, ca: &TestCa, proxy: Option<&str>) {
    let inj = injector(proxy, ca, |b| b.max_body_bytes(1024 * 1024));
    let client = inj.http_client("binance");
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    for path in ["/endless", "/bomb/64"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        let err = tokio::time::timeout(GENEROUS, response.bytes())
            .await
            .expect("stopped at the bound, not at the end")
            .unwrap_err();
        assert_eq!(
            err.kind(),
            &K::BodyTooLarge { limit: 1024 * 1024 },
            "{path}: {err}"
        );
        assert!(
            err.to_string().contains("larger than 1048576 bytes"),
            "{err}"
        );
    }
}

async fn all_of_it(proxy: Option<&str>) {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(proxy, &ca, |b| b);
    exercise(&inj.http_client("binance"), &origin).await;
    bounded(&origin, &ca, proxy).await;
}

#[tokio::test]
async fn direct() {
    all_of_it(None).await;
}

#[tokio::test]
async fn through_microsocks() {
    let proxy = RealProxy::microsocks(false);
    all_of_it(Some(&proxy.url("socks5h", None))).await;
}

#[tokio::test]
async fn through_dante() {
    let proxy = RealProxy::dante();
    all_of_it(Some(&proxy.url("socks5", None))).await;
}

#[tokio::test]
async fn through_tinyproxy() {
    let proxy = RealProxy::tinyproxy(false);
    all_of_it(Some(&proxy.url("http", None))).await;
}

#[tokio::test]
async fn through_squid() {
    let proxy = RealProxy::squid(false);
    all_of_it(Some(&proxy.url("http", None))).await;
}

#[tokio::test]
async fn a_hundred_concurrent_requests_share_one_http2_connection() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let proxy = RealProxy::microsocks(false);
    let inj = injector(Some(&proxy.url("socks5h", None)), &ca, |b| b);
    let client = inj.http_client("binance");
    let url = format!("https://127.0.0.1:{}/multiplexed", origin.https.port());
    // The first request opens the connection; once it is known to be HTTP/2, every
    // request shares it (a cold pool may race several connects, as hyper-util's does).
    client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.version(), Version::HTTP_2);
            response.bytes().await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), body_for("/multiplexed"));
    }
    assert_eq!(
        origin.https.accepted(),
        1,
        "one connection for 101 requests"
    );
    assert_eq!(origin.https.received().len(), 101);
}

#[tokio::test]
async fn http1_only_keeps_https_on_http1() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, ProxyInjectorBuilder::http1_only);
    let response = inj
        .http_client("okx")
        .get(format!("https://127.0.0.1:{}/h1", origin.https.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(origin.https.received()[0].version, Version::HTTP_11);
}

#[tokio::test]
async fn request_deadlines_name_the_phase() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, |b| b.request_timeout(Duration::from_millis(300)));
    let client = inj.http_client("bybit");
    let base = format!("https://127.0.0.1:{}", origin.https.port());

    // The client default: the head never comes.
    let err = client
        .get(format!("{base}/stall-head"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.timeout_phase(), Some(Phase::ResponseHead), "{err}");
    assert!(
        err.to_string()
            .contains("bybit: timed out during request and response head"),
        "{err}"
    );

    // The head comes, the body stalls after a first chunk.
    let mut response = client
        .get(format!("{base}/stall-body"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.chunk().await.unwrap().unwrap(), "first chunk");
    let err = response.chunk().await.unwrap_err();
    assert_eq!(err.timeout_phase(), Some(Phase::ResponseBody), "{err}");

    // A request's own deadline replaces the default, on a pooled connection too.
    let started = std::time::Instant::now();
    let err = client
        .get(format!("{base}/stall-head"))
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.timeout_phase(), Some(Phase::ResponseHead));
    assert!(started.elapsed() < GENEROUS);

    // On a new connection through a proxy that never answers, the phase is the proxy's.
    let silent = proxy_tests::fake::FakeProxy::start(|s| s.hang()).await;
    let url = format!("socks5h://{}", silent.authority());
    let inj = injector(Some(&url), &ca, |b| {
        b.request_timeout(Duration::from_millis(300))
    });
    let err = inj
        .http_client("bybit")
        .get(format!("{base}/never"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.timeout_phase(), Some(Phase::ProxyHandshake), "{err}");
}

#[tokio::test]
async fn a_fragment_never_swallows_the_query_and_is_never_sent() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let client = injector(None, &ca, |b| b).http_client("bybit");
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    for (url, sent) in [
        (
            format!("{base}/api/v3/order#part"),
            "/api/v3/order?signature=abc123",
        ),
        (
            format!("{base}/api/v3/order?a=1#part?b=2"),
            "/api/v3/order?a=1&signature=abc123",
        ),
        (
            format!("{base}/api/v3/order#"),
            "/api/v3/order?signature=abc123",
        ),
    ] {
        let response = client
            .post(&url)
            .query(&[("signature", "abc123")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(origin.https.received().pop().unwrap().target, sent, "{url}");
    }
}

#[tokio::test]
async fn a_deadline_too_far_to_be_an_instant_is_none() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let url = format!("https://127.0.0.1:{}/far", origin.https.port());
    // The client's default, and a request's own: `Instant + Duration::MAX` overflows.
    let inj = injector(None, &ca, |b| b.request_timeout(Duration::MAX));
    let body = inj.http_client("bybit").get(&url).send().await.unwrap();
    assert_eq!(body.text().await.unwrap(), body_for("/far"));
    let inj = injector(None, &ca, |b| b);
    let response = inj
        .http_client("bybit")
        .get(&url)
        .timeout(Duration::MAX)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), body_for("/far"));
}

#[tokio::test]
async fn responses_read_as_text_json_chunks_and_error_statuses() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, |b| b);
    let client = inj.http_client("kraken");
    let base = format!("http://127.0.0.1:{}", origin.http.port());

    let json: serde_json::Value = client
        .get(format!("{base}/encoded/gzip"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["symbol"], "BTCUSDT");
    let err = client
        .get(format!("{base}/plain"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::Decode, "{err}");

    let mut response = client.get(format!("{base}/chunks")).send().await.unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        all.extend_from_slice(&chunk);
    }
    assert_eq!(all, body_for("/chunks").as_bytes());

    // 2xx and 3xx pass; 4xx and 5xx are typed errors with the start of the body.
    let ok = client
        .get(format!("{base}/status/204"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.error_for_status_ref().unwrap().status(), 204);
    assert_eq!(ok.error_for_status().unwrap().status(), 204);
    let err = client
        .get(format!("{base}/status/451"))
        .bearer_auth("T0pSecret")
        .send()
        .await
        .unwrap()
        .error_for_status_with_body()
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS)
    );
    assert_eq!(err.exchange(), Some("kraken"));
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("451 Unavailable For Legal Reasons"),
        "{shown}"
    );
    assert!(
        shown.contains("status 451 from the origin"),
        "the body's start: {shown}"
    );
    assert!(
        shown.contains(&format!("127.0.0.1:{}", origin.http.port())),
        "{shown}"
    );
    assert!(!shown.contains("T0pSecret"), "never a header: {shown}");
    let sent = origin.http.received().pop().unwrap();
    assert_eq!(sent.headers["authorization"], "Bearer T0pSecret");
}

#[tokio::test]
async fn auth_forms_and_text_charsets() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, |b| b);
    let client = inj.http_client("okx");
    let base = format!("http://127.0.0.1:{}", origin.http.port());
    #[derive(serde::Serialize)]
    struct Form<'a> {
        symbol: &'a str,
        qty: f64,
    }
    let mut extra = HeaderMap::new();
    extra.insert("x-one", "1".parse().unwrap());
    extra.append("x-two", "a".parse().unwrap());
    extra.append("x-two", "b".parse().unwrap());
    client
        .put(format!("{base}/form"))
        .basic_auth("trader", Some("p@ss"))
        .header("x-two", "replaced")
        .headers(extra)
        .form(&Form {
            symbol: "BTC-USDT",
            qty: 0.5,
        })
        .version(Version::HTTP_11)
        .send()
        .await
        .unwrap();
    let sent = origin.http.received().pop().unwrap();
    assert_eq!(sent.method, Method::PUT);
    assert_eq!(sent.body, "symbol=BTC-USDT&qty=0.5");
    assert_eq!(
        sent.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(sent.headers["authorization"], "Basic dHJhZGVyOnBAc3M=");
    assert_eq!(sent.headers["x-one"], "1");
    let twos: Vec<_> = sent.headers.get_all("x-two").iter().collect();
    assert_eq!(twos, ["a", "b"], "headers() replaces the values of a name");

    for method in ["PATCH", "DELETE", "HEAD"] {
        let method: Method = method.parse().unwrap();
        let response = client
            .request(method.clone(), format!("{base}/m"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(origin.http.received().pop().unwrap().method, method);
    }
    assert_eq!(
        client
            .delete(format!("{base}/d"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .patch(format!("{base}/p"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        client
            .head(format!("{base}/h"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .is_empty()
    );

    // text() decodes by the charset of Content-Type; UTF-8 without one.
    let latin1 = client.get(format!("{base}/latin1")).send().await.unwrap();
    assert_eq!(latin1.text().await.unwrap(), "café crème");
    let plain = client.get(format!("{base}/utf8")).send().await.unwrap();
    assert_eq!(
        plain.text().await.unwrap(),
        "café crème",
        "UTF-8 by default"
    );
    // A path is sent as the URL standard writes it: percent-encoded.
    let encoded = client.get(format!("{base}/é")).send().await.unwrap();
    assert_eq!(
        encoded.text().await.unwrap(),
        body_for("/%C3%A9"),
        "percent-encoded by url::Url"
    );
}

#[tokio::test]
async fn bad_requests_are_typed_errors_from_send() {
    let ca = TestCa::new();
    let inj = injector(None, &ca, |b| b);
    let client = inj.http_client("binance");
    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    let cases: Vec<(proxy_runtime::RequestBuilder, K)> = vec![
        (
            client.get("https://h.test/").header("bad name", "v"),
            K::InvalidRequest,
        ),
        (
            client.get("https://h.test/").header("x", "bad\nvalue"),
            K::InvalidRequest,
        ),
        (
            client.get("https://h.test/").json(&Unserializable),
            K::InvalidRequest,
        ),
        (
            client.get("https://h.test/").form(&Unserializable),
            K::InvalidRequest,
        ),
        (
            client.get("https://h.test/").query(&Unserializable),
            K::InvalidRequest,
        ),
        (client.get("ftp://h.test/"), K::InvalidTarget),
        (client.get("not a url"), K::InvalidTarget),
        (client.get("https://u:p@h.test/"), K::InvalidTarget),
        (client.get("https://h.test:99999/"), K::InvalidTarget),
    ];
    for (request, kind) in cases {
        let shown = format!("{request:?}");
        let err: ProxyError = request.send().await.unwrap_err();
        assert_eq!(err.kind(), &kind, "{shown}: {err}");
        assert_eq!(err.exchange(), Some("binance"));
    }
}

#[tokio::test]
async fn head_and_no_content_with_an_encoding_have_empty_bodies() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, |b| b);
    let client = inj.http_client("okx");
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    let response = client
        .head(format!("{base}/encoded/gzip"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-encoding"],
        "gzip",
        "kept: it describes the GET"
    );
    assert!(response.bytes().await.unwrap().is_empty());
    for status in [204, 304] {
        let response = client
            .get(format!("{base}/no-body-encoded/{status}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        assert!(response.bytes().await.unwrap().is_empty(), "{status}");
    }
}

#[tokio::test]
async fn roots_read_from_pem_are_trusted_and_only_they_when_empty() {
    use proxy_runtime::TlsRoots;
    let ca = TestCa::new();
    let other = TestCa::new();
    let origin = Origin::start(&ca).await;
    let url = format!("https://127.0.0.1:{}/pem", origin.https.port());

    // Only the roots added, from one PEM document holding two certificates.
    let both = format!("{}\n{}", other.ca_pem(), ca.ca_pem());
    let roots = TlsRoots::empty().add_pem(both.as_bytes()).unwrap();
    assert_eq!(format!("{roots:?}"), "TlsRoots { webpki: false, extra: 2 }");
    let inj = injector(None, &ca, |b| b.tls_roots(roots));
    let response = inj.http_client("okx").get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), body_for("/pem"));

    // Another CA alone is not trusted: the target's certificate is refused.
    let roots = TlsRoots::empty()
        .add_pem(other.ca_pem().as_bytes())
        .unwrap();
    let inj = injector(None, &ca, |b| b.tls_roots(roots));
    let err = inj.http_client("okx").get(&url).send().await.unwrap_err();
    assert_eq!(err.kind(), &K::Tls, "{err}");

    // The public roots by default, and a PEM document with no certificate is an error.
    assert_eq!(
        format!("{:?}", TlsRoots::default()),
        "TlsRoots { webpki: true, extra: 0 }"
    );
    let err = TlsRoots::default()
        .add_pem(b"not a certificate")
        .unwrap_err();
    assert_eq!(err.to_string(), "no certificate found in the PEM input");
}

/// What `{:?}` shows of the network types, which is what ends up in an application's logs:
/// the exchange, the route (the proxy redacted), the target and the outcome, never the
/// proxy's password nor a request's query, headers or body.
#[tokio::test]
async fn debug_output_names_route_and_target_and_never_a_secret() {
    use proxy_runtime::{ConnectionKind, Target};
    use proxy_tests::real::{PASSWORD, USER};
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks(true);
    let proxy = socks.url("socks5h", Some((USER, PASSWORD)));
    let shown_proxy = socks.url("socks5h", Some((USER, "***")));
    let inj = injector(Some(&proxy), &ca, |b| b);
    let client = inj.http_client("binance");
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    let mut shown = Vec::new();

    let dialer = format!("{:?}", inj.dialer("binance", ConnectionKind::Http));
    assert_eq!(
        dialer,
        format!(
            "Dialer {{ exchange: Some(\"binance\"), route: \"via {shown_proxy}\", \
             timeout: 30s, .. }}"
        )
    );
    let debug = format!("{client:?}");
    assert!(
        debug.starts_with(&format!("HttpClient {{ dialer: {dialer}")),
        "{debug}"
    );
    let injector = format!("{inj:?}");
    let route =
        format!("Some(ProxyConfig {{ url: ProxyUrl({shown_proxy}), timeout_seconds: 30 }})");
    assert_eq!(
        injector,
        format!(
            "ProxyInjector {{ settings: Ok(ProxySettings {{ enabled: true, default: \
             Some(ConnectionProxies {{ http: {route}, websocket: {route}, \
             websocket_session: None, http_budget: None }}), exchanges: {{}}, \
             system: true, shared: SharedSettings {{ url: None, prefix: None, \
             processes: None, timeout_ms: None }}, reload: ReloadSettings {{ watch: None, \
             debounce_ms: None }}, system_proxies: None }}), \
             resolver: SystemResolver, \
             http: HttpOptions {{ timeout: None, max_body_bytes: 67108864, http2: true }}, .. }}"
        )
    );
    let connector = format!("{:?}", inj.connector("binance"));
    assert_eq!(
        connector,
        format!("ProxyConnector {{ dialer: {dialer}, alpn: Http, .. }}")
    );
    shown.extend([dialer, debug, injector, connector]);

    let request = client
        .get(format!("{base}/api?signature=QuerySecret"))
        .header("x-mbx-apikey", "HeaderSecret")
        .body("BodySecret");
    let debug = format!("{request:?}");
    assert_eq!(
        debug,
        format!(
            "RequestBuilder {{ method: GET, target: Some(\"127.0.0.1:{}\"), .. }}",
            origin.https.port()
        )
    );
    shown.push(debug);
    let response = request.send().await.unwrap();
    assert_eq!(
        response.url().to_string(),
        format!("{base}/api?signature=QuerySecret"),
        "the URL as requested"
    );
    let debug = format!("{response:?}");
    assert_eq!(
        debug,
        format!(
            "Response {{ status: 200, version: HTTP/2.0, target: Some(\"127.0.0.1:{}\"), .. }}",
            origin.https.port()
        )
    );
    shown.push(debug);

    let target = Target::new("127.0.0.1", origin.https.port()).unwrap();
    let stream = inj
        .dialer("binance", ConnectionKind::Websocket)
        .connect(&target, true)
        .await
        .unwrap();
    let debug = format!("{stream:?}");
    assert_eq!(
        debug,
        format!(
            "ProxyStream {{ description: \"via {shown_proxy} to 127.0.0.1:{}\", h2: false, .. }}",
            origin.https.port()
        )
    );
    shown.push(debug);

    for debug in shown {
        for secret in [PASSWORD, "QuerySecret", "HeaderSecret", "BodySecret"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
}

#[tokio::test]
async fn error_for_status_with_body_reads_no_more_than_the_start_it_shows() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    // A request deadline far past the test's: reading past the start would wait for it.
    let inj = injector(None, &ca, |b| b.request_timeout(10 * GENEROUS));
    let client = inj.http_client("okx");
    for len in [256, 300] {
        let url = format!(
            "https://127.0.0.1:{}/error-then-stall/{len}",
            origin.https.port()
        );
        let response = client.get(url).send().await.unwrap();
        let err = tokio::time::timeout(GENEROUS, response.error_for_status_with_body())
            .await
            .expect("the start is read, and nothing more")
            .unwrap_err();
        assert_eq!(
            err.status(),
            Some(StatusCode::INTERNAL_SERVER_ERROR),
            "{err}"
        );
        let shown = err.to_string();
        let start = format!("body starts: \"{}\"", "e".repeat(256));
        assert!(shown.contains(&start), "{len}: {shown}");
    }
}

#[test]
fn the_injector_keeps_its_settings_and_gives_its_clients_its_options() {
    let ca = TestCa::new();
    let proxy = "socks5h://127.0.0.1:1080";
    let vars = [
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", proxy),
    ];
    let settings = ProxySettings::loader().env_vars(vars).load().unwrap();
    let inj = ProxyInjector::builder(settings.clone()).build();
    assert_eq!(inj.settings().ok().as_deref(), Some(&settings));
    // The bound on a response body: 64 MiB unless the builder says otherwise.
    assert_eq!(
        inj.http_client("binance").max_body_bytes(),
        64 * 1024 * 1024
    );
    let inj = injector(Some(proxy), &ca, |b| b.max_body_bytes(1000));
    assert_eq!(inj.http_client("binance").max_body_bytes(), 1000);
    assert_eq!(inj.http_client("kraken").max_body_bytes(), 1000);
}

#[tokio::test]
async fn a_host_is_sent_as_the_url_reads_it_and_a_trailing_dot_is_dropped() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, |b| b);
    let client = inj.http_client("okx");
    let port = origin.http.port();
    // A name as `url` normalizes it (lowercase), with its port.
    let response = client
        .get(format!("http://LocalHost:{port}/named#part"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.url().as_str(),
        format!("http://localhost:{port}/named"),
        "the response's URL is the one sent: no fragment"
    );
    assert_eq!(response.bytes().await.unwrap(), body_for("/named"));
    let sent = origin.http.received().pop().unwrap();
    assert_eq!(sent.headers["host"], format!("localhost:{port}"));
    assert_eq!(sent.target, "/named");
    // A fully qualified name: dialed, checked by TLS and sent in `Host` without its dot,
    // as the target is named everywhere else.
    let response = client
        .get(format!("http://localhost.:{port}/dotted?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.url().as_str(),
        format!("http://localhost.:{port}/dotted?q=1")
    );
    let sent = origin.http.received().pop().unwrap();
    assert_eq!(sent.headers["host"], format!("localhost:{port}"));
    assert_eq!(sent.target, "/dotted?q=1");
}

#[tokio::test]
async fn http2_s_authority_is_the_url_s_and_connect_names_its_port() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let inj = injector(None, &ca, |b| b);
    let client = inj.http_client("okx");
    let port = origin.https.port();
    for (url, authority) in [
        (
            format!("https://LOCALHOST:{port}/h2"),
            format!("localhost:{port}"),
        ),
        (
            format!("https://localhost.:{port}/h2"),
            format!("localhost:{port}"),
        ),
    ] {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.version(), Version::HTTP_2);
        let sent = origin.https.received().pop().unwrap();
        assert_eq!(sent.authority.as_deref(), Some(authority.as_str()), "{url}");
    }
    // The origin answers CONNECT like any request; what matters is the request line,
    // whose authority form carries the port. (The origin cannot listen on a default
    // port, so that a default port is written too is pinned by the unit test of
    // `hyper_uri`.)
    let inj = injector(None, &ca, |b| b.http1_only());
    let plain = origin.http.port();
    let _ = inj
        .http_client("okx")
        .request("CONNECT", format!("http://localhost:{plain}/"))
        .send()
        .await;
    let sent = origin.http.received().pop().expect("the CONNECT request");
    assert_eq!(sent.method, Method::CONNECT);
    assert_eq!(
        sent.authority.as_deref(),
        Some(format!("localhost:{plain}").as_str())
    );
}
