//! Why `serve` stops with an error; the command line turns each into an exit code
//! (see [`crate::cli::exit_code`]).

use crate::{config::ConfigError, emulator::EmulatorError};

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration: nothing was served.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The embedded emulator (`--emulator`) did not start.
    #[error("cannot start the embedded emulator: {0}")]
    Emulator(#[source] EmulatorError),
    /// The stdio client's MCP initialization failed.
    #[error("the MCP client's initialization failed: {0}")]
    Initialize(#[from] rmcp::service::ServerInitializeError),
    /// The Prometheus recorder behind `/metrics` could not be installed.
    #[error("cannot set up the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The HTTP server's accept loop failed.
    #[error("the HTTP server task failed: {0}")]
    ServerTask(#[from] tokio::task::JoinError),
}
