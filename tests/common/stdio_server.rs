//! The server binary over stdio against a scripted Tenet, with the HTTP tests' fixture
//! catalog and key, driven by rmcp's client; for tests that need only its MCP face.

use std::process::Stdio;

use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::{RunningService, ServiceError},
    transport::TokioChildProcess,
};
use serde_json::Value;

use super::{
    http_server::{KEY, fixture},
    scripted::ScriptedTenet,
};

/// Starts `serve --catalog <fixture>` over stdio with `extra` flags, and initializes.
pub async fn start(tenet: &ScriptedTenet, extra: &[&str]) -> RunningService<RoleClient, ()> {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
    command
        .args(["serve", "--catalog", &fixture(), "--poll-timeout", "3"])
        .args(extra)
        .env("TENET_API_KEY", KEY)
        .env("TENET_API_URL", tenet.url())
        .env_remove("TENET_AGENT_ID");
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ().serve(transport)
        .await
        .expect("the server answers initialize")
}

/// Calls `tool` with `arguments` (a JSON object).
pub async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> Result<CallToolResult, ServiceError> {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
}

/// The names `tools/list` shows, in order.
pub async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect()
}
