//! The allocation budget of a keep-alive request, kept by the test command: this
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
