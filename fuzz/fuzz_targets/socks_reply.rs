//! The SOCKS4/4a/5/5h handshakes against a proxy that sends arbitrary bytes, in pieces of
//! arbitrary size, for targets of every kind: never a panic, and no password in an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_runtime::{ProxyUrl, Target};

const PROXIES: [&str; 6] = [
    "socks5h://user:Canary-Pw-0@proxy.test:1080",
    "socks5h://proxy.test:1080",
    "socks5://proxy.test:1080",
    "socks4a://uid@proxy.test:1080",
    "socks4://proxy.test:1080",
    "socks4a://proxy.test:1080",
];

fuzz_target!(|data: &[u8]| {
    let [which, piece, host_len, reply @ ..] = data else {
        return;
    };
    let proxy: ProxyUrl = PROXIES[usize::from(*which) % PROXIES.len()]
        .parse()
        .unwrap();
    let name = "h".repeat(usize::from(*host_len) + 1);
    let target = match which % 3 {
        0 => Target::new(&name, 443).unwrap(),
        1 => Target::new("127.0.0.1", 443).unwrap(),
        _ => Target::new("::1", 443).unwrap(),
    };
    let resolved = ["127.0.0.1:443".parse().unwrap()];
    let local = proxy
        .endpoint()
        .is_some_and(|e| e.scheme().resolves_locally());
    let resolved = local.then_some(&resolved[..]);
    if let Err(e) =
        proxy_runtime::fuzz::socks_reply(&proxy, &target, resolved, reply, usize::from(*piece))
    {
        assert!(!e.contains("Canary-Pw-0"), "{e}");
    }
});
