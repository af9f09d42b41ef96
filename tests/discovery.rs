//! Discovery mode (`serve --tool-mode dynamic`) end to end against a scripted Tenet:
//! three tools instead of the catalog, search and describe over the shown tools only,
//! and tenet_call_tool governed exactly like a direct call, per-token lists included.

mod common;

use std::time::Duration;

use common::{
    http_server::{Server, TOKEN_A, TOKEN_B, within},
    scripted::{Canned, ScriptedTenet},
    stdio_server::{call, start, tool_names},
};
use rmcp::{RoleClient, model::ListToolsResult, service::RunningService};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

/// Calls `tool` and returns (structuredContent, isError).
async fn structured(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> (Value, bool) {
    let result = within(tool, LIMIT, call(client, tool, arguments))
        .await
        .expect("a tool result");
    (
        result.structured_content.unwrap_or(Value::Null),
        result.is_error.unwrap_or(false),
    )
}

/// The names a search returns.
async fn search(client: &RunningService<RoleClient, ()>, query: &str) -> Vec<String> {
    let (found, is_error) = structured(client, "tenet_search_tools", json!({"query": query})).await;
    assert!(!is_error, "{found}");
    found["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn dynamic_mode_lists_three_tools_and_calls_through_them_like_direct_calls() {
    let tenet = ScriptedTenet::start().await;
    let client = start(&tenet, &["--tool-mode", "dynamic"]).await;
    assert_eq!(
        tool_names(&client).await,
        [
            "tenet_job_status",
            "tenet_search_tools",
            "tenet_describe_tool",
            "tenet_call_tool"
        ]
    );
    let listed = client.list_tools(None).await.unwrap();
    let bytes = serde_json::to_vec(&ListToolsResult {
        tools: listed.tools,
        ..Default::default()
    })
    .unwrap();
    assert!(bytes.len() < 4096, "tools/list is {} bytes", bytes.len());

    let (found, _) = structured(
        &client,
        "tenet_search_tools",
        json!({"query": "create item", "limit": 2}),
    )
    .await;
    let tools = found["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(
        tools[0],
        json!({"name": "acme.items.create", "title": tools[0]["title"], "method": "POST", "path": "/items",
               "description": tools[0]["description"], "destructive": false})
    );
    assert_eq!(
        search(&client, "acme.items.delete").await[0],
        "acme.items.delete"
    );

    let (described, is_error) = structured(
        &client,
        "tenet_describe_tool",
        json!({"name": "acme.items.delete"}),
    )
    .await;
    assert!(!is_error);
    assert_eq!(described["inputSchema"]["required"], json!(["id"]));
    assert_eq!(described["annotations"]["destructiveHint"], true);
    assert_eq!(described["method"], "DELETE");

    let (direct, _) = structured(&client, "acme_items_get", json!({"id": "7"})).await;
    let (through, is_error) = structured(
        &client,
        "tenet_call_tool",
        json!({"name": "acme.items.get", "arguments": {"id": "7"}}),
    )
    .await;
    assert!(!is_error, "{through}");
    assert_eq!(through["status"], "executed");
    let keys = |value: &Value| {
        value
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&through),
        keys(&direct),
        "the same structured result as a direct call"
    );
    let executes = tenet.executes_of("acme.items.get");
    assert_eq!(executes.len(), 2);
    assert_eq!(
        executes[1].body["toolCall"]["args"],
        executes[0].body["toolCall"]["args"]
    );

    // Arguments are checked against the tool's schema before Tenet hears of the call.
    let (invalid, is_error) = structured(
        &client,
        "tenet_call_tool",
        json!({"name": "acme_items_delete", "arguments": {"id": 5}}),
    )
    .await;
    assert!(is_error);
    assert_eq!(invalid["status"], "error");
    assert!(
        invalid["error"].as_str().unwrap().contains("input schema"),
        "{invalid}"
    );
    let (unknown, is_error) =
        structured(&client, "tenet_call_tool", json!({"name": "acme.nope"})).await;
    assert!(is_error);
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("tenet_search_tools"),
        "{unknown}"
    );
    assert!(tenet.executes_of("acme.items.delete").is_empty());
    let unknown = within(
        "an unknown direct call",
        LIMIT,
        call(&client, "acme_nope", json!({})),
    )
    .await
    .expect_err("an unknown tool is a protocol error");
    assert!(
        unknown.to_string().contains("Call tenet_search_tools"),
        "{unknown}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_blocked_call_through_tenet_call_tool_reads_like_a_direct_one() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.payments.create",
        vec![Canned::json(
            403,
            json!({"decision": "BLOCK", "decisionId": "d1", "reasonCodes": ["RULE_no_payments"]}),
        )],
    );
    let client = start(&tenet, &["--tool-mode", "dynamic"]).await;
    let (blocked, is_error) = structured(
        &client,
        "tenet_call_tool",
        json!({"name": "acme.payments.create", "arguments": {"amount": 5, "to": "acct_1"}}),
    )
    .await;
    assert!(is_error);
    assert_eq!(blocked["status"], "blocked");
    assert_eq!(blocked["reason_codes"], json!(["RULE_no_payments"]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn search_describe_and_call_see_only_the_selected_tools() {
    let tenet = ScriptedTenet::start().await;
    let client = start(
        &tenet,
        &["--tool-mode", "dynamic", "--toolsets", "acme.payments"],
    )
    .await;
    assert_eq!(
        search(&client, "acme payments create item").await,
        ["acme.payments.create"]
    );
    let (_, is_error) = structured(
        &client,
        "tenet_describe_tool",
        json!({"name": "acme.items.get"}),
    )
    .await;
    assert!(is_error);
    let (refused, is_error) = structured(
        &client,
        "tenet_call_tool",
        json!({"name": "acme.items.get", "arguments": {"id": "1"}}),
    )
    .await;
    assert!(is_error && refused["status"] == "error", "{refused}");
    assert!(tenet.executes_of("acme.items.get").is_empty());
    let (bad, is_error) = structured(&client, "tenet_search_tools", json!({"query": ""})).await;
    assert!(is_error && bad.is_null());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tokens_tools_list_applies_in_dynamic_mode_over_http() {
    let tenet = ScriptedTenet::start().await;
    let tokens = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        tokens.path(),
        format!(
            "[[tokens]]\ntoken = \"{TOKEN_A}\"\nagent_id = \"agent-a\"\ntools = [\"acme.items.get\"]\n\n\
             [[tokens]]\ntoken = \"{TOKEN_B}\"\nagent_id = \"agent-b\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        &tenet,
        &[
            "--tool-mode",
            "dynamic",
            "--auth-tokens",
            tokens.path().to_str().unwrap(),
        ],
    )
    .await;
    let a = server.client(Some(TOKEN_A)).await;
    assert_eq!(search(&a, "item").await, ["acme.items.get"]);
    let (refused, is_error) = structured(
        &a,
        "tenet_call_tool",
        json!({"name": "acme.items.delete", "arguments": {"id": "1"}}),
    )
    .await;
    assert!(is_error && refused["status"] == "error", "{refused}");
    let (allowed, _) = structured(
        &a,
        "tenet_call_tool",
        json!({"name": "acme.items.get", "arguments": {"id": "1"}}),
    )
    .await;
    assert_eq!(allowed["status"], "executed", "{allowed}");
    let b = server.client(Some(TOKEN_B)).await;
    assert_eq!(search(&b, "item").await.len(), 4);
    assert!(
        tenet.executes_of("acme.items.delete").is_empty(),
        "the refused call never reached Tenet"
    );
    assert_eq!(tenet.executes_of("acme.items.get").len(), 1);
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}
