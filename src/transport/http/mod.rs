//! MCP over HTTP for remote agents: Streamable HTTP at `/mcp` and the legacy HTTP+SSE
//! transport at `/sse` + `/message`, with `/healthz` and `/metrics`, on one port.
//!
//! [`Server::bind`] checks the configuration and binds the port before anything
//! is served (every problem is a [`ConfigError`]); [`Server::serve_until`] then serves until
//! its shutdown future resolves (SIGTERM or Ctrl-C in `serve`), and shuts down gracefully: it stops accepting connections,
//! lets the calls in flight finish (up to `--shutdown-grace`), closes the sessions
//! and returns.
//!
//! Security (see [`auth`]): bearer tokens map to agent ids, compared in constant
//! time, and so do OAuth access tokens (see [`oauth`]); a non-loopback bind needs
//! either unless `--allow-unauthenticated` is given;
//! `Origin` is checked on every MCP request; bodies are limited to `--max-body`.
//! Connections (see `listener`): HTTP/1.1 and HTTP/2 cleartext on one port, at most
//! `--max-connections` at once, each closed if its request headers take longer than
//! `--header-read-timeout`.
//! Clients' tokens are never forwarded to Tenet: the bridge calls Tenet with its own key.

pub mod auth;
mod listener;
pub mod oauth;
mod oauth_keys;
mod orphans;
pub mod sessions;
pub mod sse;
pub mod streamable;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::{
    auth::{Origins, Policy, Tokens},
    oauth::{OAuth, OAuthOptions},
    sessions::Registry,
    sse::SseSessions,
    streamable::Sessions,
};
use crate::{
    bridge::Bridge,
    config::ConfigError,
    error::{Rejection, ServeError},
    metrics::Metrics,
};

/// The default `--bind`, as [`Options::default`] has it.
pub const DEFAULT_BIND: &str = "127.0.0.1:8765";
/// The default `--max-body`, in bytes (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// The default `--session-idle-timeout`, in seconds.
pub const DEFAULT_IDLE_TIMEOUT_SECS: f64 = 300.0;
/// The default `--max-sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// The default `--max-sessions-per-agent`.
pub const DEFAULT_MAX_SESSIONS_PER_AGENT: usize = 100;
/// The default `--shutdown-grace`, in seconds.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: f64 = 30.0;
/// The default `--header-read-timeout`, in seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: f64 = 10.0;
/// The largest `--header-read-timeout`, in seconds.
pub const MAX_HEADER_READ_TIMEOUT_SECS: f64 = 30.0;
/// The default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// File descriptors kept free for everything but client connections (Tenet, logs, catalogs).
const RESERVED_FDS: u64 = 64;
/// The least time closed sessions get to flush their streams before the server stops anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which HTTP transports to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only the legacy HTTP+SSE transport.
    Sse,
    /// Streamable HTTP and the legacy HTTP+SSE transport.
    Http,
}

/// The HTTP options of `serve`, as given on the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which transports.
    pub mode: Mode,
    /// The address to listen on.
    pub bind: SocketAddr,
    /// The `--auth-tokens` file.
    pub auth_tokens: Option<PathBuf>,
    /// The OAuth resource server's options (`--oauth-issuer` and the rest).
    pub oauth: Option<OAuthOptions>,
    /// Serve without tokens on a non-loopback address.
    pub allow_unauthenticated: bool,
    /// `--allowed-origin` values; empty: loopback origins.
    pub allowed_origins: Vec<String>,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// Sessions idle this long are closed.
    pub idle_timeout: Duration,
    /// The most live sessions.
    pub max_sessions: usize,
    /// The most live sessions of one agent.
    pub max_sessions_per_agent: usize,
    /// How long shutdown waits for calls in flight.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// The most open connections.
    pub max_connections: usize,
}

impl Default for Options {
    /// `serve --transport http`'s defaults: both transports on [`DEFAULT_BIND`], no tokens.
    fn default() -> Self {
        Self {
            mode: Mode::Http,
            bind: SocketAddr::from(([127, 0, 0, 1], 8765)),
            auth_tokens: None,
            oauth: None,
            allow_unauthenticated: false,
            allowed_origins: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            idle_timeout: Duration::from_secs_f64(DEFAULT_IDLE_TIMEOUT_SECS),
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_agent: DEFAULT_MAX_SESSIONS_PER_AGENT,
            shutdown_grace: Duration::from_secs_f64(DEFAULT_SHUTDOWN_GRACE_SECS),
            header_read_timeout: Duration::from_secs_f64(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Checked settings and the bound port: ready to serve.
#[derive(Debug)]
pub struct Server {
    options: Options,
    policy: Arc<Policy>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl Server {
    /// Loads the tokens, applies the rules for unauthenticated serving, and binds.
    /// The agent id of unauthenticated requests is the bridge's (`--agent-id`).
    pub async fn bind(options: Options) -> Result<Server, ConfigError> {
        let tokens = options
            .auth_tokens
            .as_deref()
            .map(Tokens::load)
            .transpose()?;
        let oauth = match options.oauth.clone() {
            Some(oauth) => Some(Arc::new(OAuth::start(oauth).await?)),
            None => None,
        };
        let authenticated = tokens.is_some() || oauth.is_some();
        let loopback = options.bind.ip().is_loopback();
        if !authenticated && !loopback && !options.allow_unauthenticated {
            return Err(ConfigError(format!(
                "refusing to serve without authentication on {}, which is not a loopback address: pass --auth-tokens FILE \
                 (each token names its agent id) or --oauth-issuer, or --allow-unauthenticated if something in front authenticates clients",
                options.bind
            )));
        }
        let origins = if options.allowed_origins.is_empty() {
            Origins::loopback()
        } else {
            Origins::parse(&options.allowed_origins)?
        };
        let policy = Arc::new(Policy {
            loopback_hosts_only: !authenticated && loopback,
            tokens,
            oauth,
            origins,
            max_body: options.max_body,
        });
        let listener = tokio::net::TcpListener::bind(options.bind)
            .await
            .map_err(|error| {
                ConfigError(format!(
                    "cannot listen on {}: {error}; pick another --bind address or port",
                    options.bind
                ))
            })?;
        let addr = listener.local_addr().map_err(|error| {
            ConfigError(format!(
                "cannot read the bound address of {}: {error}",
                options.bind
            ))
        })?;
        if let Some(open_files) = listener::raise_fd_limit()
            && options.max_connections as u64 + RESERVED_FDS > open_files
        {
            eprintln!(
                "tenet-mcp: warning: --max-connections {} is more than this process may open ({open_files} files, {RESERVED_FDS} of them kept for other uses); raise `ulimit -n` or lower --max-connections",
                options.max_connections
            );
        }
        Ok(Server {
            options,
            policy,
            listener,
            addr,
        })
    }
}

/// What `/metrics` and `/healthz` need.
#[derive(Clone)]
struct Status {
    metrics: Metrics,
    registry: Arc<Registry>,
}

impl Server {
    /// The address actually bound (the port is chosen by the system for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `bridge` until `shutdown` resolves (`serve` passes SIGTERM or Ctrl-C),
    /// then shuts down gracefully; a signal during the grace period ends it at once.
    pub async fn serve_until(
        self,
        bridge: Bridge,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let metrics = crate::metrics::install()?;
        let Server {
            options,
            policy,
            listener,
            addr,
        } = self;
        let registry = Registry::new(
            options.max_sessions,
            options.max_sessions_per_agent,
            options.idle_timeout,
        );
        let stop_reaper = CancellationToken::new();
        registry.spawn_reaper(stop_reaper.clone());
        let stop_sessions = CancellationToken::new();

        let sse_sessions = SseSessions::new(registry.clone(), bridge.clone());
        let mut mcp = Router::new()
            .route("/sse", get(sse::open))
            .route("/message", post(sse::post))
            .with_state(sse_sessions);
        if options.mode == Mode::Http {
            let sessions = Sessions::new(registry.clone(), bridge.clone());
            let service = streamable::service(
                sessions,
                bridge.clone(),
                options.max_body,
                stop_sessions.clone(),
            );
            let streamable =
                Router::new()
                    .route_service("/mcp", service)
                    .layer(middleware::from_fn_with_state(
                        streamable::CheckState {
                            registry: registry.clone(),
                            bridge: bridge.clone(),
                        },
                        streamable::check,
                    ));
            mcp = mcp.merge(streamable);
        }
        let status = Status {
            metrics,
            registry: registry.clone(),
        };
        let guarded = mcp
            .merge(
                Router::new()
                    .route("/metrics", get(render_metrics))
                    .with_state(status.clone()),
            )
            .layer(middleware::from_fn_with_state(policy.clone(), auth::guard));
        let mut app = Router::new()
            .route("/healthz", get(healthz).with_state(status))
            .merge(guarded);
        let oauth = policy.oauth.clone();
        if let Some(oauth) = &oauth {
            app = app.merge(oauth.routes());
        }
        let app = app.fallback(move |uri| not_found(uri, oauth));

        announce(&options, &policy, addr);

        let stop_accepting = CancellationToken::new();
        let limits = listener::Limits {
            header_read_timeout: options.header_read_timeout,
            max_connections: options.max_connections,
        };
        let mut server = tokio::spawn(listener::serve(
            listener,
            app,
            limits,
            stop_accepting.clone(),
        ));

        tokio::select! {
            () = shutdown => {}
            finished = &mut server => {
                // The accept loop stops by itself only if its task failed.
                return finished.map_err(ServeError::from);
            }
        }
        let signalled = tokio::time::Instant::now();
        let in_flight = registry.calls_in_flight();
        tracing::info!(
            in_flight,
            grace_s = options.shutdown_grace.as_secs_f64(),
            "signal received: no longer accepting connections; letting calls in flight finish"
        );
        registry.start_draining();
        stop_accepting.cancel();
        tokio::select! {
            finished = tokio::time::timeout(options.shutdown_grace, registry.drained()) => {
                if finished.is_err() {
                    tracing::warn!(
                        abandoned = registry.calls_in_flight(),
                        "the shutdown grace period ended with calls still in flight; they are abandoned"
                    );
                }
            }
            () = crate::shutdown_signal() => {
                tracing::warn!(abandoned = registry.calls_in_flight(), "second signal: not waiting for calls in flight");
            }
        }
        // Ending the sessions ends their streams, so the connections can close.
        registry.close_all();
        stop_reaper.cancel();
        // Requests still being answered (e.g. stateless ones) get the rest of the grace period.
        let remaining = options
            .shutdown_grace
            .saturating_sub(signalled.elapsed())
            .max(CLOSE_TIMEOUT);
        if tokio::time::timeout(remaining, &mut server).await.is_err() {
            stop_sessions.cancel();
            server.abort();
            tracing::warn!("connections still open after shutdown; closed them");
        }
        tracing::info!("HTTP server stopped");
        Ok(())
    }
}

/// Prints where the server listens, and how it admits clients, to stderr.
fn announce(options: &Options, policy: &Policy, addr: SocketAddr) {
    eprintln!("tenet-mcp: listening on http://{addr}");
    if options.mode == Mode::Http {
        eprintln!("tenet-mcp: Streamable HTTP at http://{addr}/mcp");
    }
    eprintln!("tenet-mcp: legacy SSE at http://{addr}/sse (messages to /message)");
    match &policy.tokens {
        Some(tokens) => eprintln!(
            "tenet-mcp: {} bearer token(s) for agent(s): {}",
            tokens.len(),
            tokens.agents().join(", ")
        ),
        None if policy.oauth.is_some() => {}
        None if !addr.ip().is_loopback() => eprintln!(
            "tenet-mcp: WARNING: serving WITHOUT authentication on {addr} (--allow-unauthenticated): anyone who can reach it calls Tenet as this server's --agent-id"
        ),
        None => {}
    }
    if let Some(oauth) = &policy.oauth {
        eprintln!(
            "tenet-mcp: OAuth access tokens of {} for audience {}",
            oauth.issuer(),
            oauth.audience()
        );
    }
}

/// `GET /healthz`: 200 while serving, 503 while shutting down.
async fn healthz(State(status): State<Status>) -> Response {
    if status.registry.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "shutting_down"})),
        )
            .into_response()
    } else {
        axum::Json(json!({"status": "ok", "sessions": status.registry.len()})).into_response()
    }
}

/// `GET /metrics`: Prometheus text.
async fn render_metrics(State(status): State<Status>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        status.metrics.render(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri, oauth: Option<Arc<OAuth>>) -> Response {
    if let Some(oauth) = oauth.filter(|_| is_oauth_discovery(uri.path())) {
        return oauth.not_here();
    }
    if is_oauth_discovery(uri.path()) {
        // Clients that got a 401 look for OAuth next, and show this message when
        // they find none (Claude Code: "Dynamic Client Registration rejected").
        return Rejection::new(
            StatusCode::NOT_FOUND,
            "oauth_not_configured",
            "this MCP server does not use OAuth: it takes a static bearer token. Send the header \
             `Authorization: Bearer <token>` with the token its operator gave you (from the server's \
             --auth-tokens file), e.g. `claude mcp add --transport http tenet URL --header \"Authorization: Bearer $TOKEN\"`",
        )
        .into_response();
    }
    Rejection::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "this server serves /mcp (Streamable HTTP), /sse and /message (legacy SSE), /healthz and /metrics",
    ).into_response()
}

/// Whether `path` is where an MCP client looks for OAuth: the RFC 9728 and RFC 8414
/// metadata (also with a path suffix), OpenID discovery, or dynamic client registration.
fn is_oauth_discovery(path: &str) -> bool {
    path.starts_with("/.well-known/oauth-protected-resource")
        || path.starts_with("/.well-known/oauth-authorization-server")
        || path.starts_with("/.well-known/openid-configuration")
        || path.ends_with("/.well-known/openid-configuration")
        || matches!(path, "/register" | "/authorize" | "/token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bind_is_the_documented_one() {
        assert_eq!(Options::default().bind.to_string(), DEFAULT_BIND);
    }
}
