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
use crate::model::proxy_settings::ProxySettings;
use crate::settings::load::Loader;

/// The settings file's bytes as read before a load from it: what the watch compares the
/// file with first.
#[derive(Default)]
pub(super) struct Read(Option<Vec<u8>>);

impl Read {
    /// The bytes of the file `loader` reads, now (none without a file, or when it cannot
    /// be read: the load says why).
    pub(super) fn file_of(loader: &Loader<ProxySettings>) -> Self {
        Self(loader.file().and_then(|file| std::fs::read(file).ok()))
    }
}

impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bytes may hold passwords: their length only.
        match &self.0 {
            Some(bytes) => write!(f, "Read({} bytes)", bytes.len()),
            None => f.write_str("Read(none)"),
        }
    }
}

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
    /// refuses the watch. `read` is what the settings in force were loaded from: the file
    /// is compared with it as soon as the watch is up, so that a change made in between
    /// is put in force too (once quiet, like any change).
    pub(super) fn start<C: Reloadable>(
        core: &Arc<C>,
        file: Option<PathBuf>,
        debounce: Duration,
        read: Read,
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
        let dirs = directories(&path);
        for dir in &dirs {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                refused(&e);
                return None;
            }
        }
        let names = names(&path);
        let core: Weak<dyn Reloadable> = Arc::downgrade(core) as _;
        // The reloads run in the runtime the injector was built in, if any (the timers of
        // the routes' gauges need one).
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name("proxy-settings-watch".to_owned())
            .spawn(move || {
                let _in_runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
                let watched = Watched {
                    core,
                    file: path,
                    names,
                    debounce,
                };
                watched.run(&received, read.0);
            });
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

/// The names in a watched directory whose change may change the settings file: its own
/// name, and the name of the file a symbolic link leads to. (A Kubernetes ConfigMap's
/// `..data` links, whose names start with `..`, are taken as well.)
fn names(file: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<std::ffi::OsString> = file.file_name().into_iter().map(Into::into).collect();
    if let Some(real) = std::fs::canonicalize(file)
        .ok()
        .and_then(|real| real.file_name().map(Into::into))
        && !names.contains(&real)
    {
        names.push(real);
    }
    names
}

/// One watched settings file.
struct Watched {
    core: Weak<dyn Reloadable>,
    file: PathBuf,
    names: Vec<std::ffi::OsString>,
    debounce: Duration,
}

impl Watched {
    /// Compares the file with `last` (what the settings in force were read from) once,
    /// then waits for changes until the watch is dropped or the injector is gone;
    /// reloads when a change has been quiet for the debounce (or changes have gone on
    /// for ten times it, one second at least) and the file's bytes differ from the last
    /// read. A difference found at the start is a change like any other: it may be a
    /// write still under way, so it waits for quiet too.
    fn run(&self, received: &Receiver<notify::Result<notify::Event>>, mut last: Option<Vec<u8>>) {
        let mut changed = std::fs::read(&self.file).ok() != last;
        loop {
            if !changed {
                match received.recv() {
                    Ok(event) if self.changes(&event) => {}
                    Ok(_) => continue,
                    Err(_) => return,
                }
            }
            changed = false;
            if !self.quiet(received) || !self.reload_if_changed(&mut last) {
                return;
            }
        }
    }

    /// Waits until no change to the file has come for the debounce, or changes have gone
    /// on for ten times it (one second at least); events of other files of the directory
    /// neither wait nor count. `false` when the watch is dropped.
    fn quiet(&self, received: &Receiver<notify::Result<notify::Event>>) -> bool {
        let started = std::time::Instant::now();
        let longest = started + (self.debounce * 10).max(Duration::from_secs(1));
        let mut quiet_at = started + self.debounce;
        loop {
            let now = std::time::Instant::now();
            if now >= quiet_at {
                return true;
            }
            match received.recv_timeout(quiet_at - now) {
                Ok(event) if self.changes(&event) => {
                    quiet_at = (std::time::Instant::now() + self.debounce).min(longest);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Reloads when the file's bytes differ from `last` (which they then become); `false`
    /// when the injector is gone.
    fn reload_if_changed(&self, last: &mut Option<Vec<u8>>) -> bool {
        let read = std::fs::read(&self.file).ok();
        if read == *last {
            return true;
        }
        *last = read;
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        tracing::debug!(file = %self.file.display(), "the settings file changed: reloading");
        // A failure is logged and counted by the reload itself.
        let _ = core.reload();
        true
    }

    /// Whether `event` may change the settings file: an event on its name, its link's
    /// target's or a `..` link's, and not a mere read (the watch reads the file itself).
    fn changes(&self, event: &notify::Result<notify::Event>) -> bool {
        let Ok(event) = event else {
            // An error of the watch (events lost): read the file to be sure.
            return true;
        };
        let ours = event.paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                self.names.iter().any(|n| n == name) || name.as_encoded_bytes().starts_with(b"..")
            })
        });
        ours && !matches!(
            event.kind,
            EventKind::Access(notify::event::AccessKind::Open(_))
                | EventKind::Access(notify::event::AccessKind::Read)
                | EventKind::Access(notify::event::AccessKind::Close(
                    notify::event::AccessMode::Read
                ))
        )
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
                // Files are read and routes made: off the runtime's workers.
                let reloaded = tokio::task::spawn_blocking(move || core.reload()).await;
                if let Ok(Err(e @ ReloadError::NoLoader)) = reloaded {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directories_watched_are_the_file_s_and_its_link_target_s() {
        assert_eq!(
            directories(Path::new("settings.yaml")),
            [PathBuf::from(".")],
            "a bare name is in the working directory"
        );
        let root = std::env::temp_dir().join(format!("watch-dirs-{}", std::process::id()));
        let (here, there) = (root.join("here"), root.join("there"));
        std::fs::create_dir_all(&here).unwrap();
        std::fs::create_dir_all(&there).unwrap();
        std::fs::write(there.join("real.yaml"), "proxy: {}\n").unwrap();
        std::fs::write(here.join("plain.yaml"), "proxy: {}\n").unwrap();
        std::os::unix::fs::symlink(there.join("real.yaml"), here.join("link.yaml")).unwrap();
        assert_eq!(
            directories(&here.join("plain.yaml")),
            std::slice::from_ref(&here)
        );
        let linked = directories(&here.join("link.yaml"));
        assert_eq!(linked.len(), 2, "{linked:?}");
        assert_eq!(linked[0], here);
        assert_eq!(linked[1], std::fs::canonicalize(&there).unwrap());
        assert_eq!(
            names(&here.join("link.yaml")),
            ["link.yaml", "real.yaml"].map(std::ffi::OsString::from)
        );
        let _ = std::fs::remove_dir_all(root);
    }

    /// Records the file's bytes at each reload.
    struct Recorder {
        file: PathBuf,
        seen: std::sync::Mutex<Vec<Vec<u8>>>,
    }

    impl Reloadable for Recorder {
        fn reload(&self) -> Result<ReloadReport, ReloadError> {
            let bytes = std::fs::read(&self.file).unwrap_or_default();
            self.seen.lock().unwrap().push(bytes);
            Err(ReloadError::NoLoader)
        }
    }

    /// A watch, on a thread of its own, of `settings.yaml` in `root` (both made, the file
    /// holding `text`), whose settings in force were read from the bytes `old`: the
    /// file's path, what the watch reloads, the sender of its events, and its thread.
    fn watching(
        root: &Path,
        text: &str,
        debounce: Duration,
    ) -> (
        PathBuf,
        Arc<Recorder>,
        std::sync::mpsc::Sender<notify::Result<notify::Event>>,
        std::thread::JoinHandle<()>,
    ) {
        std::fs::create_dir_all(root).unwrap();
        let file = root.join("settings.yaml");
        std::fs::write(&file, text).unwrap();
        let core = Arc::new(Recorder {
            file: file.clone(),
            seen: std::sync::Mutex::default(),
        });
        let (events, received) = std::sync::mpsc::channel();
        let watched = Watched {
            core: Arc::downgrade(&core) as Weak<dyn Reloadable>,
            file: file.clone(),
            names: names(&file),
            debounce,
        };
        let running = std::thread::spawn(move || watched.run(&received, Some(b"old".to_vec())));
        (file, core, events, running)
    }

    #[test]
    fn a_file_changed_before_the_watch_started_is_read_once_quiet_not_at_once() {
        let root = std::env::temp_dir().join(format!("watch-start-{}", std::process::id()));
        // Loaded from "old"; by the time the watch is up, a writer has truncated the file
        // and written part of the new one.
        let (file, core, events, running) =
            watching(&root, "proxy:\n  defa", Duration::from_millis(1000));
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(&file, "proxy:\n  default: {}\n").unwrap();
        let written = notify::Event::new(EventKind::Modify(notify::event::ModifyKind::Any))
            .add_path(file.clone());
        events.send(Ok(written)).unwrap();
        // Long enough for the debounce to end after the write.
        std::thread::sleep(Duration::from_millis(2500));
        drop(events);
        running.join().unwrap();
        let seen = core.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [b"proxy:\n  default: {}\n".to_vec()],
            "read whole, once"
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_file_changed_before_the_watch_started_is_read_without_an_event() {
        let root = std::env::temp_dir().join(format!("watch-quiet-{}", std::process::id()));
        let (_, core, events, running) = watching(&root, "proxy: {}\n", Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(1500));
        drop(events);
        running.join().unwrap();
        assert_eq!(core.seen.lock().unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn the_bytes_read_are_shown_by_their_length_only() {
        let root = std::env::temp_dir().join(format!("watch-read-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("settings.yaml");
        let text = "proxy:\n  default:\n    http:\n      url: http://u:s3cret@p:1\n";
        std::fs::write(&file, text).unwrap();
        let read = Read::file_of(&ProxySettings::loader().yaml_file(&file));
        assert_eq!(format!("{read:?}"), format!("Read({} bytes)", text.len()));
        let none = Read::file_of(&ProxySettings::loader().yaml_str("x.yaml", "proxy: {}"));
        assert_eq!(format!("{none:?}"), "Read(none)");
        let _ = std::fs::remove_dir_all(root);
    }
}
