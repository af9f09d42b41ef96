//! A scripted model endpoint on 127.0.0.1 for the agent CLIs of `tests/clients.rs`, speaking
//! the three APIs they call: Anthropic's Messages API (`POST /v1/messages`, streamed as
//! server-sent events), OpenAI's Responses API (`POST /v1/responses`, streamed) and Gemini's
//! (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`).
//!
//! The script is one tool call: a request that offers a tool whose name ends with
//! [`TOOL`] and carries no tool result yet is answered with a call to it (arguments
//! [`arguments`]); every other request with the text `done`. Every request is recorded, so
//! a test reads what the client handed its model back ([`ScriptedModel::tool_results`]).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

/// The MCP tool the script calls (clients prefix it: `mcp__tenet__`, `mcp_tenet_`, ...).
pub const TOOL: &str = "github_repos_delete";

/// The arguments of the scripted call.
pub fn arguments() -> Value {
    json!({"owner": "acme", "repo": "api"})
}

type Requests = Arc<Mutex<Vec<(String, Value)>>>;

/// The running endpoint; stops when dropped.
pub struct ScriptedModel {
    /// Where it listens, e.g. `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    requests: Requests,
    server: tokio::task::JoinHandle<()>,
}

impl ScriptedModel {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let requests = Requests::default();
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/responses", post(openai))
            .route("/v1beta/models/{call}", post(gemini))
            .fallback(not_scripted)
            .with_state(requests.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            requests,
            server,
        }
    }

    /// Every request so far: path and JSON body.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }

    /// The tool results the client handed back to its model, as the model reads them (the
    /// text of Anthropic `tool_result` blocks and OpenAI `function_call_output`s; Gemini's
    /// `functionResponse.response` as JSON text), each once.
    pub fn tool_results(&self) -> Vec<String> {
        let mut results: Vec<String> = Vec::new();
        for (_, body) in self.requests() {
            for result in tool_results_in(&body) {
                if !results.contains(&result) {
                    results.push(result);
                }
            }
        }
        results
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn record(requests: &Requests, path: &str, body: &Value) {
    requests
        .lock()
        .unwrap()
        .push((path.to_owned(), body.clone()));
}

/// The tool results in one request body, of any of the three APIs.
fn tool_results_in(body: &Value) -> Vec<String> {
    let text_of = |content: &Value| match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    };
    let mut found = Vec::new();
    for message in items(&body["messages"]) {
        for block in items(&message["content"]) {
            if block["type"] == "tool_result" {
                found.push(text_of(&block["content"]));
            }
        }
    }
    for item in items(&body["input"]) {
        if item["type"] == "function_call_output" {
            found.push(text_of(&item["output"]));
        }
    }
    for content in items(&body["contents"]) {
        for part in items(&content["parts"]) {
            if let Some(response) = part.get("functionResponse") {
                found.push(response["response"].to_string());
            }
        }
    }
    found
}

/// The elements of a JSON array (none for anything else).
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// The name of the scripted tool among `tools` (objects with a `name`).
fn scripted_tool<'a>(mut tools: impl Iterator<Item = &'a Value>) -> Option<&'a str> {
    tools.find_map(|tool| tool["name"].as_str().filter(|name| name.ends_with(TOOL)))
}

/// Whether the last element of `body[key]` (the latest message) carries a tool result.
fn last_answers(body: &Value, key: &str) -> bool {
    items(&body[key])
        .last()
        .is_some_and(|last| !tool_results_in(&json!({ key: [last] })).is_empty())
}

/// A server-sent event stream of `(event name, data)` pairs.
fn event_stream(events: &[(&str, Value)]) -> Response {
    let mut text = String::new();
    for (name, data) in events {
        if !name.is_empty() {
            text.push_str(&format!("event: {name}\n"));
        }
        text.push_str(&format!("data: {data}\n\n"));
    }
    ([(header::CONTENT_TYPE, "text/event-stream")], text).into_response()
}

/// Anthropic Messages: the tool named `…github_repos_delete` among `tools`, unless the last
/// message already carries a tool result.
async fn anthropic(State(requests): State<Requests>, Json(body): Json<Value>) -> Response {
    record(&requests, "/v1/messages", &body);
    let offered = scripted_tool(items(&body["tools"])).filter(|_| !last_answers(&body, "messages"));
    let (block, delta, stop) = match offered {
        Some(name) => (
            json!({"type": "tool_use", "id": "toolu_scripted_1", "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": arguments().to_string()}),
            "tool_use",
        ),
        None => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": "done"}),
            "end_turn",
        ),
    };
    let usage = json!({"input_tokens": 1, "output_tokens": 1});
    event_stream(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_scripted", "type": "message", "role": "assistant",
            "model": body["model"], "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": usage}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 1}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// OpenAI Responses (as Codex calls it): MCP tools come as a `namespace` tool holding the
/// server's functions; the call names the namespace and the function.
async fn openai(State(requests): State<Requests>, Json(body): Json<Value>) -> Response {
    record(&requests, "/v1/responses", &body);
    let offered = items(&body["tools"])
        .filter(|tool| tool["type"] == "namespace")
        .find_map(|namespace| {
            Some((
                &namespace["name"],
                scripted_tool(items(&namespace["tools"]))?,
            ))
        });
    let answered = !tool_results_in(&json!({"input": body["input"]})).is_empty();
    let item = match offered.filter(|_| !answered) {
        Some((namespace, name)) => json!({"type": "function_call", "id": "fc_scripted_1",
            "call_id": "call_scripted_1", "namespace": namespace, "name": name,
            "arguments": arguments().to_string(), "status": "completed"}),
        None => json!({"type": "message", "id": "msg_scripted", "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "done", "annotations": []}]}),
    };
    let response = json!({"id": "resp_scripted", "object": "response", "created_at": 0,
        "model": body["model"], "status": "in_progress", "output": []});
    let mut completed = response.clone();
    completed["status"] = json!("completed");
    completed["output"] = json!([item]);
    completed["usage"] = json!({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0}});
    event_stream(&[
        (
            "response.created",
            json!({"type": "response.created", "response": response}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done",
            "output_index": 0, "item": item}),
        ),
        (
            "response.completed",
            json!({"type": "response.completed", "response": completed}),
        ),
    ])
}

/// Gemini: `{model}:generateContent` answers JSON, `:streamGenerateContent?alt=sse` one event.
async fn gemini(
    State(requests): State<Requests>,
    Path(call): Path<String>,
    RawQuery(query): RawQuery,
    Json(body): Json<Value>,
) -> Response {
    record(&requests, &format!("/v1beta/models/{call}"), &body);
    let declarations = items(&body["tools"]).flat_map(|tool| items(&tool["functionDeclarations"]));
    let offered = scripted_tool(declarations).filter(|_| !last_answers(&body, "contents"));
    let part = match offered {
        Some(name) => json!({"functionCall": {"name": name, "args": arguments()}}),
        None => json!({"text": "done"}),
    };
    let answer = json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        "modelVersion": "scripted"});
    if call.ends_with(":streamGenerateContent") && query.as_deref() == Some("alt=sse") {
        event_stream(&[("", answer)])
    } else {
        Json(answer).into_response()
    }
}

/// Anything else (token counting, telemetry a client failed to turn off): 404, recorded.
async fn not_scripted(
    State(requests): State<Requests>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    record(&requests, &uri.to_string(), &body);
    StatusCode::NOT_FOUND
}
