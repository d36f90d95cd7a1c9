//! SOCKS4, SOCKS4a and SOCKS5 against scripted fake proxies: reply codes, malformed and
//! split replies, authentication, address types and length limits.

use proxy_runtime::{ConnectionKind, ProxyErrorKind as K, Refusal, Target};
use proxy_tests::Fetch;
use proxy_tests::fake::{FakeProxy, Session, recording_socks5};
use proxy_tests::origin::{Origin, body_for};
use proxy_tests::resolver::RecordingResolver;
use proxy_tests::tls::TestCa;
use proxy_tests::{GENEROUS, injector};

const OK_V4: [u8; 10] = [5, 0, 0, 1, 127, 0, 0, 1, 0, 80];

/// A SOCKS5 fake: no-auth greeting, then `reply` to the request.
async fn socks5_replying(reply: Vec<u8>, split: bool) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| {
        let reply = reply.clone();
        async move {
            s.read_socks5_greeting().await;
            if split {
                s.write_split(&[5, 0]).await;
            } else {
                s.write(&[5, 0]).await;
            }
            s.read_socks5_request().await;
            if split {
                s.write_split(&reply).await;
            } else {
                s.write(&reply).await;
            }
        }
    })
    .await
}

async fn error_kind(url: &str, target: Target) -> K {
    let ca = TestCa::new();
    let inj = injector(Some(url), 5, &ca, RecordingResolver::failing());
    let dialer = inj.dialer("bybit", ConnectionKind::Websocket);
    let err = tokio::time::timeout(GENEROUS, dialer.connect(&target, false))
        .await
        .expect("finishes")
        .expect_err("must fail");
    assert_eq!(err.exchange(), Some("bybit"));
    err.kind().clone()
}

fn name_target() -> Target {
    Target::new("exchange.test", 443).unwrap()
}

#[tokio::test]
async fn socks5_reply_codes_map_to_typed_errors() {
    let expected = [
        (1, K::Refused(Refusal::Socks5(1))),
        (2, K::Refused(Refusal::Socks5(2))),
        (3, K::TargetUnreachable(Some(Refusal::Socks5(3)))),
        (4, K::TargetUnreachable(Some(Refusal::Socks5(4)))),
        (5, K::TargetUnreachable(Some(Refusal::Socks5(5)))),
        (6, K::TargetUnreachable(Some(Refusal::Socks5(6)))),
        (7, K::Refused(Refusal::Socks5(7))),
        (8, K::Refused(Refusal::Socks5(8))),
        (9, K::Protocol),
        (0xff, K::Protocol),
    ];
    for (code, kind) in expected {
        let proxy = socks5_replying(vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0], false).await;
        let got = error_kind(&format!("socks5h://{}", proxy.authority()), name_target()).await;
        assert_eq!(got, kind, "reply code {code}");
    }
}

#[tokio::test]
async fn malformed_socks5_replies_are_typed_errors() {
    let cases: Vec<Vec<u8>> = vec![
        vec![4, 0, 0, 1, 0, 0, 0, 0, 0, 0], // wrong version
        vec![5, 0, 1, 1, 0, 0, 0, 0, 0, 0], // nonzero reserved byte
        vec![5, 0, 0, 9, 0, 0, 0, 0, 0, 0], // unknown address type
    ];
    for reply in cases {
        let proxy = socks5_replying(reply.clone(), false).await;
        let got = error_kind(&format!("socks5h://{}", proxy.authority()), name_target()).await;
        assert_eq!(got, K::Protocol, "{reply:?}");
    }
    // Cut short at every byte of the greeting reply and of the request reply.
    for cut in 0..OK_V4.len() {
        let proxy = FakeProxy::start(move |mut s: Session| async move {
            s.read_socks5_greeting().await;
            s.write(&[5, 0]).await;
            s.read_socks5_request().await;
            s.write(&OK_V4[..cut]).await;
        })
        .await;
        let got = error_kind(&format!("socks5h://{}", proxy.authority()), name_target()).await;
        assert_eq!(got, K::Protocol, "cut at {cut}");
    }
    let proxy = FakeProxy::start(|mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write(&[5]).await;
    })
    .await;
    assert_eq!(
        error_kind(&format!("socks5h://{}", proxy.authority()), name_target()).await,
        K::Protocol
    );
}

#[tokio::test]
async fn replies_split_into_single_bytes_still_work() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let target = origin.https.addr;
    let proxy = FakeProxy::start(move |mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write_split(&[5, 0]).await;
        s.read_socks5_request().await;
        // Domain-type bound address, to exercise the longest reply shape.
        s.write_split(&[5, 0, 0, 3, 4, b'b', b'n', b'd', b'x', 0, 1])
            .await;
        s.pipe_to(target).await;
    })
    .await;
    let inj = injector(
        Some(&format!("socks5h://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    let body = inj
        .http_client("okx")
        .fetch(&format!("https://localhost:{}/split", origin.https.port()))
        .await
        .unwrap();
    assert_eq!(body, body_for("/split"));
}

#[tokio::test]
async fn socks5_authentication_outcomes() {
    // Wrong credentials: auth status 1.
    let proxy = FakeProxy::start(|mut s: Session| async move {
        let methods = s.read_socks5_greeting().await;
        assert!(methods.contains(&2));
        s.write(&[5, 2]).await;
        let head = s.read_exact(2).await;
        let user = s.read_exact(head[1] as usize).await;
        let plen = s.read_exact(1).await;
        let pass = s.read_exact(plen[0] as usize).await;
        assert_eq!(
            (user.as_slice(), pass.as_slice()),
            (&b"user"[..], &b"p@ss:w0rd"[..])
        );
        s.write(&[1, 1]).await;
    })
    .await;
    let url = format!("socks5h://user:p%40ss%3Aw0rd@{}", proxy.authority());
    assert_eq!(error_kind(&url, name_target()).await, K::AuthFailed);

    // No acceptable method: with credentials, auth failed; without, auth required.
    let proxy = FakeProxy::start(|mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write(&[5, 0xff]).await;
    })
    .await;
    assert_eq!(
        error_kind(
            &format!("socks5h://u:p@{}", proxy.authority()),
            name_target()
        )
        .await,
        K::AuthFailed
    );
    assert_eq!(
        error_kind(&format!("socks5h://{}", proxy.authority()), name_target()).await,
        K::AuthRequired
    );

    // The proxy demands user/password from a client configured without them.
    let proxy = FakeProxy::start(|mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write(&[5, 2]).await;
    })
    .await;
    assert_eq!(
        error_kind(&format!("socks5h://{}", proxy.authority()), name_target()).await,
        K::AuthRequired
    );
}

#[tokio::test]
async fn hostname_length_limits() {
    let label = "a".repeat(63);
    let name255 = format!("{label}.{label}.{label}.{}", "b".repeat(63));
    assert_eq!(name255.len(), 255);
    let (proxy, seen) = recording_socks5().await;
    let ca = TestCa::new();
    let inj = injector(
        Some(&format!("socks5h://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    let dialer = inj.dialer("okx", ConnectionKind::Http);
    dialer
        .connect(&Target::new(&name255, 443).unwrap(), false)
        .await
        .unwrap();
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(&req[..5], &[5, 1, 0, 3, 255]);
    assert_eq!(&req[5..260], name255.as_bytes());

    let name256 = format!("{name255}c");
    let before = proxy.accepted();
    let err = dialer
        .connect(&Target::new(&name256, 443).unwrap(), false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::InvalidTarget, "{err}");
    assert_eq!(proxy.accepted(), before, "refused before connecting");
    for scheme in ["socks4a", "socks5h"] {
        let inj = injector(
            Some(&format!("{scheme}://{}", proxy.authority())),
            5,
            &ca,
            RecordingResolver::failing(),
        );
        let err = inj
            .dialer("okx", ConnectionKind::Http)
            .connect(&Target::new(&name256, 443).unwrap(), false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &K::InvalidTarget);
    }
    assert_eq!(proxy.accepted(), before);
}

#[tokio::test]
async fn ipv6_targets_use_address_type_4_and_are_refused_by_socks4() {
    let (proxy, seen) = recording_socks5().await;
    let ca = TestCa::new();
    let target = Target::new("[2001:db8::7]", 8443).unwrap();
    let inj = injector(
        Some(&format!("socks5h://{}", proxy.authority())),
        5,
        &ca,
        RecordingResolver::failing(),
    );
    inj.dialer("okx", ConnectionKind::Http)
        .connect(&target, false)
        .await
        .unwrap();
    let req = seen.lock().unwrap()[0].clone();
    let mut expected = vec![5, 1, 0, 4];
    expected.extend(
        "2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    expected.extend(8443u16.to_be_bytes());
    assert_eq!(req, expected);

    for scheme in ["socks4", "socks4a"] {
        let inj = injector(
            Some(&format!("{scheme}://{}", proxy.authority())),
            5,
            &ca,
            RecordingResolver::failing(),
        );
        let before = proxy.accepted();
        let err = inj
            .dialer("okx", ConnectionKind::Http)
            .connect(&target, false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &K::InvalidTarget, "{scheme}: {err}");
        assert_eq!(proxy.accepted(), before, "{scheme}: nothing sent");
    }
}

#[tokio::test]
async fn socks4a_sends_the_name_and_tunnels() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let target = origin.https.addr;
    let request = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = request.clone();
    let proxy = FakeProxy::start(move |mut s: Session| {
        let log = log.clone();
        async move {
            let req = s.read_socks4_request().await;
            log.lock().unwrap().push(req);
            s.write(&[0, 0x5a, 0, 0, 0, 0, 0, 0]).await;
            s.pipe_to(target).await;
        }
    })
    .await;
    let resolver = RecordingResolver::failing();
    let inj = proxy_runtime::ProxyInjector::builder(
        proxy_runtime::ProxySettings::loader()
            .env_vars([
                ("CRYPTOFEED_PROXY_ENABLED", "true"),
                (
                    "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                    format!("socks4a://trader@{}", proxy.authority()).as_str(),
                ),
            ])
            .load()
            .unwrap(),
    )
    .tls_roots(ca.roots())
    .resolver(resolver.clone())
    .build();
    let body = inj
        .http_client("gate")
        .fetch(&format!(
            "https://exchange.test:{}/four-a",
            origin.https.port()
        ))
        .await
        .unwrap();
    assert_eq!(body, body_for("/four-a"));
    let req = request.lock().unwrap()[0].clone();
    let mut expected = vec![4, 1];
    expected.extend(origin.https.port().to_be_bytes());
    expected.extend([0, 0, 0, 1]);
    expected.extend(b"trader\0exchange.test\0");
    assert_eq!(req, expected);
    assert!(
        resolver.asked().is_empty(),
        "socks4a never resolves locally: {:?}",
        resolver.asked()
    );
}

#[tokio::test]
async fn socks4_rejection_codes() {
    for (code, kind) in [
        (0x5b, K::Refused(Refusal::Socks4(91))),
        (0x5c, K::Refused(Refusal::Socks4(92))),
        (0x5d, K::AuthFailed),
        (0x42, K::Protocol),
    ] {
        let proxy = FakeProxy::start(move |mut s: Session| async move {
            s.read_socks4_request().await;
            s.write(&[0, code, 0, 0, 0, 0, 0, 0]).await;
        })
        .await;
        let target = Target::new("127.0.0.1", 443).unwrap();
        assert_eq!(
            error_kind(&format!("socks4://{}", proxy.authority()), target).await,
            kind,
            "code {code:#x}"
        );
    }
}

#[tokio::test]
async fn unresolvable_proxy_host_fails_without_touching_the_target() {
    let ca = TestCa::new();
    let decoy = Origin::start(&ca).await;
    let resolver = RecordingResolver::new(&[]);
    let settings = proxy_runtime::ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
                "socks5h://proxy.invalid:1080",
            ),
        ])
        .load()
        .unwrap();
    let inj = proxy_runtime::ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .resolver(resolver.clone())
        .build();
    let err = inj
        .http_client("binance")
        .fetch(&format!("https://exchange.test:{}/", decoy.https.port()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::ProxyUnreachable);
    assert!(
        err.to_string()
            .contains("cannot resolve the proxy's host name"),
        "{err}"
    );
    assert_eq!(
        resolver.asked(),
        ["proxy.invalid"],
        "only the proxy's name is looked up"
    );
    assert_eq!(decoy.https.accepted(), 0);
}

/// A SOCKS5 fake answering every request with reply `code`.
async fn socks5_always(code: u8) -> FakeProxy {
    FakeProxy::start(move |mut s: Session| async move {
        s.read_socks5_greeting().await;
        s.write(&[5, 0]).await;
        s.read_socks5_request().await;
        s.write(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    })
    .await
}

#[tokio::test]
async fn local_dns_asks_for_each_address_once_and_only_after_the_target_s_refusals() {
    let ca = TestCa::new();
    let resolver = RecordingResolver::new(&[
        ("exchange.test", std::net::IpAddr::from([127, 0, 0, 2])),
        ("exchange.test", std::net::IpAddr::from([127, 0, 0, 3])),
    ]);
    let target = Target::new("exchange.test", 443).unwrap();
    // Every address refused: each asked for once, the last refusal is the error.
    let refused = socks5_always(5).await;
    let inj = injector(
        Some(&format!("socks5://{}", refused.authority())),
        5,
        &ca,
        resolver.clone(),
    );
    let err = tokio::time::timeout(
        GENEROUS,
        inj.dialer("okx", ConnectionKind::Http)
            .connect(&target, false),
    )
    .await
    .expect("no waiting for the deadline")
    .unwrap_err();
    assert_eq!(
        err.kind(),
        &K::TargetUnreachable(Some(Refusal::Socks5(5))),
        "{err}"
    );
    assert_eq!(refused.accepted(), 2, "one connection per address");
    // A refusal that is not about the address (the proxy's rules) ends it at once.
    let ruled_out = socks5_always(2).await;
    let inj = injector(
        Some(&format!("socks5://{}", ruled_out.authority())),
        5,
        &ca,
        resolver,
    );
    let err = inj
        .dialer("okx", ConnectionKind::Http)
        .connect(&target, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &K::Refused(Refusal::Socks5(2)), "{err}");
    assert_eq!(ruled_out.accepted(), 1, "no other address asked for");
}
