//! The accept loop of the HTTP transports: HTTP/1.1 and HTTP/2 cleartext (h2c) on one
//! port, with the limits that keep unauthenticated clients from exhausting the server.
//!
//! - At most `--max-connections` connections are open at once; past it a new
//!   connection is closed as soon as it is accepted, before anything is read.
//! - A client has `--header-read-timeout` to send its first bytes (enough to tell
//!   HTTP/1.1 from HTTP/2) and again to finish each HTTP/1.1 request head; a
//!   connection that dawdles is closed. HTTP/2 connections are pinged while idle and
//!   closed when the pings go unanswered.
//! - After a burst of connections has closed (three quarters of its peak gone), the
//!   memory they used is handed back to the system ([`Occupancy`]), so a flood leaves
//!   no lasting footprint.
//! - On shutdown, the loop stops accepting and every connection finishes the request
//!   it is serving, then closes ([`serve`] returns once all are closed).

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use crate::metrics;

/// The first bytes of every HTTP/2 cleartext connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How often an idle HTTP/2 connection is pinged, and how long the answer may take.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Concurrent requests (streams) per HTTP/2 connection.
const H2_MAX_STREAMS: u32 = 100;
/// The largest request head, both versions: 64 KiB of headers is plenty for MCP.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The connection limits of the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

/// Raises the soft limit on open files to the hard limit, so `--max-connections`
/// connections fit; returns the soft limit now in force, if it could be read.
pub(crate) fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::debug!(open_files = limit, "raised the soft limit on open files");
            Some(limit)
        }
        Err(error) => {
            tracing::debug!(%error, "cannot raise the soft limit on open files");
            None
        }
    }
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets the open
/// connections finish their requests and returns when all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let occupancy = Arc::new(Occupancy::default());
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let builder = Arc::new(builder);
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, or the peer gave up before the accept:
                    // pause a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::http_rejection("connection_limit");
            tracing::debug!(
                max_connections = limits.max_connections,
                "closed a connection past --max-connections"
            );
            drop(stream);
            continue;
        };
        // Small writes (SSE events) go out at once, without Nagle's delay.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let builder = builder.clone();
        let app = app.clone();
        let stop = stop.clone();
        metrics::http_connection_opened();
        occupancy.opened();
        let occupancy = occupancy.clone();
        connections.spawn(async move {
            serve_connection(&builder, stream, app, limits.header_read_timeout, stop).await;
            drop(slot);
            metrics::http_connection_closed();
            occupancy.closed();
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection: reads its first bytes within the header timeout, then
/// hands it to hyper (HTTP/1.1 or HTTP/2, with upgrades).
async fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    mut stream: TcpStream,
    app: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let first = tokio::select! {
        () = stop.cancelled() => return,
        first = tokio::time::timeout(header_read_timeout, read_preface(&mut stream)) => first,
    };
    let prefix = match first {
        Ok(Ok(prefix)) if !prefix.is_empty() => prefix,
        Ok(_) => return,
        Err(_) => {
            metrics::http_rejection("header_timeout");
            tracing::debug!(
                "closed a connection that sent no request within --header-read-timeout"
            );
            return;
        }
    };
    let io = TokioIo::new(Prefixed {
        prefix,
        read: 0,
        inner: stream,
    });
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.oneshot(request.map(Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {}),
            )
        }
    });
    // Boxed: a connection still waiting for its first bytes then holds only a small
    // task, not room for hyper's whole connection state (flood memory per connection).
    let mut connection = Box::pin(builder.serve_connection_with_upgrades(io, service));
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(error) = served {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error while closing");
            }
        }
    }
}

/// How many connections are open, and the most there were since memory was last
/// handed back to the system.
#[derive(Debug, Default)]
struct Occupancy(Mutex<Counts>);

/// The counts of [`Occupancy`], changed together under its lock.
#[derive(Debug, Default)]
struct Counts {
    open: usize,
    peak: usize,
}

impl Occupancy {
    /// Connections at a peak of at least this many are worth handing memory back after.
    const BURST: usize = 256;

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn opened(&self) {
        let mut counts = self.counts();
        counts.open += 1;
        counts.peak = counts.peak.max(counts.open);
    }

    fn closed(&self) {
        let mut counts = self.counts();
        counts.open = counts.open.saturating_sub(1);
        if counts.peak >= Self::BURST && counts.open * 4 <= counts.peak {
            tracing::debug!(
                peak = counts.peak,
                open = counts.open,
                "a burst of connections closed; releasing its memory"
            );
            counts.peak = counts.open;
            drop(counts);
            tokio::task::spawn_blocking(release_free_memory);
        }
    }
}

/// Hands memory the allocator holds but no longer uses back to the system (glibc
/// keeps freed heap pages otherwise, so RSS stays at a flood's peak).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    unsafe extern "C" {
        /// glibc: returns free memory at the top of the heap and, since 2.8, the
        /// free pages inside every arena to the system; 1 when some was released.
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim takes no pointers and is thread-safe; it only releases
    // memory the allocator has already freed.
    let released = unsafe { malloc_trim(0) };
    tracing::debug!(released = released == 1, "malloc_trim");
}

/// Other allocators return memory on their own; nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Reads until the bytes are enough to tell HTTP/2's preface from an HTTP/1.1
/// request line (or the peer closes): what was read, possibly empty.
async fn read_preface(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut read = Vec::with_capacity(H2_PREFACE.len());
    let mut buf = [0u8; H2_PREFACE.len()];
    while read.len() < H2_PREFACE.len() {
        let wanted = H2_PREFACE.len() - read.len();
        let n = stream.read(&mut buf[..wanted]).await?;
        if n == 0 {
            break;
        }
        read.extend_from_slice(&buf[..n]);
        if !H2_PREFACE.starts_with(&read) {
            // Not HTTP/2: hyper's HTTP/1.1 parser takes it from here, under its own timeout.
            break;
        }
    }
    Ok(read)
}

/// A stream whose first bytes were already read: replays them, then reads on.
struct Prefixed {
    prefix: Vec<u8>,
    read: usize,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.read..)
            && !rest.is_empty()
        {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
