//! What reloads an injector without being asked in code: a watch of the settings file,
//! and SIGHUP.
//!
//! The file's directory is watched, not the file: an editor, `mv`, or a Kubernetes
//! ConfigMap (which swaps a symbolic link, `..data`) puts a new file in place by renaming
//! it, and a watch of the old file would see nothing more. Every change in the directory
//! starts the debounce; once it is quiet, the file is read, and only bytes that differ
//! from the last ones read are loaded, so that a broken file is reported once, not at
//! every unrelated change beside it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};

use super::reload::{ReloadError, ReloadReport};

/// What the watch and the signal reload: an injector's settings.
pub(super) trait Reloadable: Send + Sync + 'static {
    /// Reads the settings again and puts them in force (a failure is logged and counted).
    fn reload(&self) -> Result<ReloadReport, ReloadError>;
}

/// A watch of the settings file: it stops when dropped (its events' channel closes, and
/// the thread that waits on it ends).
pub(super) struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

impl FileWatch {
    /// Watches `file`, the settings file, reloading `core` once changes have been quiet
    /// for `debounce`; `None` (logged at error level) without a file, or when the system
    /// refuses the watch.
    pub(super) fn start<C: Reloadable>(
        core: &Arc<C>,
        file: Option<PathBuf>,
        debounce: Duration,
    ) -> Option<Self> {
        let Some(path) = file else {
            tracing::error!(
                "reload.watch is set, but the settings were not read from a file: nothing is watched"
            );
            return None;
        };
        let (events, received) = std::sync::mpsc::channel();
        let shown = path.display().to_string();
        let refused = |e: &dyn std::fmt::Display| {
            tracing::error!(file = %shown, error = %e, "the settings file cannot be watched; reload with SIGHUP or ProxyInjector::reload instead");
        };
        let mut watcher = match notify::recommended_watcher(events) {
            Ok(watcher) => watcher,
            Err(e) => {
                refused(&e);
                return None;
            }
        };
        for dir in directories(&path) {
            if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
                refused(&e);
                return None;
            }
        }
        let read = std::fs::read(&path).ok();
        let core: Weak<dyn Reloadable> = Arc::downgrade(core) as _;
        let thread = std::thread::Builder::new()
            .name("proxy-settings-watch".to_owned())
            .spawn(move || run(&core, &path, &received, debounce, read));
        if let Err(e) = thread {
            refused(&e);
            return None;
        }
        Some(Self { _watcher: watcher })
    }
}

/// The directories whose changes may change `file`: its own, and, when it is a symbolic
/// link, the directory of the file it leads to.
fn directories(file: &Path) -> Vec<PathBuf> {
    let parent = |p: &Path| match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![parent(file)];
    if let Ok(real) = std::fs::canonicalize(file) {
        let real_dir = parent(&real);
        let same = std::fs::canonicalize(&dirs[0]).is_ok_and(|d| d == real_dir);
        if !same {
            dirs.push(real_dir);
        }
    }
    dirs
}

/// Waits for changes until the watch is dropped or the injector is gone; reloads when a
/// change has been quiet for `debounce` and the file's bytes differ from `last` read.
fn run(
    core: &Weak<dyn Reloadable>,
    file: &Path,
    received: &Receiver<notify::Result<notify::Event>>,
    debounce: Duration,
    mut last: Option<Vec<u8>>,
) {
    while let Ok(event) = received.recv() {
        if !changes(&event) {
            continue;
        }
        loop {
            match received.recv_timeout(debounce) {
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let read = std::fs::read(file).ok();
        if read == last {
            continue;
        }
        last = read;
        let Some(core) = core.upgrade() else {
            return;
        };
        tracing::debug!(file = %file.display(), "the settings file changed: reloading");
        // A failure is logged and counted by the reload itself.
        let _ = core.reload();
    }
}

/// Whether `event` may change a file: not a mere read (the watch reads the file itself).
fn changes(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Ok(event) => !matches!(
            event.kind,
            EventKind::Access(notify::event::AccessKind::Open(_))
                | EventKind::Access(notify::event::AccessKind::Read)
                | EventKind::Access(notify::event::AccessKind::Close(
                    notify::event::AccessMode::Read
                ))
        ),
        // An error of the watch (events lost): read the file to be sure.
        Err(_) => true,
    }
}

/// Starts the task that reloads `core` at each SIGHUP, for as long as it lives; `None`
/// (logged at error level) outside a Tokio runtime, or where there is no SIGHUP.
pub(super) fn on_sighup<C: Reloadable>(core: &Arc<C>) -> Option<tokio::task::AbortHandle> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                "reload_on_sighup: the injector was built outside a Tokio runtime, so SIGHUP will not reload it"
            );
            return None;
        };
        let _in_runtime = runtime.enter();
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::error!(error = %e, "reload_on_sighup: SIGHUP cannot be received");
                return None;
            }
        };
        let core = Arc::downgrade(core);
        let task = runtime.spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(core) = core.upgrade() else {
                    return;
                };
                tracing::info!("SIGHUP: reloading the proxy settings");
                if let Err(e @ ReloadError::NoLoader) = core.reload() {
                    tracing::error!(error = %e, "SIGHUP: the proxy settings cannot be reloaded");
                }
            }
        });
        Some(task.abort_handle())
    }
    #[cfg(not(unix))]
    {
        let _ = core;
        None
    }
}
