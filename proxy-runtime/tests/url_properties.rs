//! Property tests: proxy URL validation never panics, and the redacted forms of a valid
//! URL never contain its password.

use proptest::prelude::*;
use proxy_runtime::{ProxyScheme, ProxyUrl};

/// Percent-encodes every byte that is not unreserved.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn scheme() -> impl Strategy<Value = ProxyScheme> {
    prop_oneof![
        Just(ProxyScheme::Http),
        Just(ProxyScheme::Https),
        Just(ProxyScheme::Socks5),
        Just(ProxyScheme::Socks5h),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsing_arbitrary_text_never_panics(s in any::<String>()) {
        let _ = ProxyUrl::parse(&s);
    }

    #[test]
    fn parsing_url_shaped_text_never_panics(
        scheme in "[a-zA-Z0-9]{0,8}",
        userinfo in proptest::option::of("[a-zA-Z0-9:%@/\\[\\] ._-]{0,20}"),
        host in "[a-zA-Z0-9:.%\\[\\]_-]{0,20}",
        port in proptest::option::of("[0-9a-z+-]{0,7}"),
        tail in "[/?#a-z]{0,4}",
    ) {
        let mut s = format!("{scheme}://");
        if let Some(u) = &userinfo { s.push_str(u); s.push('@'); }
        s.push_str(&host);
        if let Some(p) = &port { s.push(':'); s.push_str(p); }
        s.push_str(&tail);
        if let Ok(url) = ProxyUrl::parse(&s) {
            // Whatever is accepted has a host and a nonzero port.
            if let Some(e) = url.endpoint() {
                prop_assert!(e.port() != 0);
            }
        }
    }

    #[test]
    fn redacted_forms_never_contain_the_password(
        scheme in scheme(),
        user in "[a-z]{1,12}",
        // Upper-case prefix: the user and host (lower case) can never contain it.
        secret in "PW[A-Z0-9]{4,10}",
        extra in any::<String>().prop_map(|s| s.chars().take(12).collect::<String>()),
        host in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        port in 1u16..,
    ) {
        let password = format!("{secret}{extra}");
        prop_assume!(password.len() <= 255);
        let url = format!("{scheme}://{user}:{}@{host}:{port}", encode(&password));
        let parsed = ProxyUrl::parse(&url).expect("valid by construction");
        let endpoint = parsed.endpoint().unwrap();
        prop_assert_eq!(endpoint.password().unwrap().expose(), password.as_str());
        for shown in [parsed.to_string(), format!("{parsed:?}"), endpoint.to_string(), format!("{endpoint:?}")] {
            prop_assert!(!shown.contains(&secret), "{}", shown);
            prop_assert!(!shown.contains(&encode(&password)), "{}", shown);
        }
        prop_assert_eq!(parsed.to_string(), format!("{scheme}://{user}:***@{host}:{port}"));
    }
}
