//! Examples of proxy-runtime: `quickstart.rs` (a local exchange, see [`local`], and a
//! local SOCKS5 proxy) and `binance.rs` (a client for the real exchange). Benchmarks are
//! in `benches/`.

pub mod local;

use std::path::PathBuf;

/// The YAML file the quickstart loads.
pub fn config_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config.yaml")
}

#[cfg(test)]
mod tests {
    use proxy_runtime::{ConnectionKind, ProxySettings};

    #[test]
    fn shipped_config_routes_as_its_comments_say() {
        let s = ProxySettings::loader()
            .yaml_file(super::config_path())
            .load()
            .unwrap();
        assert!(s.enabled());
        for kind in ConnectionKind::ALL {
            let local = s.get_proxy("localex", kind).unwrap();
            assert_eq!(local.url().to_string(), "socks5h://127.0.0.1:21080");
            assert_eq!(local.timeout().get(), 5);
        }
        let binance = s.get_proxy("binance", ConnectionKind::Http).unwrap();
        assert_eq!(
            binance.url().to_string(),
            "http://trader:***@binance-proxy.example.com:8080"
        );
        assert_eq!(
            binance
                .url()
                .endpoint()
                .unwrap()
                .password()
                .unwrap()
                .expose(),
            "change@me"
        );
        assert!(s.get_proxy("binance", ConnectionKind::Websocket).is_none());
        assert!(s.get_proxy("kraken", ConnectionKind::Http).is_none());
    }
}
