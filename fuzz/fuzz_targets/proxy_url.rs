//! Proxy URL parsing: never a panic; a URL that parses is printed with `***` in its
//! password's place (the printed form parses back with that password), and its
//! unredacted form (what the loader hands serde) parses back to the same URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_runtime::ProxyUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = ProxyUrl::parse(text) else {
        return;
    };
    let again = ProxyUrl::parse(&proxy_runtime::fuzz::unredacted(&url)).expect("round trip");
    assert_eq!(url, again);
    if url.endpoint().and_then(|e| e.password()).is_some() {
        let shown = ProxyUrl::parse(&url.to_string()).expect("the printed form parses");
        let masked = shown
            .endpoint()
            .and_then(|e| e.password())
            .map(|p| p.expose().to_owned());
        assert_eq!(masked.as_deref(), Some("***"), "{url}");
        assert_eq!(format!("{url:?}"), format!("ProxyUrl({url})"));
    }
});
