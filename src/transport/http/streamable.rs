//! Streamable HTTP (MCP 2025-03-26 and later) at `/mcp`, served by rmcp's
//! [`StreamableHttpService`].
//!
//! rmcp keeps the sessions in its [`LocalSessionManager`]; [`Sessions`] wraps it to
//! put every session in the shared [`Registry`] (cap, owner, idle reaping) and every
//! session transport under [`Metered`]. [`check`] runs before rmcp: it answers a body
//! that is not a message with the shared JSON-RPC error ([`parse_message`]: -32700,
//! -32600 or -32602), refuses a new session past `--max-sessions` (503) or past the
//! agent's `--max-sessions-per-agent` (429), and hides a session from any agent but
//! the one that opened it (404). rmcp answers unknown sessions with 404.
//!
//! Requests of the 2026-07-28 revision are served by rmcp without a session. [`check`]
//! gives each one a session slot while it is answered (so the caps and shutdown apply)
//! and meters its `tools/call` ([`Unattached`]), reading the answer off the response.
//!
//! Priming events (an event with an id and empty data, SEP-1699) are defined from the
//! 2025-11-25 revision on; clients of earlier ones may `JSON.parse` every event's data
//! (Gemini CLI does, and fails). [`Sessions`] sends them per session: the POST and GET
//! streams of a session that negotiated 2025-11-25 or later start with one, those of an
//! earlier revision never carry one. Every message event keeps its id either way, so a
//! client resumes a stream with `Last-Event-ID` after any event it has seen, also after
//! the call was answered while it was away ([`super::orphans`]). The response
//! to `initialize` is a stream of one event that rmcp cannot resume: it gets no priming
//! event on any revision.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::{Stream, StreamExt};
use rmcp::{
    model::{
        ClientJsonRpcMessage, ClientRequest, GetExtensions, GetMeta, JsonRpcRequest,
        JsonRpcResponse, ProtocolVersion, ServerJsonRpcMessage, ServerResult,
    },
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
    auth::{Body, jsonrpc_error},
    orphans::Orphans,
    sessions::{Access, Kind, Metered, Refusal, Registry, Unattached},
};
use crate::{
    bridge::{AgentIdentity, Bridge},
    error::Rejection,
    transport::jsonrpc::{BadMessage, parse_message},
};

/// The header carrying the Streamable HTTP session id.
const SESSION_HEADER: &str = "mcp-session-id";
/// The header naming the protocol revision of a request.
const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";

/// How often an open SSE stream gets a keep-alive comment.
pub const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// The reconnection delay a priming event suggests (its SSE `retry` field).
pub const SSE_RETRY: Duration = Duration::from_secs(3);

/// The first revision that defines priming events.
const PRIMING_SINCE: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// rmcp's session manager, with every session registered and metered.
pub struct Sessions {
    inner: Arc<LocalSessionManager>,
    registry: Arc<Registry>,
    bridge: Bridge,
    /// The sessions that negotiated a revision defining priming events.
    priming: Arc<Mutex<HashSet<RmcpSessionId>>>,
    /// The rest of call streams their clients dropped before the answer.
    orphans: Arc<Orphans>,
}

impl Sessions {
    /// Sessions for `bridge`, registered in `registry`. rmcp's own idle timeout is
    /// off: the registry reaps idle sessions (never one with a call in flight).
    pub fn new(registry: Arc<Registry>, bridge: Bridge) -> Arc<Self> {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = None;
        // rmcp primes every POST stream (with the id resuming that stream);
        // `create_stream` drops the event for sessions of earlier revisions.
        inner.session_config.sse_retry = Some(SSE_RETRY);
        Arc::new(Self {
            inner: Arc::new(inner),
            registry,
            bridge,
            priming: Arc::default(),
            orphans: Arc::default(),
        })
    }

    fn primes(&self, id: &RmcpSessionId) -> bool {
        self.priming
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(id)
    }

    /// `stream` as a session of `id` gets it: without priming events unless its
    /// revision defines them.
    fn primed_as_negotiated(
        &self,
        id: &RmcpSessionId,
        stream: impl Stream<Item = ServerSseMessage> + Send + Sync + 'static,
    ) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static {
        if self.primes(id) {
            stream.left_stream()
        } else {
            stream
                .filter(|event| std::future::ready(event.message.is_some()))
                .right_stream()
        }
    }
}

/// Whether the answer to `initialize` negotiated a revision that defines priming events.
fn negotiates_priming(answer: &ServerJsonRpcMessage) -> bool {
    matches!(
        answer,
        ServerJsonRpcMessage::Response(JsonRpcResponse {
            result: ServerResult::InitializeResult(result),
            ..
        }) if result.protocol_version >= PRIMING_SINCE
    )
}

impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = Metered<<LocalSessionManager as SessionManager>::Transport>;

    async fn create_session(&self) -> Result<(RmcpSessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        let stop = self.registry.open_reserved(id.clone(), Kind::Streamable);
        // Reaping, shutdown or a DELETE cancel `stop`: close the rmcp session then.
        let inner = self.inner.clone();
        let priming = self.priming.clone();
        let orphans = self.orphans.clone();
        let closing = id.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            priming
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .remove(&closing);
            orphans.forget(&closing);
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
        let answer = self.inner.initialize_session(id, message).await?;
        if negotiates_priming(&answer) {
            self.priming
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .insert(id.clone());
        }
        Ok(answer)
    }

    async fn has_session(&self, id: &RmcpSessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &RmcpSessionId) -> Result<(), Self::Error> {
        self.registry.close(id);
        self.priming
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(id);
        self.orphans.forget(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &RmcpSessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.registry.touch(id);
        let stream = self.inner.create_stream(id, message).await?;
        Ok(self
            .orphans
            .watch(id, Box::pin(self.primed_as_negotiated(id, stream))))
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
        let stream = self.inner.create_standalone_stream(id).await?;
        // rmcp's own priming of this stream is off (see `service`): it would prime every
        // session alike. The id `0` resumes the stream from its first cached event.
        let stream = if self.primes(id) {
            futures::stream::once(std::future::ready(ServerSseMessage::priming(
                "0", SSE_RETRY,
            )))
            .chain(stream)
            .left_stream()
        } else {
            stream.right_stream()
        };
        Ok(stream)
    }

    async fn resume(
        &self,
        id: &RmcpSessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.registry.touch(id);
        match self.inner.resume(id, last_event_id.clone()).await {
            Ok(stream) => Ok(self
                .orphans
                .watch(id, Box::pin(self.primed_as_negotiated(id, stream)))
                .left_stream()),
            // rmcp no longer has the stream: its call may have been answered after the
            // client left.
            Err(error) => match self.orphans.replay(id, &last_event_id).await {
                Some(events) => Ok(futures::stream::iter(events).right_stream()),
                None => Err(error),
            },
        }
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
/// rmcp's priming of `initialize` answers and GET streams is off: [`Sessions`] primes per session.
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
        .with_sse_retry(None)
        // The guard already refused larger bodies; this only keeps rmcp from reading more.
        .with_max_request_body_bytes(max_body.saturating_add(1))
        .with_cancellation_token(stop);
    StreamableHttpService::new(move || Ok(bridge.for_session()), sessions, config)
}

/// What [`check`] needs.
#[derive(Clone)]
pub struct CheckState {
    /// The shared registry.
    pub registry: Arc<Registry>,
    /// The bridge (to label the calls of requests without a session).
    pub bridge: Bridge,
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
        return foreign_session(agent.as_deref()).into_response();
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let body = request
        .extensions()
        .get::<Body>()
        .cloned()
        .unwrap_or_default();
    let message = match parse_message(&body.0) {
        Ok(message) => message,
        Err(bad) => return bad.into_response(),
    };
    let ClientJsonRpcMessage::Request(rpc) = &message else {
        return next.run(request).await;
    };
    let initializes = matches!(rpc.request, ClientRequest::InitializeRequest(_));
    let stateless = routes_statelessly(rpc, session.is_some(), request.headers());
    if !(initializes && session.is_none() || stateless) {
        return next.run(request).await;
    }
    // A new session, or a request served without one: either holds a slot (the
    // global cap and the agent's quota) while it is answered.
    let slot = match state.registry.reserve(agent.as_deref()) {
        Ok(slot) => slot,
        Err(refusal) => {
            return session_refused(refusal, &state.registry, agent.as_deref()).into_response();
        }
    };
    if !stateless {
        let response = next.run(request).await;
        // The session, if one was created, is registered by now and holds its own slot.
        drop(slot);
        return response;
    }
    let call = match &rpc.request {
        ClientRequest::CallToolRequest(call) => Some(Unattached::start(
            &state.registry,
            &state.bridge,
            rpc.id.clone(),
            &call.params.name,
        )),
        _ => None,
    };
    let response = next.run(request).await;
    // The slot and the call's bookkeeping last as long as the response's body.
    let (parts, body) = response.into_parts();
    let mut answer = AnswerReader::new(call);
    let body = axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
        let _held = &slot;
        if let Ok(bytes) = &chunk {
            answer.feed(bytes);
        }
        chunk
    }));
    Response::from_parts(parts, body)
}

/// Whether rmcp serves `request` without a session: a request of the 2026-07-28
/// revision or later (by its `_meta` or its `MCP-Protocol-Version` header), or a
/// `server/discover` sent without a session (the rule of rmcp's `is_legacy_request`).
fn routes_statelessly(
    request: &JsonRpcRequest<ClientRequest>,
    has_session: bool,
    headers: &axum::http::HeaderMap,
) -> bool {
    match &request.request {
        ClientRequest::InitializeRequest(_) => return false,
        ClientRequest::DiscoverRequest(_) if !has_session => return true,
        _ => {}
    }
    let meta = request.request.get_meta();
    if meta
        .missing_required_keys(&ProtocolVersion::V_2026_07_28)
        .is_empty()
    {
        return true;
    }
    let version = meta.protocol_version().or_else(|| {
        headers
            .get(PROTOCOL_VERSION_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| serde_json::from_value(Value::String(text.to_owned())).ok())
    });
    version.is_some_and(|version: ProtocolVersion| !version.has_initialize())
}

/// Reads the answer to a session-less `tools/call` off its response body (SSE
/// `data:` lines, or one JSON document), to end the call's bookkeeping with its status.
struct AnswerReader {
    call: Option<Unattached>,
    line: Vec<u8>,
}

impl AnswerReader {
    /// The longest line kept while looking for the answer; longer ones are skipped.
    const MAX_LINE: usize = 16 * 1024 * 1024;

    fn new(call: Option<Unattached>) -> Self {
        Self {
            call,
            line: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.call.is_none() {
            return;
        }
        for part in bytes.split_inclusive(|byte| *byte == b'\n') {
            if self.line.len() + part.len() <= Self::MAX_LINE {
                self.line.extend_from_slice(part);
            } else {
                self.line.clear();
            }
            if part.ends_with(b"\n") || self.looks_whole() {
                self.read_line();
            }
        }
    }

    /// A JSON response (not SSE) comes without a final newline.
    fn looks_whole(&self) -> bool {
        self.line.starts_with(b"{") && serde_json::from_slice::<Value>(&self.line).is_ok()
    }

    fn read_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let text = line.strip_prefix(b"data:").unwrap_or(&line).trim_ascii();
        if let (Some(call), Ok(message)) = (
            self.call.as_mut(),
            serde_json::from_slice::<ServerJsonRpcMessage>(text),
        ) {
            call.observe(&message);
        }
    }
}

/// A body that is not a JSON-RPC message: answered as a JSON-RPC error with HTTP 400.
impl IntoResponse for BadMessage {
    fn into_response(self) -> Response {
        jsonrpc_error(StatusCode::BAD_REQUEST, self.id, self.code, self.message)
    }
}

/// 404 for a session that does not exist.
pub(crate) fn session_not_found() -> Rejection {
    Rejection::new(
        StatusCode::NOT_FOUND,
        "session_not_found",
        "no such session (it was closed, reaped after being idle, or never existed); start a new one",
    )
}

/// 404 for another agent's session, as for one that does not exist; logged and
/// counted as `foreign_session`.
pub(crate) fn foreign_session(agent: Option<&str>) -> Rejection {
    tracing::warn!(
        agent = agent.unwrap_or(""),
        "refused a request for another agent's session"
    );
    session_not_found().counted_as("foreign_session")
}

/// 503 when no new session may be opened; 429 when the agent has its quota of them.
pub(crate) fn session_refused(
    refusal: Refusal,
    registry: &Registry,
    agent: Option<&str>,
) -> Rejection {
    let max_sessions = registry.max_sessions();
    let rejection = match refusal {
        Refusal::AgentFull => {
            tracing::info!(
                agent = agent.unwrap_or(""),
                "refused a session past --max-sessions-per-agent"
            );
            Rejection::new(
                StatusCode::TOO_MANY_REQUESTS,
                "agent_session_limit",
                format!(
                    "agent {} already has its maximum of {} live sessions (--max-sessions-per-agent); close sessions it no longer uses (DELETE /mcp with the Mcp-Session-Id header, or close the SSE stream) or wait for idle ones to be closed",
                    agent.unwrap_or(""),
                    registry.max_sessions_per_agent()
                ),
            )
        }
        Refusal::Full => Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "session_limit",
            format!(
                "this server already has its maximum of {max_sessions} live sessions (--max-sessions); try again later"
            ),
        ),
        Refusal::Draining => Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this server is shutting down; reconnect in a moment",
        ),
    };
    rejection
        .counted()
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
}
