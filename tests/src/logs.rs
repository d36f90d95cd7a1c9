//! Capturing what is logged, through `tracing` and through the `log` crate (which some
//! dependencies use), for the tests that check that no secret is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// Everything written by the subscriber [`capture`] installed.
#[derive(Clone, Default, Debug)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// The text captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every event `filter` lets through, on this thread (a `#[tokio::test]` runs its
/// tasks on it), until the guard is dropped; `log` records are forwarded to it too.
pub fn capture(filter: Targets) -> (Logs, tracing::subscriber::DefaultGuard) {
    static LOG_BRIDGE: Once = Once::new();
    LOG_BRIDGE.call_once(|| {
        // The `log` crate's records (tungstenite, rustls) become tracing events.
        let _ = tracing_log::LogTracer::init();
    });
    let (logs, subscriber) = subscriber(filter);
    (logs, tracing::subscriber::set_default(subscriber))
}

/// A subscriber writing every event `filter` lets through into the [`Logs`] returned.
fn subscriber(filter: Targets) -> (Logs, impl tracing::Subscriber + Send + Sync) {
    let logs = Logs::default();
    let sink = logs.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || sink.clone());
    (logs, tracing_subscriber::registry().with(fmt).with(filter))
}

/// Everything, at TRACE.
pub fn everything() -> Targets {
    Targets::new().with_default(tracing::Level::TRACE)
}

/// Captures every event `filter` lets through, from every thread (the settings file's
/// watch runs on one of its own), for the rest of the process: for a test alone in its
/// process (nextest runs each test in one). `None` when a global subscriber was set
/// before.
pub fn capture_global(filter: Targets) -> Option<Logs> {
    let (logs, subscriber) = subscriber(filter);
    tracing::subscriber::set_global_default(subscriber)
        .ok()
        .map(|()| logs)
}
