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
/// MCP clients connect a server's stdin and stdout to pipes (Python, Rust) or to
/// socket pairs (Node.js clients: Claude Desktop, the MCP Inspector); those are read
/// and written on the runtime's own thread, non-blocking, which saves two thread
/// hand-offs per message over tokio's stdio (a blocking-pool thread per read and per
/// write). Anything else (a terminal, a file) goes through tokio's stdio.
fn streams() -> (Reader, Writer) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let stdin = std::io::stdin().as_fd().try_clone_to_owned();
        let stdout = std::io::stdout().as_fd().try_clone_to_owned();
        let reader = stdin
            .and_then(unix::reader)
            .unwrap_or_else(|_| Box::new(tokio::io::stdin()));
        let writer = stdout
            .and_then(unix::writer)
            .unwrap_or_else(|_| Box::new(tokio::io::stdout()));
        (reader, writer)
    }
    #[cfg(not(unix))]
    {
        (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
    }
}

#[cfg(unix)]
mod unix {
    //! Non-blocking stdio for pipes and sockets; any other descriptor is an error.

    use std::{fs::File, io, os::fd::OwnedFd, os::unix::fs::FileTypeExt};

    use tokio::net::{UnixStream, unix::pipe};

    use super::{Reader, Writer};

    /// stdin as a non-blocking pipe or socket.
    pub fn reader(fd: OwnedFd) -> io::Result<Reader> {
        Ok(match socket(fd)? {
            Ok(socket) => Box::new(socket),
            Err(fd) => Box::new(pipe::Receiver::from_owned_fd(fd)?),
        })
    }

    /// stdout as a non-blocking pipe or socket.
    pub fn writer(fd: OwnedFd) -> io::Result<Writer> {
        Ok(match socket(fd)? {
            Ok(socket) => Box::new(socket),
            Err(fd) => Box::new(pipe::Sender::from_owned_fd(fd)?),
        })
    }

    /// `fd` as a non-blocking socket when it is one, else `fd` back.
    fn socket(fd: OwnedFd) -> io::Result<Result<UnixStream, OwnedFd>> {
        let file = File::from(fd);
        let is_socket = file.metadata()?.file_type().is_socket();
        let fd = OwnedFd::from(file);
        if !is_socket {
            return Ok(Err(fd));
        }
        let socket = std::os::unix::net::UnixStream::from(fd);
        socket.set_nonblocking(true)?;
        UnixStream::from_std(socket).map(Ok)
    }
}
