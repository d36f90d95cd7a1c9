//! Redaction of free text, of one value and of a target URL: never a panic; a password
//! between `:` and `@` of a URL-like word never survives, nor one in a target URL's user
//! information, whatever it holds (`/`, `?`, `#`, `@`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The canary below must come only from where a password goes.
    if text.contains("Canary") {
        return;
    }
    let redacted = proxy_runtime::fuzz::redact_text(text);
    let _ = proxy_runtime::fuzz::redact_value(text);
    // A canary put where a password goes is always masked.
    let canary = format!("{text} socks5://user:Canary-Pw-0@{text}:1080");
    let shown = proxy_runtime::fuzz::redact_text(&canary);
    assert!(!shown.contains("Canary-Pw-0"), "{shown}");
    assert!(redacted.len() <= text.len() + 3 * text.matches('@').count() + 3);
    let _ = proxy_runtime::check::probe::redact_url(text);
    for target in [
        format!("https://user:Canary-Pw-0{text}@exchange.test/path"),
        // A password that starts with digits and a `/`: the digits could pass for a port.
        format!("https://user:2024/Canary-Pw-0{text}@exchange.test/path"),
    ] {
        let shown = proxy_runtime::check::probe::redact_url(&target);
        assert!(!shown.contains("Canary-Pw-0"), "{shown}");
    }
});
