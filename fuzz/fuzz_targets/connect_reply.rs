//! The HTTP CONNECT reply reader against a proxy that sends arbitrary bytes, in pieces of
//! arbitrary size: never a panic, never a tunnel unless the reply is a complete 2xx head,
//! and the bytes after that head are the tunnel's, none lost.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_runtime::ProxyUrl;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, reply)) = data.split_first() else {
        return;
    };
    let proxy: ProxyUrl = "http://user:Canary-Pw-0@proxy.test:3128".parse().unwrap();
    match proxy_runtime::fuzz::connect_reply(&proxy, reply, usize::from(piece)) {
        Ok(rest) => {
            assert!(
                reply.starts_with(b"HTTP/1."),
                "a tunnel without a status line"
            );
            assert!(reply.ends_with(&rest), "the tunnel lost bytes");
        }
        Err(e) => assert!(!e.contains("Canary-Pw-0"), "{e}"),
    }
});
