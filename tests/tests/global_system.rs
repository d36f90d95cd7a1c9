//! `init_proxy_system` installs settings for the process; a scope still overrides them.
//! (Its own test binary: process-wide state.)

use std::sync::Arc;

use proxy_runtime::{
    ConnectionKind, ProxyInjector, ProxySettings, init_proxy_system, proxy_injector,
    with_proxy_injector_sync,
};

#[test]
fn process_wide_settings_and_a_scope_over_them() {
    let global = ProxySettings::loader()
        .env_vars([
            ("CRYPTOFEED_PROXY_ENABLED", "true"),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__WEBSOCKET__URL",
                "socks5h://global.test:1080",
            ),
        ])
        .load()
        .unwrap();
    init_proxy_system(global);
    let seen = proxy_injector().dialer("kraken", ConnectionKind::Websocket);
    assert_eq!(seen.proxy().as_deref(), Some("socks5h://global.test:1080"));
    assert_eq!(
        proxy_injector()
            .dialer("kraken", ConnectionKind::Http)
            .proxy(),
        None
    );

    let scoped = Arc::new(ProxyInjector::new(ProxySettings::new(false)));
    with_proxy_injector_sync(scoped, || {
        assert_eq!(
            proxy_injector()
                .dialer("kraken", ConnectionKind::Websocket)
                .proxy(),
            None
        );
    });
    assert!(
        proxy_injector()
            .dialer("kraken", ConnectionKind::Websocket)
            .proxy()
            .is_some()
    );

    // Settings built in code and disabled: direct, as given.
    init_proxy_system(ProxySettings::new(false));
    assert_eq!(
        proxy_injector()
            .dialer("kraken", ConnectionKind::Websocket)
            .proxy(),
        None
    );
}
