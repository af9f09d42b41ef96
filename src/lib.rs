//! tenet-mcp: an MCP server that puts every AI agent tool call under Tenet's runtime authority.
//!
//! Data flows one way: the [`catalog`] names the tools; the [`bridge`] advertises them
//! over MCP and hands each `tools/call` to the [`governor`], which sends it to Tenet
//! (the [`tenet`] client) and reads the answer into a [`report::CallReport`]. The
//! [`transport`]s serve the bridge; the `emulator` is a local Tenet speaking the
//! same HTTP contract, for tests and first runs.
//!
//! Cargo features: `emulator` (on by default) builds the emulator and its commands;
//! without it the crate is the bridge alone, and does not link SQLite.

#![warn(missing_docs, unreachable_pub)]

pub mod bridge;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod discovery;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod governor;
pub mod metrics;
pub mod openapi;
pub mod reload;
pub mod report;
pub mod results;
pub mod selection;
pub mod serve;
pub mod telemetry;
pub mod tenet;
pub mod transport;
pub mod web;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
