//! Resident memory of idle WSS streams through microsocks: each side runs in a process of
//! its own (the `idle-streams` program of this crate), so that neither sees the other's
//! allocations.

use std::path::Path;

use crate::harness::Figure;

/// Raises this process's open-file limit to its hard limit (children inherit it).
pub(crate) fn raise_fd_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// Runs one side (`ours` or `peer`): `count` streams to the origin's `port` through the
/// SOCKS5 proxy at `proxy`; resident and live heap bytes per stream.
pub(crate) async fn per_stream(
    side: &str,
    port: u16,
    proxy: u16,
    ca: &Path,
    count: usize,
) -> (Figure, f64) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_idle-streams"))
        .args([side, &port.to_string(), &proxy.to_string()])
        .arg(ca)
        .arg(count.to_string())
        .output()
        .await
        .expect("the idle-streams program");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = text
        .split_whitespace()
        .map(|f| f.parse::<f64>().expect("bytes"));
    let rss = figures.next().expect("resident bytes");
    let heap = figures.next().expect("heap bytes");
    (Figure::Bytes(rss), heap)
}
