//! Host patterns (`hosts` of an exchange): never a panic; a pattern that parses prints a
//! form that parses back to it; and whether it matches a host (the rest of the input)
//! is what the index that routes requests by host decides.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_runtime::HostPattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, host) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(parsed) = HostPattern::new(pattern) else {
        return;
    };
    let again = HostPattern::new(&parsed.to_string()).expect("the printed form parses");
    assert_eq!(parsed, again);
    assert_eq!(
        parsed.matches(host),
        proxy_runtime::fuzz::index_claims(&parsed, host),
        "{parsed} against {host:?}"
    );
});
