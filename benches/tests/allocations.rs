//! The allocation budget of a keep-alive request, kept by the test command (and of a
//! message read through a resilient WebSocket session: none more than a plain stream's): this
//! project's `get(url).send().await?.bytes().await?` allocates at most 4 times more per
//! request than bare hyper-util + hyper-rustls doing the same work (see `keepalive.rs`),
//! over HTTP/1.1 and HTTP/2, direct and through real proxies; and a route of one proxy
//! allocates no more per request than a direct one (its connection carries nothing for
//! a pool to read): not one allocation more per request, that is, as an averaged count
//! may differ by a fraction when something allocates once in a while.
//!
//! Allocations are counted on the client's thread alone (`allocation-counter`), with the
//! client on a current-thread runtime so that the thread does all of the client's work;
//! the origin runs on other threads and the proxies in other processes. Counts, not
//! times: the result is the same on a loaded machine.

use proxy_benches::keepalive::{KeepAlive, Version};
use proxy_tests::origin::Origin;
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;

/// How many more allocations per request than the bare client this project may make.
const BUDGET: f64 = 4.0;

struct Fixture {
    ca: TestCa,
    url: String,
    _origin: Origin,
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the origin's runtime");
    let ca = TestCa::new();
    let origin = runtime.block_on(Origin::start(&ca));
    let url = format!("https://127.0.0.1:{}/api/v3/ping", origin.https.port());
    Fixture {
        ca,
        url,
        _origin: origin,
        _runtime: runtime,
    }
}

/// Allocations per keep-alive request of the client `make` builds: 200 requests on one
/// connection, after 20 that open it and warm it.
fn per_request(url: &str, make: impl FnOnce() -> KeepAlive) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client's runtime");
    let client = runtime.block_on(async { make() });
    runtime.block_on(async {
        for _ in 0..20 {
            assert!(client.get(url).await > 0);
        }
    });
    const N: u64 = 200;
    let counted = allocation_counter::measure(|| {
        runtime.block_on(async {
            for _ in 0..N {
                assert!(client.get(url).await > 0);
            }
        });
    });
    assert!(
        counted.count_total > 0,
        "the counting allocator is not the global one: nothing was counted"
    );
    counted.count_total as f64 / N as f64
}

/// Ours and the bare client's allocations per request, on `version` and through `proxy`.
fn both(f: &Fixture, proxy: Option<&str>, version: Version) -> (f64, f64) {
    let pem = f.ca.ca_pem().as_bytes();
    let ours = per_request(&f.url, || KeepAlive::ours(pem, proxy, version));
    let bare = per_request(&f.url, || KeepAlive::bare(pem, proxy, version));
    eprintln!("{version:?} via {proxy:?}: ours {ours:.2}, bare {bare:.2} allocations per request");
    (ours, bare)
}

fn assert_within_budget(what: &str, (ours, bare): (f64, f64)) {
    assert!(
        ours <= bare + BUDGET,
        "{what}: {ours:.2} allocations per keep-alive request, bare hyper-util {bare:.2}: \
         more than {BUDGET} over"
    );
}

#[test]
fn direct_requests_allocate_within_four_of_bare_hyper_util() {
    let f = fixture();
    assert_within_budget("HTTP/1.1, direct", both(&f, None, Version::Http1));
    assert_within_budget("HTTP/2, direct", both(&f, None, Version::Http2));
}

#[test]
fn proxied_requests_allocate_within_four_of_bare_hyper_util_and_no_more_than_direct() {
    let f = fixture();
    let microsocks = RealProxy::microsocks(false);
    let tinyproxy = RealProxy::tinyproxy(false);
    let pem = f.ca.ca_pem().as_bytes();
    for version in [Version::Http1, Version::Http2] {
        let direct = per_request(&f.url, || KeepAlive::ours(pem, None, version));
        for (name, url) in [
            ("microsocks", microsocks.url("socks5h", None)),
            ("tinyproxy", tinyproxy.url("http", None)),
        ] {
            let (ours, bare) = both(&f, Some(&url), version);
            assert_within_budget(&format!("{version:?} via {name}"), (ours, bare));
            // Within half an allocation: an allocation made once in a while (a buffer
            // that grows, a timer) is not one made per request.
            assert!(
                ours <= direct + 0.5,
                "{version:?} via {name}: {ours:.2} allocations per request, direct {direct:.2}: \
                 a route of one proxy must cost a request nothing more"
            );
        }
    }
}

/// Allocations per pushed WSS message read through `read` (which asks the origin for `n`
/// messages and reads them), after a first batch that warms the buffers.
fn per_message<S>(
    runtime: &tokio::runtime::Runtime,
    stream: &mut S,
    read: impl Fn(&mut S, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>,
) -> f64 {
    runtime.block_on(read(stream, 500));
    const N: usize = 5000;
    let counted = allocation_counter::measure(|| runtime.block_on(read(stream, N)));
    counted.count_total as f64 / N as f64
}

#[test]
fn a_session_message_allocates_no_more_than_a_plain_stream_message() {
    use futures_util::{SinkExt, StreamExt};
    use proxy_runtime::tungstenite::Message;

    let f = fixture();
    let wss = format!("wss://127.0.0.1:{}/ws", f._origin.wss.port());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the client's runtime");
    let injector = proxy_runtime::ProxyInjector::builder(proxy_runtime::ProxySettings::new(false))
        .tls_roots(f.ca.roots())
        .build();
    let (mut plain, _) = runtime
        .block_on(injector.connect_websocket("binance", wss.as_str()))
        .expect("WSS");
    let mut session = runtime
        .block_on(injector.websocket_session("binance", wss.as_str()).open())
        .expect("WSS session");
    runtime.block_on(async {
        plain.next().await.expect("greeting").expect("greeting");
        session.next().await.expect("greeting").expect("greeting");
    });
    let plain_per = per_message(&runtime, &mut plain, |ws, n| {
        Box::pin(async move {
            ws.send(Message::text(format!("count {n}")))
                .await
                .expect("send");
            while ws.next().await.expect("open").expect("a message") != Message::text("done") {}
        })
    });
    let session_per = per_message(&runtime, &mut session, |s, n| {
        Box::pin(async move {
            s.send(Message::text(format!("count {n}")))
                .await
                .expect("send");
            while s.next().await.expect("open").expect("a message").message != Message::text("done")
            {
            }
        })
    });
    eprintln!("allocations per pushed message: session {session_per:.3}, plain {plain_per:.3}");
    // An averaged count moves by a few hundredths when something allocates once in a while.
    assert!(
        session_per <= plain_per + 0.05,
        "a session allocates {session_per:.3} per message, a plain stream {plain_per:.3}"
    );
}
