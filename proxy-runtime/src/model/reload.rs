//! When the settings are read again while the process runs: the `reload` entry.

use std::time::Duration;

use serde::Deserialize;

use super::session::Millis;
use proxy_derive::Settings;

/// How long a change to the settings file must be quiet before it is read, by default.
const DEBOUNCE_MS: u64 = 250;

/// When the settings are read again without a restart: the `reload` entry of the
/// settings.
///
/// With `watch: true`, an injector built from a loader
/// ([`ProxyInjector::from_loader`](crate::ProxyInjector::from_loader)) watches the
/// settings file's directory and reloads once changes have been quiet for `debounce_ms`.
/// A directory is watched, not the file: editors, `mv` and Kubernetes ConfigMaps replace
/// a file by renaming another over it (a ConfigMap swaps a symbolic link), which a watch
/// on the file itself would miss. Whether `watch` is set is read when the injector is
/// built; a reload does not start or stop the watch.
///
/// ```
/// use proxy_runtime::ProxySettings;
/// use std::time::Duration;
/// let settings = ProxySettings::loader()
///     .env_vars([("CRYPTOFEED_PROXY_RELOAD__WATCH", "true")])
///     .load()?;
/// assert!(settings.reload().watch());
/// assert_eq!(settings.reload().debounce(), Duration::from_millis(250));
/// # Ok::<(), proxy_runtime::LoadError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Settings)]
#[serde(deny_unknown_fields)]
pub struct ReloadSettings {
    /// Whether the settings file is watched, and the settings reloaded when it changes.
    #[serde(default)]
    watch: Option<bool>,
    /// How long changes to the file must be quiet before it is read, in ms (250 built in).
    #[serde(default)]
    debounce_ms: Option<Millis>,
}

impl ReloadSettings {
    /// No watch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same watching the settings file when `watch`.
    pub fn with_watch(self, watch: bool) -> Self {
        Self {
            watch: Some(watch),
            ..self
        }
    }

    /// The same waiting `debounce` (whole milliseconds) of quiet before reading.
    pub fn with_debounce(self, debounce: Duration) -> Self {
        Self {
            debounce_ms: Some(Millis::saturating(debounce)),
            ..self
        }
    }

    /// Whether the settings file is watched (`false` built in).
    pub fn watch(&self) -> bool {
        self.watch.unwrap_or(false)
    }

    /// How long changes must be quiet before the file is read.
    pub fn debounce(&self) -> Duration {
        self.debounce_ms
            .map_or(Duration::from_millis(DEBOUNCE_MS), Millis::as_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_is_off_and_the_debounce_a_quarter_second_unless_set() {
        let reload = ReloadSettings::new();
        assert!(!reload.watch());
        assert_eq!(reload.debounce(), Duration::from_millis(250));
        let reload = reload
            .with_watch(true)
            .with_debounce(Duration::from_millis(40));
        assert!(reload.watch());
        assert_eq!(reload.debounce(), Duration::from_millis(40));
        assert!(!ReloadSettings::new().with_watch(false).watch());
    }
}
