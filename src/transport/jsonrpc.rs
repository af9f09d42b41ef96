//! Reading one incoming JSON-RPC message, the same way on every transport (stdio,
//! Streamable HTTP, legacy SSE): what is not a message this server understands gets
//! the JSON-RPC error code that says why, and a message that says what to fix.
//!
//! - not JSON (or not UTF-8, or nested too deeply): -32700, id `null`;
//! - a batch, or JSON that is not a JSON-RPC 2.0 message: -32600;
//! - a known method whose params do not fit it (`tools/call` without a tool name,
//!   with `arguments` that are not an object, ...): -32602, never -32601.

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use serde_json::{Value, json};

/// The standard MCP methods a client may call: params that do not fit one of these
/// make rmcp read the request as a custom one, which would be answered -32601.
const STANDARD_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/call",
    "tools/list",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
];

/// Why some bytes are not a JSON-RPC message this server accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct BadMessage {
    /// -32700 (parse error), -32600 (invalid request) or -32602 (invalid params).
    pub code: i32,
    /// The request's id when it could be read, else `null`.
    pub id: Value,
    /// What is wrong and what to send instead.
    pub message: String,
}

impl BadMessage {
    fn new(code: i32, id: Value, message: impl Into<String>) -> Self {
        Self {
            code,
            id,
            message: message.into(),
        }
    }

    /// The JSON-RPC error response that answers it.
    pub fn to_response(&self) -> Value {
        json!({"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code, "message": self.message}})
    }
}

/// Parses `bytes` as one JSON-RPC message, or says why it is not one.
pub fn parse_message(bytes: &[u8]) -> Result<ClientJsonRpcMessage, BadMessage> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| {
        BadMessage::new(
            -32700,
            Value::Null,
            format!("Parse error: not a JSON document ({error}); send one JSON-RPC 2.0 message"),
        )
    })?;
    if value.is_array() {
        return Err(BadMessage::new(
            -32600,
            Value::Null,
            "Invalid Request: JSON-RPC batches are not supported; send one message at a time",
        ));
    }
    let id = match value.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    if value.get("method").and_then(Value::as_str) == Some("tools/call") && !id.is_null() {
        check_tool_call(value.get("params"), &id)?;
    }
    let message: ClientJsonRpcMessage = serde_json::from_value(value).map_err(|error| {
        BadMessage::new(
            -32600,
            id.clone(),
            format!(
                "Invalid Request: not a JSON-RPC 2.0 message this server understands ({error})"
            ),
        )
    })?;
    if let JsonRpcMessage::Request(request) = &message
        && let ClientRequest::CustomRequest(custom) = &request.request
        && STANDARD_METHODS.contains(&custom.method.as_str())
    {
        return Err(BadMessage::new(
            -32602,
            id,
            format!(
                "Invalid params: the params of `{}` do not match the MCP schema of that method",
                custom.method
            ),
        ));
    }
    Ok(message)
}

/// The params of a `tools/call` with request `id`: an error (-32602) saying what is
/// wrong with them, if anything.
fn check_tool_call(params: Option<&Value>, id: &Value) -> Result<(), BadMessage> {
    const SHAPE: &str = r#"send {"name": "<tool>", "arguments": {...}}"#;
    let bad = |problem: String| {
        Err(BadMessage::new(
            -32602,
            id.clone(),
            format!("Invalid params: {problem}"),
        ))
    };
    let params = match params {
        None | Some(Value::Null) => return bad(format!("tools/call has no params; {SHAPE}")),
        Some(Value::Object(params)) => params,
        Some(other) => {
            return bad(format!(
                "the params of tools/call are {}, not an object; {SHAPE}",
                kind(other)
            ));
        }
    };
    match params.get("name") {
        Some(Value::String(name)) if !name.is_empty() => {}
        None => return bad(format!("tools/call names no tool (params.name); {SHAPE}")),
        Some(other) => {
            return bad(format!(
                "params.name of tools/call is {}, not a tool name; {SHAPE}",
                kind(other)
            ));
        }
    }
    match params.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(other) => bad(format!(
            "params.arguments of tools/call is {}, not an object of the tool's arguments; {SHAPE}",
            kind(other)
        )),
    }
}

/// A JSON value's kind, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(string) if string.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> (i32, Value, String) {
        let bad = parse_message(text.as_bytes()).unwrap_err();
        (bad.code, bad.id, bad.message)
    }

    #[test]
    fn tool_calls_with_bad_params_are_invalid_params() {
        for (params, needle) in [
            ("{}", "names no tool"),
            ("null", "has no params"),
            (r#""x""#, "are a string, not an object"),
            (r#"{"name": 3}"#, "params.name of tools/call is a number"),
            (
                r#"{"name": "t", "arguments": "a=b"}"#,
                "params.arguments of tools/call is a string",
            ),
            (
                r#"{"name": "t", "arguments": [1]}"#,
                "params.arguments of tools/call is an array",
            ),
        ] {
            let text =
                format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}"#);
            let (code, id, message) = code(&text);
            assert_eq!((code, id), (-32602, json!(7)), "{params}");
            assert!(message.contains(needle), "{params}: {message}");
        }
        let missing = r#"{"jsonrpc":"2.0","id":"a","method":"tools/call"}"#;
        assert_eq!(code(missing).0, -32602);
        let fine = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#;
        assert!(parse_message(fine.as_bytes()).is_ok());
    }

    #[test]
    fn other_standard_methods_with_bad_params_are_invalid_params() {
        let text = r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":5}}"#;
        assert_eq!(code(text).0, -32602);
        let custom = r#"{"jsonrpc":"2.0","id":2,"method":"vendor/thing","params":{}}"#;
        assert!(parse_message(custom.as_bytes()).is_ok());
    }

    #[test]
    fn garbage_batches_and_deep_nesting() {
        assert_eq!(code("{not json").0, -32700);
        assert_eq!(code("").0, -32700);
        assert_eq!(code("[1]").0, -32600);
        assert_eq!(
            code(r#"{"id": 3}"#),
            (-32600, json!(3), code(r#"{"id": 3}"#).2)
        );
        let deep = "[".repeat(100_000);
        assert_eq!(code(&deep).0, -32700);
        let mut invalid_utf8 = br#"{"jsonrpc":"2.0","id":1,"method":"ping","x":""#.to_vec();
        invalid_utf8.extend_from_slice(b"\xff\xfe\"}");
        assert_eq!(parse_message(&invalid_utf8).unwrap_err().code, -32700);
    }
}
