//! Catalog reload while serving: on `SIGHUP`, or with `--watch` when a catalog file changes.
//!
//! A new catalog is loaded and validated in full before it replaces the old one; an
//! invalid one is rejected with a logged error and the old catalog stays in force.
//! A valid one replaces it atomically and every connected client is told
//! (`notifications/tools/list_changed`) by [`Bridge::replace_catalog`].

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{bridge::Bridge, catalog::Catalog};

/// How often `--watch` looks at the catalog files.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Reloads `paths` into `bridge` on SIGHUP, and on file changes when `watch` is set.
/// With no paths (the shipped catalog) there is nothing to reload, and nothing runs.
pub fn spawn(bridge: Bridge, paths: Vec<PathBuf>, watch: bool) {
    if paths.is_empty() {
        if watch {
            tracing::warn!(
                "--watch has nothing to watch: the shipped catalog is in use; pass --catalog PATH"
            );
        }
        return;
    }
    tokio::spawn(async move {
        let mut hangup = hangup_signal();
        let mut seen = fingerprint(&paths);
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let cause = tokio::select! {
                () = hangup.recv() => "SIGHUP",
                _ = tick.tick(), if watch => {
                    let now = fingerprint(&paths);
                    if now == seen { continue }
                    seen = now;
                    "a catalog file changed"
                }
            };
            reload(&bridge, &paths, cause).await;
        }
    });
}

/// Loads `paths` and, if valid, serves them. The load (file reads, parsing, schema
/// checks) runs on a blocking thread: over stdio the runtime has one thread, and calls
/// in flight keep being served while a large catalog loads.
async fn reload(bridge: &Bridge, paths: &[PathBuf], cause: &str) {
    let owned = paths.to_vec();
    let loaded = match tokio::task::spawn_blocking(move || Catalog::load(&owned)).await {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::error!(
                cause,
                %error,
                "catalog reload rejected, the previous catalog stays in force: the load did not finish"
            );
            return;
        }
    };
    match loaded {
        Ok(catalog) => {
            let tools = catalog.tools().len();
            match bridge.replace_catalog(Arc::new(catalog)).await {
                Ok(shown) => tracing::info!(
                    cause,
                    tools,
                    shown,
                    "catalog reloaded; clients were told the tool list changed"
                ),
                Err(error) => tracing::error!(
                    cause,
                    "catalog reload rejected, the previous catalog stays in force: \
                     the tool selection does not fit the new catalog: {error}"
                ),
            }
        }
        Err(error) => {
            tracing::error!(
                cause,
                "catalog reload rejected, the previous catalog stays in force: {error}"
            );
        }
    }
}

/// Every catalog file's path, modification time and size, to notice changes.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    fn visit(path: &Path, out: &mut Vec<(PathBuf, Option<SystemTime>, u64)>) {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                if let Ok(entries) = std::fs::read_dir(path) {
                    for entry in entries.filter_map(Result::ok) {
                        let child = entry.path();
                        if child.extension().is_some_and(|ext| ext == "json") {
                            visit(&child, out);
                        }
                    }
                }
            }
            Ok(meta) => out.push((path.to_owned(), meta.modified().ok(), meta.len())),
            Err(_) => out.push((path.to_owned(), None, 0)),
        }
    }
    let mut out = Vec::new();
    for path in paths {
        visit(path, &mut out);
    }
    out.sort();
    out
}

/// SIGHUP as a stream; on platforms without it, never fires.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.0 {
            signal.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Hangup(Some(signal)),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; catalog reload on signal is off");
                Hangup(None)
            }
        }
    }
    #[cfg(not(unix))]
    Hangup()
}
