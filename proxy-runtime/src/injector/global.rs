//! Which injector is in force: the one installed for the current scope
//! ([`with_proxy_injector`]), else the one installed for the process
//! ([`init_proxy_system`]), else one loaded once from the environment.

use std::future::Future;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use super::ProxyInjector;
use crate::model::proxy_settings::ProxySettings;

static GLOBAL: RwLock<Option<Arc<ProxyInjector>>> = RwLock::new(None);
static FROM_ENV: OnceLock<Arc<ProxyInjector>> = OnceLock::new();

tokio::task_local! {
    static SCOPED: Arc<ProxyInjector>;
}

/// Installs `settings` for the whole process (replacing any earlier ones). Settings built
/// in code are used exactly as given.
pub fn init_proxy_system(settings: ProxySettings) {
    init_proxy_system_with(ProxyInjector::new(settings));
}

/// Installs an injector (with its TLS roots and resolver) for the whole process.
pub fn init_proxy_system_with(injector: ProxyInjector) {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(injector));
}

/// The proxy system in force: the one installed for the current scope
/// ([`with_proxy_injector`]), else the one installed for the process
/// ([`init_proxy_system`]), else settings loaded once from the environment and
/// `CRYPTOFEED_CONFIG`. If that load fails, the injector fails every connection with the
/// load error, which is logged once.
pub fn proxy_injector() -> Arc<ProxyInjector> {
    if let Ok(scoped) = SCOPED.try_with(Arc::clone) {
        return scoped;
    }
    if let Some(global) = GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return global.clone();
    }
    FROM_ENV
        .get_or_init(|| {
            Arc::new(match ProxySettings::load() {
                Ok(settings) => ProxyInjector::new(settings),
                Err(e) => {
                    tracing::error!(error = %e, "proxy settings could not be loaded; every proxied connection will fail");
                    ProxyInjector::failed(e)
                }
            })
        })
        .clone()
}

/// Runs `future` with `injector` in force for it alone (and not for tasks it spawns).
/// Tests use it to give each test its own settings while running in parallel.
pub async fn with_proxy_injector<F: Future>(injector: Arc<ProxyInjector>, future: F) -> F::Output {
    SCOPED.scope(injector, future).await
}

/// Runs `f` with `injector` in force for it alone (synchronous code, such as a
/// constructor).
pub fn with_proxy_injector_sync<R>(injector: Arc<ProxyInjector>, f: impl FnOnce() -> R) -> R {
    SCOPED.sync_scope(injector, f)
}
