//! Which injector is in force: the one installed for the current scope
//! ([`with_proxy_injector`]), else the one installed for the process
//! ([`init_proxy_system`]), else one loaded once from the environment.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use super::ProxyInjector;
use crate::model::proxy_settings::ProxySettings;

static GLOBAL: RwLock<Option<Arc<ProxyInjector>>> = RwLock::new(None);
static FROM_ENV: OnceLock<Arc<ProxyInjector>> = OnceLock::new();
/// Whether installing settings after the environment's served routes was logged.
static LATE_INSTALL_LOGGED: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    static SCOPED: Arc<ProxyInjector>;
}

/// Installs `settings` for the whole process (replacing any earlier ones). Settings built
/// in code are used exactly as given.
pub fn init_proxy_system(settings: ProxySettings) {
    init_proxy_system_with(ProxyInjector::new(settings));
}

/// Installs an injector (with its TLS roots and resolver) for the whole process.
///
/// Clients built before keep the routes they were built with. When the settings loaded
/// from the environment (the fallback of [`proxy_injector`]) already served some
/// exchanges, this is logged once at error level, naming them: their clients (a
/// `LazyLock`, a library that built one early) do not follow the settings installed now.
pub fn init_proxy_system_with(injector: ProxyInjector) {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(injector));
    late_install();
}

/// Logs, once, that settings were installed while the environment's injector served
/// routes, naming them. Checked from both sides (after an install, and after the
/// environment's injector hands out a new route), so that neither order goes unsaid.
fn late_install() {
    let served = FROM_ENV.get().map(|env| env.served()).unwrap_or_default();
    if !served.is_empty() && !LATE_INSTALL_LOGGED.swap(true, Ordering::Relaxed) {
        let exchanges: Vec<String> = served.iter().map(ToString::to_string).collect();
        tracing::error!(
            exchanges = %exchanges.join(", "),
            "proxy settings were installed after the settings loaded from the environment had served these exchanges: the clients built before keep the environment's routes; call init_proxy_system before building clients"
        );
    }
}

/// The environment's injector handed out a route: late, if settings are installed.
fn served_by_env() {
    if GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some()
    {
        late_install();
    }
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
    FROM_ENV.get_or_init(|| Arc::new(from_env())).clone()
}

/// The injector of the settings in the process environment (and `CRYPTOFEED_CONFIG`):
/// what is in force when nothing was installed. Says once what an operator would not
/// otherwise learn: no settings at all (info), a settings file that gives none (warn), a
/// load that failed (error; every connection then fails).
fn from_env() -> ProxyInjector {
    let loader = ProxySettings::loader().process_env();
    let read = super::watch::Read::file_of(&loader);
    match loader.load_with_origins() {
        Ok((settings, origins)) => {
            for warning in ProxySettings::file_warnings(&origins) {
                tracing::warn!("{warning}");
            }
            if origins.iter().next().is_none() && origins.files().is_empty() {
                tracing::info!(
                    "no proxy settings in the environment (no CRYPTOFEED_PROXY_ variable, no CRYPTOFEED_CONFIG file): connections go direct unless settings are installed (init_proxy_system) before clients are built"
                );
            }
            // Built from its loader, so that `reload` (and `reload.watch`) read it again.
            ProxyInjector::builder_from(Ok(settings), Some(loader))
                .read(read)
                .build()
                .on_new_route(served_by_env)
        }
        Err(e) => {
            tracing::error!(error = %e, "proxy settings could not be loaded; every proxied connection will fail");
            // Kept with its loader: `reload` (and the file's watch) can put the settings in
            // force once they are repaired.
            ProxyInjector::builder_from(Err(crate::error::ProxyError::settings(e)), Some(loader))
                .read(read)
                .build()
        }
    }
}

/// Runs `future` with `injector` in force for it alone. Tests use it to give each test its
/// own settings while running in parallel.
///
/// It is a task-local: it does not follow `tokio::spawn`. A task spawned inside the scope
/// (a client built in it, a connection opened in it) sees the process's settings
/// ([`init_proxy_system`], else the environment's), not `injector`; build clients before
/// spawning, or wrap the spawned future in `with_proxy_injector` too.
pub async fn with_proxy_injector<F: Future>(injector: Arc<ProxyInjector>, future: F) -> F::Output {
    SCOPED.scope(injector, future).await
}

/// Runs `f` with `injector` in force for it alone (synchronous code, such as a
/// constructor).
pub fn with_proxy_injector_sync<R>(injector: Arc<ProxyInjector>, f: impl FnOnce() -> R) -> R {
    SCOPED.sync_scope(injector, f)
}
