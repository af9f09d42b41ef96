//! The middleware in front of every MCP route (both transports) and `/metrics`.
//!
//! In order: `Host` (only when serving unauthenticated on loopback, against DNS
//! rebinding), `Origin` (browsers: must be allowed), `Authorization` (when tokens or
//! OAuth are configured; the token's agent becomes the request's [`AgentIdentity`]), then
//! the body, buffered up to `--max-body` into a [`Body`], and with an OAuth scopes map,
//! the tools its `tools/call`s name (see [`crate::transport::http::oauth`]).

use std::sync::Arc;

use axum::{
    body::{Body as AxumBody, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{Origins, Tokens};
use crate::{
    bridge::AgentIdentity,
    error::Rejection,
    transport::http::oauth::{Grant, OAuth},
    web::{addresses_loopback, bearer},
};

/// A request body buffered by [`guard`] (empty for GET).
#[derive(Clone, Debug, Default)]
pub struct Body(pub Bytes);

/// What [`guard`] enforces.
#[derive(Debug)]
pub struct Policy {
    /// The static tokens, if any.
    pub tokens: Option<Tokens>,
    /// The OAuth resource server, if any. Without it and without tokens, nothing is
    /// authenticated.
    pub oauth: Option<Arc<OAuth>>,
    /// Allowed browser origins.
    pub origins: Origins,
    /// Only loopback `Host` names (serving unauthenticated on a loopback bind).
    pub loopback_hosts_only: bool,
    /// The largest request body, in bytes.
    pub max_body: usize,
}

/// A JSON-RPC error response with HTTP `status`.
pub fn jsonrpc_error(
    status: StatusCode,
    id: Value,
    code: i32,
    message: impl Into<String>,
) -> Response {
    (
        status,
        axum::Json(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}}),
        ),
    )
        .into_response()
}

/// The middleware in front of every MCP route and `/metrics`.
pub async fn guard(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    if policy.loopback_hosts_only && !addresses_loopback(&parts.uri, &parts.headers) {
        let hosts = crate::web::addressed_hosts(&parts.uri, &parts.headers).join(", ");
        tracing::warn!(host = %hosts.chars().take(200).collect::<String>(), "refused a request for a non-loopback Host (possible DNS rebinding)");
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "this server is bound to loopback and serves only Host localhost, 127.0.0.1 or [::1]; to serve other names, use --auth-tokens",
        )
        .counted()
        .into_response();
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN)
        && !origin
            .to_str()
            .is_ok_and(|origin| policy.origins.allows(origin))
    {
        let shown = origin
            .to_str()
            .unwrap_or("(not text)")
            .chars()
            .take(200)
            .collect::<String>();
        tracing::warn!(origin = %shown, "refused a request from a browser origin that is not allowed");
        return Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!(
                "Origin {shown} is not allowed; the server's operator can allow it with --allowed-origin"
            ),
        )
        .counted()
        .into_response();
    }
    let grant = match authenticate(&policy, &parts.headers, parts.uri.path()).await {
        Ok(Some((agent, grant))) => {
            parts.extensions.insert(agent);
            if let Some(grant) = &grant {
                parts.extensions.insert(grant.tool_grant());
            }
            grant
        }
        Ok(None) => None,
        Err(refusal) => return refusal.into_response(),
    };
    let buffered = if parts.method == Method::GET
        || parts.method == Method::HEAD
        || parts.method == Method::DELETE
    {
        Bytes::new()
    } else {
        match read_body(&parts.headers, body, policy.max_body).await {
            Ok(bytes) => bytes,
            Err(response) => return response,
        }
    };
    if let (Some(oauth), Some(grant)) = (&policy.oauth, &grant)
        && let Some(refusal) = oauth.check_calls(grant, &buffered)
    {
        return refusal.into_response();
    }
    parts.extensions.insert(Body(buffered.clone()));
    next.run(Request::from_parts(parts, AxumBody::from(buffered)))
        .await
}

/// The agent of a request's bearer token, and with OAuth the tools its scopes allow
/// (`None`: every shown tool); `Ok(None)` when nothing is authenticated.
async fn authenticate(
    policy: &Policy,
    headers: &HeaderMap,
    path: &str,
) -> Result<Option<(AgentIdentity, Option<Grant>)>, Rejection> {
    if policy.tokens.is_none() && policy.oauth.is_none() {
        return Ok(None);
    }
    let presented = bearer(headers);
    if let Some(agent) = presented.and_then(|token| policy.tokens.as_ref()?.agent_for(token)) {
        return Ok(Some((AgentIdentity(agent.to_owned()), None)));
    }
    let refused = || tracing::info!(token_presented = presented.is_some(), %path, "refused an unauthenticated request");
    let Some(oauth) = &policy.oauth else {
        refused();
        let challenge = if presented.is_some() {
            r#"Bearer realm="tenet-mcp", error="invalid_token""#
        } else {
            r#"Bearer realm="tenet-mcp""#
        };
        return Err(Rejection::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <token>` with a token from this server's --auth-tokens file",
        )
        .counted()
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
    };
    let static_tokens = policy.tokens.is_some();
    let Some(token) = presented else {
        refused();
        return Err(oauth.refusal(None, static_tokens));
    };
    match oauth.verify(token).await {
        Ok(claims) => {
            let grant = oauth.grant(&claims);
            Ok(Some((AgentIdentity(claims.agent), grant)))
        }
        Err(error) => {
            refused();
            Err(oauth.refusal(Some(&error), static_tokens))
        }
    }
}

fn too_large(max: usize) -> Response {
    Rejection::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body exceeds this server's limit of {max} bytes (--max-body)"),
    )
    .counted()
    .into_response()
}

/// Reads a body of at most `max` bytes.
async fn read_body(headers: &HeaderMap, body: AxumBody, max: usize) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large(max));
    }
    let mut collected = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the request body could not be read: {error}"),
            )
            .into_response()
        })?;
        if collected.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}
