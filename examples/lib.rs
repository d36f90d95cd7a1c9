//! Examples and benchmarks of proxy-runtime. See `quickstart.rs` and `load_settings.rs`.

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
        assert_eq!(binance.timeout().get(), 15);
        assert!(s.get_proxy("coinbase", ConnectionKind::Websocket).is_none());
        let coinbase_http = s.get_proxy("coinbase", ConnectionKind::Http).unwrap();
        assert_eq!(
            coinbase_http.url().to_string(),
            "socks5h://proxy.example.com:1080"
        );
        let other_ws = s.get_proxy("kraken", ConnectionKind::Websocket).unwrap();
        assert_eq!(
            other_ws.url().to_string(),
            "socks5h://proxy.example.com:1081"
        );
    }
}
