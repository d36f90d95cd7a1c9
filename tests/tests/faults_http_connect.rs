//! HTTP CONNECT against scripted fake proxies: every reply case real proxies cannot be
//! made to send (407 with and without credentials, other refusals, malformed, oversized
//! and truncated replies, bytes right after the 200).

use proxy_tests::Fetch;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proxy_runtime::{ConnectionKind, ProxyError, ProxyErrorKind, Refusal, Target};
use proxy_tests::fake::{FakeProxy, Session, closed_port};
use proxy_tests::origin::{Origin, body_for};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;
use proxy_tests::{GENEROUS, injector};
use tokio::io::AsyncReadExt;

/// A fake HTTP proxy answering `reply` to every CONNECT.
async fn replying(reply: &'static [u8]) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| async move {
        s.read_head().await;
        s.write(reply).await;
    })
    .await
}

/// A fake HTTP proxy that answers `reply` and then tunnels to the target.
async fn tunnelling(reply: &'static [u8], origin: std::net::SocketAddr) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| async move {
        s.read_head().await;
        s.write(reply).await;
        s.pipe_to(origin).await;
    })
    .await
}

/// The error of a CONNECT through `proxy_url` to `target` (a deadline of 5 s; the test
/// waits 20 s), which names the exchange and the proxy.
async fn connect_error(proxy_url: &str, target: std::net::SocketAddr) -> ProxyError {
    let ca = TestCa::new();
    let inj = injector(Some(proxy_url), 5, &ca, RecordingResolver::failing());
    let dialer = inj.dialer("binance", ConnectionKind::Http);
    let target = Target::new(&target.ip().to_string(), target.port()).unwrap();
    let err = tokio::time::timeout(GENEROUS, dialer.connect(&target, false))
        .await
        .expect("finishes")
        .expect_err("must fail");
    assert_eq!(err.exchange(), Some("binance"));
    assert!(err.proxy().is_some());
    err
}

async fn kind_of(proxy_url: &str, target: std::net::SocketAddr) -> ProxyErrorKind {
    connect_error(proxy_url, target).await.kind().clone()
}

/// What a tunnel through the fake HTTP proxy `proxy` reads until it ends.
async fn tunnelled(proxy: &FakeProxy) -> Result<Vec<u8>, ProxyError> {
    let ca = TestCa::new();
    let url = format!("http://{}", proxy.authority());
    let inj = injector(Some(&url), 5, &ca, RecordingResolver::failing());
    let target = Target::new("exchange.test", 443).unwrap();
    let mut stream = inj
        .dialer("okx", ConnectionKind::Http)
        .connect(&target, false)
        .await?;
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    Ok(got)
}

#[tokio::test]
async fn two_hundred_variants_open_the_tunnel_and_the_request_is_exact() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    for reply in [
        &b"HTTP/1.1 200 Connection established\r\n\r\n"[..],
        b"HTTP/1.0 200 OK\r\nProxy-Agent: test\r\n\r\n",
        b"HTTP/1.1 200 \r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ] {
        let proxy = tunnelling(reply, origin.https.addr).await;
        let url = format!("http://user:p%40ss%3Aw0rd@{}", proxy.authority());
        let inj = injector(Some(&url), 5, &ca, RecordingResolver::failing());
        let body = inj
            .http_client("binance")
            .fetch(&format!(
                "https://localhost:{}/api/v3/depth",
                origin.https.port()
            ))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(reply)));
        assert_eq!(body, body_for("/api/v3/depth"));
        let head = String::from_utf8(proxy.received()).unwrap();
        let token = base64::engine::general_purpose::STANDARD.encode("user:p@ss:w0rd");
        assert_eq!(
            head,
            format!(
                "CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\nProxy-Authorization: Basic {token}\r\n\r\n",
                port = origin.https.port()
            )
        );
    }
}

#[tokio::test]
async fn bytes_right_after_the_200_belong_to_the_tunnel() {
    let proxy = replying(b"HTTP/1.1 200 OK\r\n\r\nfirst bytes of the tunnel").await;
    let got = tunnelled(&proxy).await.unwrap();
    assert_eq!(got, b"first bytes of the tunnel");
}

#[tokio::test]
async fn a_reply_head_of_64_headers_opens_the_tunnel() {
    let crowded = {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..64 {
            s.push_str(&format!("X-H{i}: v\r\n"));
        }
        s
    };
    let reply: &'static [u8] = Box::leak(
        format!("{crowded}\r\ntunnel")
            .into_bytes()
            .into_boxed_slice(),
    );
    let got = tunnelled(&replying(reply).await).await.unwrap();
    assert_eq!(got, b"tunnel");
}

/// A `200` reply head of exactly `len` bytes, its last line included.
fn head_of(len: usize) -> String {
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    let line = |n: usize| format!("X-Pad: {}\r\n", "a".repeat(n));
    while len - head.len() > 2 * 1009 {
        head.push_str(&line(1000));
    }
    head.push_str(&line(len - head.len() - 2 - 9));
    head.push_str("\r\n");
    assert_eq!(head.len(), len);
    head
}

#[tokio::test]
async fn a_reply_head_of_16_kib_is_the_longest_accepted_however_it_arrives() {
    let longest = head_of(16 * 1024);
    for split in [None, Some(16 * 1024 - 1), Some(1000)] {
        let reply = format!("{longest}tunnel");
        let proxy = FakeProxy::start(move |mut s: Session| {
            let reply = reply.clone();
            async move {
                s.read_head().await;
                let (first, rest) = reply.as_bytes().split_at(split.unwrap_or(0));
                s.write(first).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                s.write(rest).await;
            }
        })
        .await;
        let got = tunnelled(&proxy)
            .await
            .unwrap_or_else(|e| panic!("split at {split:?}: {e}"));
        assert_eq!(got, b"tunnel");
    }

    // One byte more is refused, whole or unfinished, as soon as 16 KiB of it is read.
    let over = head_of(16 * 1024 + 1);
    let whole = FakeProxy::start(move |mut s: Session| {
        let over = over.clone();
        async move {
            s.read_head().await;
            s.write(over.as_bytes()).await;
            s.hang().await;
        }
    })
    .await;
    let unfinished = FakeProxy::start(|mut s: Session| async move {
        s.read_head().await;
        s.write(&head_of(16 * 1024 + 2).as_bytes()[..16 * 1024])
            .await;
        s.hang().await;
    })
    .await;
    // In reads of 1000 bytes, which never hold exactly 16 KiB.
    let trickled = FakeProxy::start(|mut s: Session| async move {
        s.read_head().await;
        let head = head_of(20_000);
        for piece in head.as_bytes()[..17_000].chunks(1000) {
            s.write(piece).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.hang().await;
    })
    .await;
    for (proxy, case) in [
        (&whole, "whole"),
        (&unfinished, "unfinished"),
        (&trickled, "trickled"),
    ] {
        let url = format!("http://{}", proxy.authority());
        let err = connect_error(&url, "127.0.0.1:9".parse().unwrap()).await;
        assert_eq!(err.kind(), &ProxyErrorKind::Protocol, "{case}: {err}");
        assert!(
            err.to_string().contains("longer than 16 KiB"),
            "{case}: {err}"
        );
    }
}

#[tokio::test]
async fn auth_required_and_auth_failed_without_retry() {
    let target = "127.0.0.1:9".parse().unwrap();
    let cases: [(&'static [u8], bool, ProxyErrorKind); 6] = [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n", false, ProxyErrorKind::AuthRequired),
        (b"HTTP/1.0 407 Proxy Authentication Required\r\nContent-Type: text/html\r\nContent-Length: 29\r\n\r\n<html>auth required</html>\r\n", false, ProxyErrorKind::AuthRequired),
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", true, ProxyErrorKind::AuthFailed),
        (b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\n\r\n<html><body>401</body></html>", true, ProxyErrorKind::AuthFailed),
        (b"HTTP/1.1 401 Unauthorized\r\n\r\n", false, ProxyErrorKind::AuthRequired),
        (b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n", true, ProxyErrorKind::AuthFailed),
    ];
    for (reply, with_credentials, expected) in cases {
        let proxy = replying(reply).await;
        let url = if with_credentials {
            format!("http://user:wrong@{}", proxy.authority())
        } else {
            format!("http://{}", proxy.authority())
        };
        assert_eq!(
            kind_of(&url, target).await,
            expected,
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert_eq!(proxy.accepted(), 1, "no retry loop");
    }
}

#[tokio::test]
async fn other_statuses_keep_code_and_short_reason() {
    let target = "127.0.0.1:9".parse().unwrap();
    for (reply, status, reason) in [
        (&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..], 400, "Bad Request"),
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!",
            403,
            "Forbidden",
        ),
        (
            b"HTTP/1.1 500 Unable to connect\r\n\r\n",
            500,
            "Unable to connect",
        ),
        (b"HTTP/1.0 502 Bad Gateway\r\n\r\n", 502, "Bad Gateway"),
        (
            b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
            503,
            "Service Unavailable",
        ),
    ] {
        let proxy = replying(reply).await;
        let kind = kind_of(&format!("http://{}", proxy.authority()), target).await;
        assert_eq!(
            kind,
            ProxyErrorKind::Refused(Refusal::Http {
                status,
                reason: reason.to_owned()
            })
        );
    }
}

#[tokio::test]
async fn malformed_replies_are_protocol_errors_never_tunnels() {
    let target = "127.0.0.1:9".parse().unwrap();
    let huge: &'static [u8] = Box::leak(
        format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n", "a".repeat(17 * 1024))
            .into_bytes()
            .into_boxed_slice(),
    );
    let many: &'static [u8] = Box::leak({
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..100 {
            s.push_str(&format!("X-H{i}: v\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes().into_boxed_slice()
    });
    for reply in [
        &b"garbage\r\n\r\n"[..],
        b"\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        huge,
        many,
        b"HTTP/1.1 200 Conn",
        // Empty lines before the status line (httparse skips them; a reply starts with
        // its status line).
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"\nHTTP/1.1 200 OK\r\n\r\n",
    ] {
        let proxy = replying(reply).await;
        let kind = kind_of(&format!("http://{}", proxy.authority()), target).await;
        assert_eq!(
            kind,
            ProxyErrorKind::Protocol,
            "{:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(40)])
        );
    }
}

#[tokio::test]
async fn endless_or_crowded_reply_heads_are_cut_off_while_the_proxy_keeps_sending() {
    // The proxy keeps the connection open: only the limits can end these.
    let endless = FakeProxy::start(|mut s: Session| async move {
        s.read_head().await;
        s.write(b"HTTP/1.1 200 OK\r\n").await;
        for _ in 0..64 {
            s.write(format!("X-Pad: {}\r\n", "a".repeat(1000)).as_bytes())
                .await;
        }
        s.hang().await;
    })
    .await;
    let crowded = FakeProxy::start(|mut s: Session| async move {
        s.read_head().await;
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..100 {
            head.push_str(&format!("X-H{i}: v\r\n"));
        }
        head.push_str("\r\n");
        s.write(head.as_bytes()).await;
        s.hang().await;
    })
    .await;
    let ca = TestCa::new();
    for (proxy, detail) in [
        (&endless, "longer than 16 KiB"),
        (&crowded, "more than 64 headers"),
    ] {
        let inj = injector(
            Some(&format!("http://{}", proxy.authority())),
            10,
            &ca,
            RecordingResolver::failing(),
        );
        let target = Target::new("exchange.test", 443).unwrap();
        let err = tokio::time::timeout(
            GENEROUS,
            inj.dialer("okx", ConnectionKind::Http)
                .connect(&target, false),
        )
        .await
        .expect("cut off, not timed out")
        .unwrap_err();
        assert_eq!(err.kind(), &ProxyErrorKind::Protocol, "{err}");
        assert!(err.to_string().contains(detail), "{err}");
    }
}

#[tokio::test]
async fn target_urls_with_credentials_or_bad_ports() {
    let ca = TestCa::new();
    let inj = injector(None, 5, &ca, RecordingResolver::failing());
    let port = closed_port().await;
    let err = inj
        .http_client("okx")
        .fetch(&format!("https://apikey:T0pSecret@127.0.0.1:{port}/x"))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("T0pSecret"), "{err}");
    let err = inj
        .http_client("okx")
        .fetch("https://127.0.0.1:99999/x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ProxyErrorKind::InvalidTarget, "{err}");
}

#[tokio::test]
async fn proxy_closing_during_the_reply_differs_from_the_target_closing() {
    // The proxy closes in the middle of its reply: a protocol error.
    let proxy = replying(b"HTTP/1.1 200 OK\r\nX-Partial: y").await;
    let ca = TestCa::new();
    let inj = injector(
        Some(&format!("http://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    let dialer = inj.dialer("okx", ConnectionKind::Http);
    let target = Target::new("exchange.test", 443).unwrap();
    let err = dialer.connect(&target, false).await.unwrap_err();
    assert_eq!(err.kind(), &ProxyErrorKind::Protocol);
    assert!(
        err.to_string()
            .contains("closed the connection before the end of its CONNECT reply"),
        "{err}"
    );

    // The tunnel is up, then the target closes: the connection succeeds and reads end.
    let proxy = replying(b"HTTP/1.1 200 OK\r\n\r\n").await;
    let inj = injector(
        Some(&format!("http://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    let mut stream = inj
        .dialer("okx", ConnectionKind::Http)
        .connect(&target, false)
        .await
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).await.unwrap(), 0);
}

#[tokio::test]
async fn closed_proxy_port_is_unreachable_and_the_decoy_target_sees_nothing() {
    let ca = TestCa::new();
    let decoy = Origin::start(&ca).await;
    let port = closed_port().await;
    for scheme in ["http", "https", "socks5", "socks5h", "socks4", "socks4a"] {
        let url = format!("{scheme}://127.0.0.1:{port}");
        let inj = injector(Some(&url), 5, &ca, RecordingResolver::failing());
        let err = inj
            .http_client("binance")
            .fetch(&format!("https://127.0.0.1:{}/", decoy.https.port()))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            &ProxyErrorKind::ProxyUnreachable,
            "{scheme}: {err}"
        );
        let source = std::error::Error::source(&err).expect("io error kept as source");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "{scheme}: {source:?}"
        );
        assert!(err.to_string().contains(&format!("via {url}")), "{err}");
        let ws = inj
            .connect_websocket(
                "binance",
                &format!("wss://127.0.0.1:{}/ws", decoy.wss.port()),
            )
            .await
            .map(|(ws, _)| ws)
            .unwrap_err();
        assert_eq!(ws.kind(), &ProxyErrorKind::ProxyUnreachable);
    }
    assert_eq!(
        decoy.https.accepted() + decoy.wss.accepted(),
        0,
        "no direct fallback"
    );
}

#[tokio::test]
async fn a_proxy_that_never_answers_times_out_in_the_handshake_phase() {
    for reply in [&b""[..], b"H"] {
        let proxy = FakeProxy::start(move |mut s: Session| async move {
            s.read_head().await;
            s.write(reply).await;
            s.hang().await;
        })
        .await;
        let ca = TestCa::new();
        let inj = injector(
            Some(&format!("http://{}", proxy.authority())),
            1,
            &ca,
            RecordingResolver::failing(),
        );
        let started = Instant::now();
        let err = inj
            .http_client("kraken")
            .fetch("https://exchange.test/")
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err.kind(),
            &ProxyErrorKind::Timeout(proxy_runtime::Phase::ProxyHandshake),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(err.to_string().contains("proxy handshake"), "{err}");
    }
}

#[tokio::test]
async fn https_proxy_tls_to_the_proxy_then_tls_inside_the_tunnel() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (proxy, _) = proxy_tests::fake::https_connect_proxy(ca.acceptor(), origin.https.addr).await;
    // The proxy's certificate names `localhost`: the URL's host is its TLS server name.
    let url = format!("https://localhost:{}", proxy.addr.port());
    let resolver = RecordingResolver::new(&[("localhost", "127.0.0.1".parse().unwrap())]);
    let inj = injector(Some(&url), 5, &ca, resolver.clone());
    let body = inj
        .http_client("deribit")
        .fetch(&format!(
            "https://127.0.0.1:{}/tls-in-tls",
            origin.https.port()
        ))
        .await
        .unwrap();
    assert_eq!(body, body_for("/tls-in-tls"));
    assert_eq!(
        resolver.asked(),
        ["localhost"],
        "only the proxy's own name is resolved"
    );
}

#[tokio::test]
async fn ipv6_proxy_address() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let to = origin.https.addr;
    let proxy = FakeProxy::start_on("::1", move |mut s: Session| async move {
        s.read_head().await;
        s.write(b"HTTP/1.1 200 OK\r\n\r\n").await;
        s.pipe_to(to).await;
    })
    .await;
    let url = format!("http://{}", proxy.authority());
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let inj = injector(Some(&url), 5, &ca, RecordingResolver::failing());
    let body = inj
        .http_client("okx")
        .fetch(&format!(
            "https://127.0.0.1:{}/v6-proxy",
            origin.https.port()
        ))
        .await
        .unwrap();
    assert_eq!(body, body_for("/v6-proxy"));
}
