//! Loading settings from variables: never a panic, an error never shows a password given
//! as a URL's password, and loaded settings never show a CONNECT header value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_runtime::ProxySettings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One variable per line, `NAME=VALUE`; names get the prefix when they lack it.
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let name = if name.to_ascii_uppercase().starts_with("CRYPTOFEED_") {
                name.to_owned()
            } else {
                format!("CRYPTOFEED_PROXY_{name}")
            };
            (name, value.to_owned())
        })
        .collect();
    match ProxySettings::loader().env_vars(vars).load() {
        Ok(settings) => {
            let shown = format!("{settings} {settings:?}");
            assert!(
                proxy_runtime::fuzz::blind_to_header_values(&settings),
                "{shown}"
            );
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            if proxy_runtime::fuzz::canary_only_as_password(text) {
                assert!(!shown.contains(proxy_runtime::fuzz::CANARY), "{shown}");
            }
        }
    }
});
