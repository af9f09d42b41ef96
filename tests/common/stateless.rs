//! Session-less Streamable HTTP calls (MCP 2026-07-28): one POST per `tools/call`,
//! no `initialize`, as a load balancer may spread them over replicas.

use serde_json::{Value, json};

use super::http_server::ACCEPT_BOTH;

/// POSTs a session-less `tools/call` of `tool` to `url` (a `/mcp` endpoint) with
/// `arguments`, extra `_meta` entries and extra HTTP `headers`; returns the JSON-RPC
/// answer, read from a JSON body or from the last `data:` line of an event stream.
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    tool: &str,
    arguments: Value,
    meta: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Value {
    let mut request_meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tenet-mcp-tests", "version": "0"}
    });
    for (key, value) in meta {
        request_meta[*key] = json!(value);
    }
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": request_meta}
    });
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let text = response.text().await.unwrap();
    let json = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .unwrap_or(text.trim());
    serde_json::from_str(json).unwrap_or_else(|error| panic!("{error}: {text}"))
}
