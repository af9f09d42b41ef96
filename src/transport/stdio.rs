//! MCP over stdio: one client, JSON-RPC on stdin/stdout, logs on stderr.
//!
//! This is how Claude Desktop, Claude Code, Cursor and VS Code start the server.
//! Nothing but JSON-RPC may reach stdout; tracing writes to stderr.

use rmcp::ServiceExt;

use crate::bridge::Bridge;

/// Serves `bridge` on stdin/stdout until the client closes the stream or a signal arrives.
pub async fn serve(bridge: Bridge) -> Result<(), String> {
    let running = bridge
        .serve(rmcp::transport::stdio())
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
