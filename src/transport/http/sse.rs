//! The legacy HTTP+SSE transport (MCP 2024-11-05), built on axum.
//!
//! `GET /sse` opens a session: the stream's first event is `endpoint`, whose data is
//! the URL to POST to (`/message?sessionId=<id>`); every server→client JSON-RPC
//! message follows as a `message` event, with keep-alive comments in between.
//! `POST /message?sessionId=<id>` takes one client message and answers 202; the
//! answer to a request arrives on the stream. Each session is the [`Bridge`] served
//! by rmcp over a (Sink, Stream) pair of tokio channels, under [`Metered`].
//!
//! A session ends when its stream closes (the client went away), when it is reaped
//! idle, or at shutdown; then its POST URL answers 404.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
};

use axum::{
    Extension,
    extract::{Query, State},
    http::{HeaderValue, StatusCode},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt, stream};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions, GetMeta, ServerJsonRpcMessage},
    transport::IntoTransport,
};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, PollSender};

use super::{
    auth::Body,
    sessions::{Access, Kind, Metered, Registry, SessionId},
    streamable::{SSE_KEEP_ALIVE, foreign_session, session_not_found, session_refused},
};
use crate::{
    bridge::{AgentIdentity, Bridge, ToolGrant},
    error::Rejection,
    transport::jsonrpc::parse_message,
};

/// Messages buffered per direction per session before senders wait.
const CHANNEL_CAPACITY: usize = 64;

/// The legacy SSE sessions: where each session's incoming messages go.
pub struct SseSessions {
    registry: Arc<Registry>,
    bridge: Bridge,
    inboxes: Mutex<HashMap<SessionId, mpsc::Sender<ClientJsonRpcMessage>>>,
}

impl SseSessions {
    /// Sessions serving `bridge`, registered in `registry`.
    pub fn new(registry: Arc<Registry>, bridge: Bridge) -> Arc<Self> {
        Arc::new(Self {
            registry,
            bridge,
            inboxes: Mutex::default(),
        })
    }

    fn inboxes(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SessionId, mpsc::Sender<ClientJsonRpcMessage>>> {
        self.inboxes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// `GET /sse`: opens a session and streams its messages.
pub async fn open(
    State(sessions): State<Arc<SseSessions>>,
    identity: Option<Extension<AgentIdentity>>,
) -> Response {
    let owner = identity.map(|Extension(AgentIdentity(agent))| agent);
    let registry = sessions.registry.clone();
    let (id, stop) = match registry.open(Kind::Sse, owner.clone()) {
        Ok(opened) => opened,
        Err(refusal) => {
            return session_refused(refusal, &registry, owner.as_deref()).into_response();
        }
    };
    let (inbox, incoming) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (outgoing, outbox) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    sessions.inboxes().insert(id.clone(), inbox);

    let incoming = Box::pin(stream::unfold(incoming, |mut incoming| async move {
        incoming.recv().await.map(|message| (message, incoming))
    }));
    let transport = IntoTransport::<rmcp::RoleServer, _, _>::into_transport((
        PollSender::new(outgoing),
        incoming,
    ));
    let transport = Metered::new(
        transport,
        id.clone(),
        registry.clone(),
        sessions.bridge.clone(),
    );
    tracing::info!(session = %id, agent = owner.as_deref().unwrap_or(""), "legacy SSE session opened");
    tokio::spawn(run_session(
        sessions.clone(),
        id.clone(),
        transport,
        stop.clone(),
    ));
    stream_response(&id, outbox, stop)
}

/// Serves the bridge on one session until it is stopped or its client goes away.
async fn run_session<T>(
    sessions: Arc<SseSessions>,
    id: SessionId,
    transport: T,
    stop: CancellationToken,
) where
    T: rmcp::transport::Transport<rmcp::RoleServer> + 'static,
{
    match sessions
        .bridge
        .for_session()
        .serve_with_ct(transport, stop.clone())
        .await
    {
        Ok(running) => {
            let reason = running.waiting().await;
            tracing::debug!(session = %id, ?reason, "legacy SSE session ended");
        }
        Err(error) => {
            tracing::info!(session = %id, %error, "legacy SSE session ended before initialization")
        }
    }
    sessions.inboxes().remove(&id);
    sessions.registry.close(&id);
}

/// The event stream of a session: `endpoint` first, then its messages. Dropping it
/// (the client disconnected) stops the session.
fn stream_response(
    id: &str,
    outbox: mpsc::Receiver<ServerJsonRpcMessage>,
    stop: CancellationToken,
) -> Response {
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let guard = stop.drop_guard();
    let messages = stream::unfold((outbox, guard), |(mut outbox, guard)| async move {
        let message = outbox.recv().await?;
        let event = match serde_json::to_string(&message) {
            Ok(json) => Event::default().event("message").data(json),
            Err(error) => {
                tracing::error!(%error, "a server message could not be serialized; sent as a comment");
                Event::default().comment("unserializable message dropped")
            }
        };
        Some((event, (outbox, guard)))
    });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        stream::once(async move { endpoint })
            .chain(messages)
            .map(Ok),
    );
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE).text("keep-alive"))
        .into_response();
    // Tell buffering proxies (nginx) to pass events through as they come.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    // The session id as Streamable HTTP sends it, so a load balancer can pin the
    // session's `/message?sessionId=` posts to this replica (docs/deploy/haproxy.cfg).
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("mcp-session-id", value);
    }
    response
}

/// The query of `POST /message`.
#[derive(serde::Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId", alias = "session_id")]
    session_id: Option<String>,
}

/// `POST /message?sessionId=<id>`: one client message into its session; 202.
pub async fn post(
    State(sessions): State<Arc<SseSessions>>,
    Query(query): Query<MessageQuery>,
    identity: Option<Extension<AgentIdentity>>,
    grant: Option<Extension<ToolGrant>>,
    headers: axum::http::HeaderMap,
    body: Option<Extension<Body>>,
) -> Response {
    let Some(id) = query.session_id.filter(|id| !id.is_empty()) else {
        return Rejection::new(
            StatusCode::BAD_REQUEST,
            "session_id_required",
            "POST to the URL of the `endpoint` event of your GET /sse stream (it carries ?sessionId=...)",
        ).into_response();
    };
    let agent = identity.map(|Extension(AgentIdentity(agent))| agent);
    match sessions.registry.access(&id, agent.as_deref()) {
        Access::Granted => {}
        Access::Foreign => return foreign_session(agent.as_deref()).into_response(),
        Access::Unknown => return session_not_found().into_response(),
    }
    let Some(inbox) = sessions.inboxes().get(id.as_str()).cloned() else {
        return session_not_found().into_response();
    };
    let body = body.map(|Extension(body)| body).unwrap_or_default();
    let mut message = match parse_message(&body.0) {
        Ok(message) => message,
        Err(bad) => return bad.into_response(),
    };
    if let ClientJsonRpcMessage::Request(request) = &mut message {
        if let Some(Extension(grant)) = grant {
            request.request.extensions_mut().insert(grant);
        }
        // A `traceparent` header stands for the message's `_meta.traceparent`, as on
        // Streamable HTTP, unless the message carries its own.
        let traceparent = headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok());
        let meta = request.request.get_meta_mut();
        if let Some(traceparent) = traceparent
            && meta.get_traceparent().is_none()
        {
            meta.set_traceparent(traceparent);
        }
    }
    if let Some(agent) = agent {
        match &mut message {
            ClientJsonRpcMessage::Request(request) => {
                request
                    .request
                    .extensions_mut()
                    .insert(AgentIdentity(agent));
            }
            ClientJsonRpcMessage::Notification(notification) => {
                notification
                    .notification
                    .extensions_mut()
                    .insert(AgentIdentity(agent));
            }
            _ => {}
        }
    }
    if inbox.send(message).await.is_err() {
        return session_not_found().into_response();
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
