//! Session-less Streamable HTTP calls (MCP 2026-07-28): one POST per `tools/call`,
//! no `initialize`, as a load balancer may spread them over replicas.

use serde_json::{Value, json};

use super::http_server::ACCEPT_BOTH;

/// The JSON-RPC body of a session-less `tools/call` of `tool` (request `id`), with the
/// 2026-07-28 `_meta` and `meta`'s extra entries.
pub fn request(id: u64, tool: &str, arguments: Value, meta: &[(&str, &str)]) -> Value {
    let mut request_meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "tenet-mcp-tests", "version": "0"}
    });
    for (key, value) in meta {
        request_meta[*key] = json!(value);
    }
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": request_meta}
    })
}

/// The HTTP headers of a session-less `tools/call` of `tool`.
pub fn headers(tool: &str) -> [(&'static str, &str); 3] {
    [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ]
}

/// POSTs a session-less `tools/call` of `tool` to `url` (a `/mcp` endpoint) with
/// `arguments`, extra `_meta` entries and extra HTTP `headers`; returns the JSON-RPC
/// answer, read from a JSON body or from the last `data:` line of an event stream.
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    tool: &str,
    arguments: Value,
    meta: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> Value {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .body(request(1, tool, arguments, meta).to_string());
    for (name, value) in headers(tool).iter().chain(extra_headers) {
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
