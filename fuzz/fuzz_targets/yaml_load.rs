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
            if proxy_runtime::fuzz::canary_only_as_password(text) {
                assert!(!shown.contains(proxy_runtime::fuzz::CANARY), "{shown}");
            }
        }
    }
});
