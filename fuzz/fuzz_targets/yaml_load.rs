//! Loading settings from a YAML file: never a panic, never unbounded work (libFuzzer's
//! timeout and memory limit catch those), no password in an error, and no CONNECT header
//! value in the loaded settings' output (a refused value is never shown: the loader's own
//! tests pin that).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_runtime::ProxySettings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ProxySettings::loader()
        .yaml_str("fuzz.yaml", text)
        .load_with_origins()
    {
        Ok((settings, origins)) => {
            let shown = format!("{settings} {settings:?}");
            assert!(
                proxy_runtime::fuzz::blind_to_header_values(&settings),
                "{shown}"
            );
            let _ = format!("{origins:?}");
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            if only_as_password(text) {
                assert!(!shown.contains(CANARY), "{shown}");
            }
        }
    }
});

/// The password the seeds give in URLs.
const CANARY: &str = "Canary-Pw-0";

/// Whether the canary stands only in a password's place (`:Canary-Pw-0@`): elsewhere (a
/// user name, a strategy) it is no secret and may be shown.
fn only_as_password(text: &str) -> bool {
    text.match_indices(CANARY)
        .all(|(i, _)| text[..i].ends_with(':') && text[i + CANARY.len()..].starts_with('@'))
}
