//! The loopback fixtures of proxy-runtime's tests and examples: a test CA, local HTTPS/WSS
//! origins, scripted fake proxies, addresses that never answer, a working SOCKS5 proxy, recording resolvers, and the
//! real proxy servers (microsocks, dante, tinyproxy, squid) started on loopback. `run`
//! beside this crate is the project's test command.

pub mod blackhole;
pub mod fake;
pub mod feed;
pub mod logs;
pub mod origin;
pub mod real;
pub mod redis;
pub mod resolver;
pub mod socks5;
pub mod tls;
pub mod weighing;

use std::time::Duration;

/// A recorded metric's name and labels, sorted (for tests that install a
/// `metrics_util` debugging recorder).
pub fn describe_metric(
    key: &metrics_util::CompositeKey,
) -> (String, std::collections::BTreeMap<String, String>) {
    let labels = key
        .key()
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    (key.key().name().to_owned(), labels)
}

/// A generous bound for operations that should finish at once; tests never depend on
/// speed beyond this.
pub const GENEROUS: Duration = Duration::from_secs(20);

use proxy_runtime::{ProxyInjector, ProxySettings};

/// An injector whose default HTTP and WebSocket routes go through `proxy_url` (or direct,
/// for `None`) with `timeout` seconds, trusting `ca`, resolving with `resolver`.
pub fn injector(
    proxy_url: Option<&str>,
    timeout: u16,
    ca: &tls::TestCa,
    resolver: resolver::RecordingResolver,
) -> ProxyInjector {
    let timeout = timeout.to_string();
    let mut vars = vec![("CRYPTOFEED_PROXY_ENABLED", "true")];
    if let Some(url) = proxy_url {
        vars.extend([
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url),
            (
                "CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS",
                timeout.as_str(),
            ),
            ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", url),
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__TIMEOUT_SECONDS",
                timeout.as_str(),
            ),
        ]);
    }
    let settings = ProxySettings::loader()
        .env_vars(vars)
        .load()
        .expect("test settings");
    ProxyInjector::builder(settings)
        .tls_roots(ca.roots())
        .resolver(resolver)
        .build()
}

/// An injector whose default HTTP and WebSocket routes go through `proxy_url` (or direct,
/// for `None`), trusting `ca`, built further by `build` (options, a resolver).
pub fn injector_built(
    proxy_url: Option<&str>,
    ca: &tls::TestCa,
    build: impl FnOnce(proxy_runtime::ProxyInjectorBuilder) -> proxy_runtime::ProxyInjectorBuilder,
) -> ProxyInjector {
    let mut vars = vec![("CRYPTOFEED_PROXY_ENABLED", "true")];
    if let Some(url) = proxy_url {
        vars.extend([
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", url),
            ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", url),
        ]);
    }
    let settings = ProxySettings::loader()
        .env_vars(vars)
        .load()
        .expect("test settings");
    build(ProxyInjector::builder(settings).tls_roots(ca.roots())).build()
}

/// `GET url` and the whole body, with a status of 400 or more as an error: the one call the
/// tests make of most requests.
pub trait Fetch {
    /// Sends `GET url`; the body, or the error (a status of 400 or more included).
    fn fetch(
        &self,
        url: &str,
    ) -> impl std::future::Future<Output = Result<bytes::Bytes, proxy_runtime::ProxyError>> + Send;
}

impl Fetch for proxy_runtime::HttpClient {
    async fn fetch(&self, url: &str) -> Result<bytes::Bytes, proxy_runtime::ProxyError> {
        self.get(url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await
    }
}
