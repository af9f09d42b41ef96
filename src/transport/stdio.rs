//! MCP over stdio: one client, JSON-RPC on stdin/stdout, logs on stderr.
//!
//! This is how Claude Desktop, Claude Code, Cursor and VS Code start the server.
//! Nothing but JSON-RPC may reach stdout; tracing writes to stderr.

use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::bridge::Bridge;

/// Serves `bridge` on stdin/stdout until the client closes the stream or a signal arrives.
pub async fn serve(bridge: Bridge) -> Result<(), String> {
    let running = bridge
        .serve(streams())
        .await
        .map_err(|error| format!("the MCP client's initialization failed: {error}"))?;
    let stop = running.cancellation_token();
    tokio::select! {
        quit = running.waiting() => {
            tracing::info!(reason = ?quit, "MCP client disconnected");
        }
        () = crate::shutdown_signal() => {
            tracing::info!("signal received; stopping");
            stop.cancel();
        }
    }
    Ok(())
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// stdin and stdout as async streams.
///
/// MCP clients connect a server's stdin and stdout to pipes; those are read and written
/// on the runtime's own thread (non-blocking pipes), which saves two thread hand-offs per
/// message over tokio's stdio (a blocking-pool thread per read and per write). Anything
/// else (a terminal, a file) goes through tokio's stdio.
fn streams() -> (Reader, Writer) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use tokio::net::unix::pipe;
        let stdin = std::io::stdin().as_fd().try_clone_to_owned();
        let stdout = std::io::stdout().as_fd().try_clone_to_owned();
        let reader: Reader = match stdin.and_then(pipe::Receiver::from_owned_fd) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdin()),
        };
        let writer: Writer = match stdout.and_then(pipe::Sender::from_owned_fd) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdout()),
        };
        (reader, writer)
    }
    #[cfg(not(unix))]
    {
        (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
    }
}
