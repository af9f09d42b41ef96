//! MCP over stdio: one client, JSON-RPC on stdin/stdout, logs on stderr.
//!
//! This is how Claude Desktop, Claude Code, Cursor and VS Code start the server.
//! Nothing but JSON-RPC may reach stdout; tracing writes to stderr. Each line read
//! goes through the check all transports share ([`crate::transport::jsonrpc`]): a
//! line that is not a message is answered with its JSON-RPC error, not dropped.

use rmcp::{
    RoleServer, ServiceExt,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::Transport,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};

use crate::{bridge::Bridge, error::ServeError, transport::jsonrpc::parse_message};

/// The longest line (one JSON-RPC message) read from stdin, in bytes: the same as the
/// HTTP transports' default `--max-body` (1 MiB). A longer line is skipped and
/// answered with a parse error.
pub const MAX_LINE_BYTES: usize = crate::transport::http::DEFAULT_MAX_BODY;

/// Messages buffered per direction before the other side waits.
const CHANNEL_CAPACITY: usize = 64;

/// Serves `bridge` on stdin/stdout until the client closes the stream or `shutdown`
/// resolves.
pub async fn serve(bridge: Bridge, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let (reader, writer) = streams();
    serve_on(bridge, reader, writer, shutdown).await
}

/// Serves `bridge` on a pair of byte streams carrying newline-delimited JSON-RPC
/// until the client closes `reader` or `shutdown` resolves. Everything answered is
/// written to `writer` before it returns after a disconnect.
pub async fn serve_on(
    bridge: Bridge,
    reader: impl AsyncRead + Send + Unpin + 'static,
    writer: impl AsyncWrite + Send + Unpin + 'static,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (transport, written) = LineTransport::spawn(Box::new(reader), Box::new(writer));
    let running = bridge
        .serve(transport)
        .await
        .map_err(|error| ServeError::Initialize(Box::new(error)))?;
    let stop = running.cancellation_token();
    tokio::select! {
        quit = running.waiting() => {
            tracing::info!(reason = ?quit, "MCP client disconnected");
            // Everything answered reaches the client before this returns.
            let _ = written.await;
        }
        () = shutdown => {
            tracing::info!("signal received; stopping");
            stop.cancel();
        }
    }
    Ok(())
}

/// What the writer task puts on stdout, one line each.
enum Outgoing {
    /// A message of the bridge.
    Message(Box<ServerJsonRpcMessage>),
    /// The error answering a line that was not a message.
    Error(Value),
}

/// Newline-delimited JSON-RPC over a pair of streams. A reader task reads lines
/// (each at most [`MAX_LINE_BYTES`]) through [`parse_message`], the check every
/// transport shares: messages go to the bridge; anything else is answered on the
/// spot with its JSON-RPC error (-32700 with id `null` for a line that is not JSON
/// or not UTF-8 or too long) and logged, and the session goes on.
struct LineTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    outgoing: mpsc::Sender<Outgoing>,
}

/// The bridge's side of a closed stdio transport.
#[derive(Debug, thiserror::Error)]
#[error("stdout is closed")]
struct Closed;

impl LineTransport {
    /// Starts the reader and writer tasks; the handle resolves once the writer has
    /// written everything and stopped.
    fn spawn(reader: Reader, writer: Writer) -> (Self, tokio::task::JoinHandle<()>) {
        let (to_bridge, incoming) = mpsc::channel(CHANNEL_CAPACITY);
        let (outgoing, to_write) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(read_lines(
            BufReader::new(reader),
            to_bridge,
            outgoing.clone(),
        ));
        let written = tokio::spawn(write_lines(writer, to_write));
        (Self { incoming, outgoing }, written)
    }
}

impl Transport<RoleServer> for LineTransport {
    type Error = Closed;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outgoing = self.outgoing.clone();
        async move {
            outgoing
                .send(Outgoing::Message(Box::new(item)))
                .await
                .map_err(|_| Closed)
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        self.incoming.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        Ok(())
    }
}

/// Reads lines until the end of the stream (or until nobody listens).
async fn read_lines(
    mut reader: impl AsyncBufRead + Unpin,
    to_bridge: mpsc::Sender<ClientJsonRpcMessage>,
    answers: mpsc::Sender<Outgoing>,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        let too_long = match read_line(&mut reader, &mut line).await {
            Ok(None) => break,
            Ok(Some(too_long)) => too_long,
            Err(error) => {
                tracing::warn!(%error, "cannot read stdin; stopping");
                break;
            }
        };
        let parsed = if too_long {
            Err(crate::transport::jsonrpc::BadMessage {
                code: -32700,
                id: Value::Null,
                message: format!(
                    "Parse error: the line is longer than {MAX_LINE_BYTES} bytes, this server's limit for one message; it was skipped"
                ),
            })
        } else if line.trim_ascii().is_empty() {
            continue;
        } else {
            parse_message(&line)
        };
        let sent = match parsed {
            Ok(message) => to_bridge.send(message).await.is_ok(),
            Err(bad) => {
                tracing::warn!(code = bad.code, problem = %bad.message, "answered a stdin line that is not a JSON-RPC message");
                answers
                    .send(Outgoing::Error(bad.to_response()))
                    .await
                    .is_ok()
            }
        };
        if !sent {
            break;
        }
    }
}

/// Reads one line into `line` (without its newline), keeping at most
/// [`MAX_LINE_BYTES`]: `None` at the end of the stream, else whether the line was
/// longer (the rest of it is read and dropped).
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut too_long = false;
    let mut seen = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(seen.then_some(too_long));
        }
        seen = true;
        let (chunk, done) = match buffer.iter().position(|byte| *byte == b'\n') {
            Some(end) => (buffer.get(..end).unwrap_or_default(), end + 1),
            None => (buffer, buffer.len()),
        };
        let ended = done > chunk.len();
        if !too_long && line.len() + chunk.len() <= MAX_LINE_BYTES {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        reader.consume(done);
        if ended {
            return Ok(Some(too_long));
        }
    }
}

/// Writes each outgoing message as one line, flushed.
async fn write_lines(mut writer: Writer, mut to_write: mpsc::Receiver<Outgoing>) {
    while let Some(outgoing) = to_write.recv().await {
        let json = match &outgoing {
            Outgoing::Message(message) => serde_json::to_vec(message),
            Outgoing::Error(error) => serde_json::to_vec(error),
        };
        let mut json = match json {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, "a message could not be serialized; dropped");
                continue;
            }
        };
        json.push(b'\n');
        if let Err(error) = async {
            writer.write_all(&json).await?;
            writer.flush().await
        }
        .await
        {
            tracing::info!(%error, "cannot write to stdout; the client went away");
            break;
        }
    }
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
    pub(super) fn reader(fd: OwnedFd) -> io::Result<Reader> {
        Ok(match socket(fd)? {
            Ok(socket) => Box::new(socket),
            Err(fd) => Box::new(pipe::Receiver::from_owned_fd(fd)?),
        })
    }

    /// stdout as a non-blocking pipe or socket.
    pub(super) fn writer(fd: OwnedFd) -> io::Result<Writer> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_whole_and_over_long_ones_skipped() {
        let mut input = b"one\r\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE_BYTES + 1]);
        input.push(b'\n');
        input.extend(vec![b'y'; MAX_LINE_BYTES]);
        input.extend(b"\ntwo");
        // A small buffer: lines span many reads.
        let mut reader = BufReader::with_capacity(64, &input[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line).await.unwrap(),
            Some(false)
        );
        assert_eq!(line, b"one\r");
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).await.unwrap(), Some(true));
        assert!(line.is_empty(), "an over-long line is not kept");
        line.clear();
        assert_eq!(
            read_line(&mut reader, &mut line).await.unwrap(),
            Some(false)
        );
        assert_eq!(line.len(), MAX_LINE_BYTES, "a line at the limit is kept");
        line.clear();
        assert_eq!(
            read_line(&mut reader, &mut line).await.unwrap(),
            Some(false)
        );
        assert_eq!(line, b"two", "the last line needs no newline");
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).await.unwrap(), None);
    }
}
