//! What a client written against reqwest and tokio-tungstenite needs to move over without
//! changing its own API: requests built, copied, signed and executed; default headers;
//! responses streamed within the body bound; errors that answer reqwest's questions and
//! convert into `io::Error` and `tungstenite::Error`; and the routed stream under a
//! tokio-tungstenite of one's own. Direct, through microsocks and through tinyproxy.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use proxy_runtime::http::{HeaderMap, HeaderValue, StatusCode};
use proxy_runtime::tungstenite::Message;
use proxy_runtime::{
    ConnectionKind, HttpClient, ProxyError, ProxyErrorKind as K, ProxyInjector, Request, Response,
    WebSocket,
};
use proxy_tests::GENEROUS;
use proxy_tests::origin::{Origin, WELCOME, body_for};
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

use proxy_tests::injector_built as injector;

/// Every route the items are tried through: direct, a SOCKS5 and a CONNECT proxy. The
/// servers live as long as the returned list.
fn routes() -> Vec<(Option<String>, Option<RealProxy>)> {
    let microsocks = RealProxy::microsocks(false);
    let tinyproxy = RealProxy::tinyproxy(false);
    vec![
        (None, None),
        (Some(microsocks.url("socks5h", None)), Some(microsocks)),
        (Some(tinyproxy.url("http", None)), Some(tinyproxy)),
    ]
}

/// A stand-in for an exchange's HMAC: what matters is that it reads the encoded query
/// and body of the built request.
fn sign(query: &str, body: &[u8]) -> String {
    let mut sum: u64 = 1469598103934665603;
    for byte in query.bytes().chain(body.iter().copied()) {
        sum = (sum ^ u64::from(byte)).wrapping_mul(1099511628211);
    }
    format!("{sum:016x}")
}

#[tokio::test]
async fn a_request_built_copied_signed_and_executed_arrives_byte_exact() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    for (proxy, _server) in routes() {
        let client = injector(proxy.as_deref(), &ca, |b| b).http_client("binance");
        let builder = client
            .post(format!("{base}/api/v3/order#ignored"))
            .query(&[("symbol", "BTCUSDT"), ("timestamp", "1700000000000")])
            .header("X-MBX-APIKEY", "key-for-test")
            .body("side=BUY&quantity=0.001")
            .timeout(GENEROUS);
        let unsigned = builder.try_clone().expect("a copy");
        let mut request: Request = builder.build().unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.timeout(), Some(&GENEROUS));
        let query = request.url().query().unwrap().to_owned();
        assert_eq!(query, "symbol=BTCUSDT&timestamp=1700000000000");
        let body = request.body().unwrap().as_bytes().unwrap().to_vec();
        let signature = sign(&query, &body);
        request
            .url_mut()
            .query_pairs_mut()
            .append_pair("signature", &signature);
        request
            .headers_mut()
            .insert("x-signed", HeaderValue::from_static("yes"));
        let copy = request.try_clone().unwrap();
        let response = client.execute(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{proxy:?}");
        let sent_to = format!("{base}/api/v3/order?{query}&signature={signature}");
        assert_eq!(
            response.url().as_str(),
            sent_to,
            "the fragment is never sent"
        );
        response.bytes().await.unwrap();
        let sent = origin.https.received().pop().unwrap();
        assert_eq!(
            sent.target,
            format!("/api/v3/order?{query}&signature={signature}"),
            "{proxy:?}"
        );
        assert_eq!(sent.body, "side=BUY&quantity=0.001");
        assert_eq!(sent.headers["x-mbx-apikey"], "key-for-test");
        assert_eq!(sent.headers["x-signed"], "yes");
        // The copies are what they were copied from.
        client.execute(copy).await.unwrap().bytes().await.unwrap();
        assert_eq!(origin.https.received().pop().unwrap().target, sent.target);
        unsigned.send().await.unwrap().bytes().await.unwrap();
        let sent = origin.https.received().pop().unwrap();
        assert_eq!(sent.target, format!("/api/v3/order?{query}"));
        assert!(!sent.headers.contains_key("x-signed"));
        // A method by name, as a client on another `http` version passes it.
        for method in ["DELETE", "PROPFIND"] {
            let response = client
                .request(method, format!("{base}/m"))
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap();
            assert_eq!(origin.https.received().pop().unwrap().method, method);
        }
        let owned = client.request(String::from("PUT"), format!("{base}/m"));
        assert_eq!(owned.build().unwrap().method(), "PUT");
    }
}

#[tokio::test]
async fn default_headers_go_with_every_request_that_does_not_set_its_own() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let url = format!("https://127.0.0.1:{}/defaults", origin.https.port());
    let plain = injector(None, &ca, |b| b).http_client("okx");
    let mut defaults = HeaderMap::new();
    defaults.insert("x-api-key", HeaderValue::from_static("default-key"));
    defaults.insert("user-agent", HeaderValue::from_static("bot/1"));
    let client: HttpClient = plain.with_default_headers(defaults);
    client.get(&url).send().await.unwrap();
    let sent = origin.https.received().pop().unwrap();
    assert_eq!(sent.headers["x-api-key"], "default-key");
    assert_eq!(sent.headers["user-agent"], "bot/1");
    client
        .get(&url)
        .header("user-agent", "own/2")
        .send()
        .await
        .unwrap();
    let sent = origin.https.received().pop().unwrap();
    assert_eq!(
        sent.headers["user-agent"], "own/2",
        "the request's own wins"
    );
    assert_eq!(sent.headers["x-api-key"], "default-key");
    // The client it was made from is unchanged, and they share one connection pool.
    plain.get(&url).send().await.unwrap();
    let sent = origin.https.received().pop().unwrap();
    assert!(!sent.headers.contains_key("x-api-key"));
    assert_eq!(origin.https.accepted(), 1, "one pool");
}

#[tokio::test]
async fn bytes_stream_gives_the_body_in_pieces_and_stops_at_the_bound() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    for (proxy, _server) in routes() {
        let client =
            injector(proxy.as_deref(), &ca, |b| b.max_body_bytes(64 * 1024)).http_client("okx");
        let pieces: Vec<Result<proxy_runtime::Bytes, ProxyError>> = client
            .get(format!("{base}/whole"))
            .send()
            .await
            .unwrap()
            .bytes_stream()
            .collect()
            .await;
        let whole: Vec<u8> = pieces
            .into_iter()
            .flat_map(|piece| piece.unwrap().to_vec())
            .collect();
        assert_eq!(whole, body_for("/whole").as_bytes());
        let endless = client
            .get(format!("{base}/endless"))
            .send()
            .await
            .unwrap()
            .bytes_stream();
        let read = tokio::time::timeout(GENEROUS, endless.collect::<Vec<_>>())
            .await
            .expect("it stops");
        let error = read.last().unwrap().as_ref().unwrap_err();
        assert_eq!(error.kind(), &K::BodyTooLarge { limit: 64 * 1024 });
        assert!(error.is_body(), "{error}");
        let taken: usize = read.iter().flatten().map(|piece| piece.len()).sum();
        assert!(taken <= 64 * 1024, "{taken}");
    }
}

/// What reqwest's questions answer for `error`, in order: timeout, connect, status,
/// body, decode, request, builder.
fn answers(error: &ProxyError) -> [bool; 7] {
    [
        error.is_timeout(),
        error.is_connect(),
        error.is_status(),
        error.is_body(),
        error.is_decode(),
        error.is_request(),
        error.is_builder(),
    ]
}

#[tokio::test]
async fn errors_of_real_faults_answer_reqwest_s_questions() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    let closed = proxy_tests::fake::closed_port().await;
    let dead = injector(Some(&format!("socks5h://127.0.0.1:{closed}")), &ca, |b| b);
    let unreachable = dead.http_client("okx").get(&base).send().await.unwrap_err();
    assert_eq!(
        answers(&unreachable),
        [false, true, false, false, false, false, false]
    );

    // A proxy that accepts and never answers: a timeout of the connection, so both.
    let hanging =
        proxy_tests::fake::FakeProxy::start(|s: proxy_tests::fake::Session| s.hang()).await;
    let via_hanging = injector(Some(&format!("http://{}", hanging.authority())), &ca, |b| b);
    let connecting = via_hanging
        .http_client("okx")
        .get(&base)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        answers(&connecting),
        [true, true, false, false, false, false, false],
        "{connecting}"
    );

    let client = injector(None, &ca, |b| b.max_body_bytes(1024)).http_client("okx");
    // The head came, the body stalls: a timeout of the body.
    let body_stalled = client
        .get(format!("{base}/stall-body"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(
        answers(&body_stalled),
        [true, false, false, true, false, false, false],
        "{body_stalled}"
    );
    let stalled = client
        .get(format!("{base}/stall-head"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        answers(&stalled),
        [true, false, false, false, false, true, false]
    );

    let status = client
        .get(format!("{base}/status/451"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap_err();
    assert_eq!(
        answers(&status),
        [false, false, true, false, false, false, false]
    );
    assert_eq!(
        status.status(),
        Some(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS)
    );

    let too_large = client
        .get(format!("{base}/endless"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(
        answers(&too_large),
        [false, false, false, true, false, false, false]
    );

    let not_json = client
        .get(format!("{base}/plain"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert_eq!(
        answers(&not_json),
        [false, false, false, false, true, false, false]
    );

    for built_wrong in [
        client.get("not a url").send().await.unwrap_err(),
        client
            .get(&base)
            .header("bad header", "x")
            .send()
            .await
            .unwrap_err(),
        client.get("ftp://127.0.0.1/").send().await.unwrap_err(),
        client
            .request("NOT A METHOD", &base)
            .send()
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            answers(&built_wrong),
            [false, false, false, false, false, false, true],
            "{built_wrong}"
        );
    }
}

/// A client's own function returning `io::Result`, written with `?`.
async fn fetch_io(client: &HttpClient, url: &str) -> std::io::Result<proxy_runtime::Bytes> {
    Ok(client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?)
}

/// A client's own function returning tungstenite's error, written with `?`.
async fn stream_ws(
    injector: &ProxyInjector,
    url: &str,
) -> Result<WebSocket, proxy_runtime::tungstenite::Error> {
    let (stream, _) = injector.connect_websocket("okx", url).await?;
    Ok(stream)
}

#[tokio::test]
async fn errors_convert_into_io_and_tungstenite_errors_of_the_closest_kind() {
    use std::io::ErrorKind as Io;
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let base = format!("https://127.0.0.1:{}", origin.https.port());
    let closed = proxy_tests::fake::closed_port().await;
    let dead = injector(Some(&format!("socks5h://127.0.0.1:{closed}")), &ca, |b| b);
    let err = fetch_io(&dead.http_client("okx"), &base).await.unwrap_err();
    assert_eq!(err.kind(), Io::ConnectionRefused, "{err}");
    let inner = err.get_ref().unwrap().downcast_ref::<ProxyError>().unwrap();
    assert_eq!(inner.kind(), &K::ProxyUnreachable, "the ProxyError inside");

    let client =
        injector(None, &ca, |b| b.request_timeout(Duration::from_millis(100))).http_client("okx");
    let err = fetch_io(&client, &format!("{base}/stall-head"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Io::TimedOut);
    let err = fetch_io(&client, &format!("{base}/status/404"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Io::Other);
    let err = fetch_io(&client, "not a url").await.unwrap_err();
    assert_eq!(err.kind(), Io::InvalidInput);

    // An origin that reads the request and closes without an answer: the request failed,
    // and nothing says why beyond the connection ending.
    let closes =
        proxy_tests::fake::FakeProxy::start(|mut s: proxy_tests::fake::Session| async move {
            s.read_head().await;
        })
        .await;
    let closed_early = client
        .get(format!("http://{}/x", closes.authority()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        answers(&closed_early),
        [false, false, false, false, false, true, false],
        "{closed_early}"
    );
    assert_eq!(
        std::io::Error::from(closed_early).kind(),
        Io::ConnectionAborted
    );
    // One that resets the connection: the reset is the kind.
    let resets =
        proxy_tests::fake::FakeProxy::start(|mut s: proxy_tests::fake::Session| async move {
            s.read_head().await;
            // A zero linger time makes the close a reset (the socket is non-blocking: the
            // close does not wait).
            socket2::SockRef::from(&s.stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        })
        .await;
    let err = fetch_io(&client, &format!("http://{}/x", resets.authority()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Io::ConnectionReset, "{err}");

    let err = stream_ws(&dead, &format!("wss://127.0.0.1:{}/ws", origin.wss.port()))
        .await
        .unwrap_err();
    match err {
        proxy_runtime::tungstenite::Error::Io(io) => {
            assert_eq!(io.kind(), Io::ConnectionRefused);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_tokio_tungstenite_of_one_s_own_over_the_routed_stream() {
    use tokio_tungstenite::Connector;
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("wss://127.0.0.1:{}/ws", origin.wss.port());
    for (proxy, _server) in routes() {
        let dialer =
            injector(proxy.as_deref(), &ca, |b| b).dialer("okx", ConnectionKind::Websocket);
        let stream = dialer.connect_url(&url).await.unwrap();
        let (mut ws, response) = tokio_tungstenite::client_async_tls_with_config(
            url.as_str(),
            stream,
            None,
            Some(Connector::Rustls(Arc::new(tls.clone()))),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 101, "{proxy:?}");
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(WELCOME));
    }
    // Fail closed as the dialer does: a dead proxy is an error, never a direct stream.
    let closed = proxy_tests::fake::closed_port().await;
    let dead = injector(Some(&format!("socks5h://127.0.0.1:{closed}")), &ca, |b| b)
        .dialer("okx", ConnectionKind::Websocket);
    let err = dead.connect_url(&url).await.unwrap_err();
    assert_eq!(err.kind(), &K::ProxyUnreachable);
    assert_eq!(
        origin.wss.accepted(),
        3,
        "one per route, none from the dead one"
    );
    let err = dead.connect_url("wss://u:p@h/").await.unwrap_err();
    assert_eq!(err.kind(), &K::InvalidTarget);
}

#[test]
fn responses_requests_streams_and_errors_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Response>();
    send_sync::<Request>();
    send_sync::<WebSocket>();
    send_sync::<HttpClient>();
    send_sync::<ProxyError>();
    send_sync::<proxy_runtime::ProxyStream>();
}

#[tokio::test]
async fn the_system_s_roots_are_trusted_as_the_system_says() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let url = format!("https://127.0.0.1:{}/native", origin.https.port());
    let file = std::env::temp_dir().join(format!("native-roots-{}.pem", std::process::id()));
    std::fs::write(&file, ca.ca_pem()).unwrap();
    let run = |with_ca: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_native_roots_client"));
        command.arg(&url).env_clear();
        if with_ca {
            command.env("SSL_CERT_FILE", &file);
        }
        async move {
            let out = command.output().await.unwrap();
            String::from_utf8(out.stdout).unwrap()
        }
    };
    // The store named by SSL_CERT_FILE holds the test CA: trusted.
    assert_eq!(run(true).await.trim(), "status: 200");
    // The system's own store does not: a TLS error (or no store at all), never a success.
    let without = run(false).await;
    assert!(
        without.contains("TLS error") || without.starts_with("roots:"),
        "{without}"
    );
    std::fs::remove_file(&file).unwrap();
}
