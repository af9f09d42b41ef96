//! Streamable HTTP (MCP 2025-03-26 and later) at `/mcp`, served by rmcp's
//! [`StreamableHttpService`].
//!
//! rmcp keeps the sessions in its [`LocalSessionManager`]; [`Sessions`] wraps it to
//! put every session in the shared [`Registry`] (cap, owner, idle reaping) and every
//! session transport under [`Metered`]. [`check`] runs before rmcp: it answers a
//! malformed body with a JSON-RPC parse error (-32700) or invalid request (-32600),
//! refuses a new session past `--max-sessions` (503), and hides a session from any
//! agent but the one that opened it (404). rmcp answers unknown sessions with 404.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ClientRequest, GetExtensions, ServerJsonRpcMessage},
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::{
            SessionId as RmcpSessionId, SessionManager,
            session::{
                ServerSseMessage,
                local::{LocalSessionManager, LocalSessionManagerError},
            },
        },
    },
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    auth::{Body, jsonrpc_error, refuse},
    sessions::{Access, Kind, Metered, Refusal, Registry},
};
use crate::{
    bridge::{AgentIdentity, Bridge},
    metrics,
};

/// The header carrying the Streamable HTTP session id.
const SESSION_HEADER: &str = "mcp-session-id";

/// How often an open SSE stream gets a keep-alive comment.
pub const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// rmcp's session manager, with every session registered and metered.
pub struct Sessions {
    inner: Arc<LocalSessionManager>,
    registry: Arc<Registry>,
    bridge: Bridge,
}

impl Sessions {
    /// Sessions for `bridge`, registered in `registry`. rmcp's own idle timeout is
    /// off: the registry reaps idle sessions (never one with a call in flight).
    pub fn new(registry: Arc<Registry>, bridge: Bridge) -> Arc<Self> {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = None;
        Arc::new(Self {
            inner: Arc::new(inner),
            registry,
            bridge,
        })
    }
}

impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = Metered<<LocalSessionManager as SessionManager>::Transport>;

    async fn create_session(&self) -> Result<(RmcpSessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        let stop = self.registry.open_reserved(id.clone(), Kind::Streamable);
        // Reaping, shutdown or a DELETE cancel `stop`: close the rmcp session then.
        let inner = self.inner.clone();
        let closing = id.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            if let Err(error) = inner.close_session(&closing).await {
                tracing::debug!(%error, "closing a Streamable HTTP session");
            }
        });
        let metered = Metered::new(
            transport,
            id.clone(),
            self.registry.clone(),
            self.bridge.clone(),
        );
        Ok((id, metered))
    }

    async fn initialize_session(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.registry.set_owner(id, agent_of(&message));
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &RmcpSessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &RmcpSessionId) -> Result<(), Self::Error> {
        self.registry.close(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.registry.touch(id);
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.registry.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &RmcpSessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.registry.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &RmcpSessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.registry.touch(id);
        self.inner.resume(id, last_event_id).await
    }
}

/// The agent of the token an rmcp message arrived with (rmcp attaches the HTTP request's parts).
fn agent_of(message: &ClientJsonRpcMessage) -> Option<String> {
    let extensions = match message {
        ClientJsonRpcMessage::Request(request) => request.request.extensions(),
        ClientJsonRpcMessage::Notification(notification) => notification.notification.extensions(),
        _ => return None,
    };
    extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<AgentIdentity>())
        .map(|identity| identity.0.clone())
}

/// rmcp's Streamable HTTP service over [`Sessions`]. The `Host` and `Origin` checks and
/// the body limit are the guard's ([`super::auth::guard`]), so rmcp's are relaxed to match.
pub fn service(
    sessions: Arc<Sessions>,
    bridge: Bridge,
    max_body: usize,
    stop: CancellationToken,
) -> StreamableHttpService<Bridge, Sessions> {
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        // The guard already refused larger bodies; this only keeps rmcp from reading more.
        .with_max_request_body_bytes(max_body.saturating_add(1))
        .with_cancellation_token(stop);
    StreamableHttpService::new(move || Ok(bridge.clone()), sessions, config)
}

/// What [`check`] needs.
#[derive(Clone)]
pub struct CheckState {
    /// The shared registry.
    pub registry: Arc<Registry>,
}

/// The checks rmcp does not make (or answers differently), before `/mcp` reaches it.
pub async fn check(State(state): State<CheckState>, request: Request, next: Next) -> Response {
    let agent = request
        .extensions()
        .get::<AgentIdentity>()
        .map(|identity| identity.0.clone());
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session
        && state.registry.access(session, agent.as_deref()) == Access::Foreign
    {
        metrics::http_rejection("foreign_session");
        tracing::warn!(
            agent = agent.as_deref().unwrap_or(""),
            "refused a request for another agent's session"
        );
        return session_not_found();
    }
    let mut reservation = None;
    if request.method() == Method::POST {
        let body = request
            .extensions()
            .get::<Body>()
            .cloned()
            .unwrap_or_default();
        let message = match parse_message(&body.0) {
            Ok(message) => message,
            Err(bad) => return bad.into_response(),
        };
        let initializes = matches!(
            &message,
            ClientJsonRpcMessage::Request(request) if matches!(request.request, ClientRequest::InitializeRequest(_))
        );
        if session.is_none() && initializes {
            match state.registry.reserve() {
                Ok(slot) => reservation = Some(slot),
                Err(refusal) => return session_refused(refusal, state.registry.max_sessions()),
            }
        }
    }
    let response = next.run(request).await;
    // The session, if one was created, is registered by now and holds its own slot.
    drop(reservation);
    response
}

/// Why a POST body is not a JSON-RPC message: answered as a JSON-RPC error with HTTP 400.
#[derive(Debug)]
pub struct BadMessage {
    /// -32700 (parse error) or -32600 (invalid request).
    pub code: i32,
    /// The request's id when it could be read.
    pub id: Value,
    /// What is wrong.
    pub message: String,
}

impl IntoResponse for BadMessage {
    fn into_response(self) -> Response {
        jsonrpc_error(StatusCode::BAD_REQUEST, self.id, self.code, self.message)
    }
}

/// Parses a POST body as one JSON-RPC message, or says why it is not one.
pub fn parse_message(body: &[u8]) -> Result<ClientJsonRpcMessage, BadMessage> {
    let value: Value = serde_json::from_slice(body).map_err(|error| BadMessage {
        code: -32700,
        id: Value::Null,
        message: format!("Parse error: the body is not JSON ({error})"),
    })?;
    if value.is_array() {
        return Err(BadMessage {
            code: -32600,
            id: Value::Null,
            message:
                "Invalid Request: JSON-RPC batches are not supported; send one message per request"
                    .into(),
        });
    }
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|error| BadMessage {
        code: -32600,
        id,
        message: format!(
            "Invalid Request: not a JSON-RPC 2.0 message this server understands ({error})"
        ),
    })
}

/// 404 for a session that does not exist (or is not the caller's).
pub fn session_not_found() -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "session_not_found",
        "no such session (it was closed, reaped after being idle, or never existed); start a new one",
    )
}

/// 503 when no new session may be opened.
pub fn session_refused(refusal: Refusal, max_sessions: usize) -> Response {
    let mut response = match refusal {
        Refusal::Full => {
            metrics::http_rejection("session_limit");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "session_limit",
                format!(
                    "this server already has its maximum of {max_sessions} live sessions (--max-sessions); try again later"
                ),
            )
        }
        Refusal::Draining => {
            metrics::http_rejection("shutting_down");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "this server is shutting down; reconnect in a moment",
            )
        }
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response.into_response()
}
