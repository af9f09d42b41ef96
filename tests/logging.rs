//! MCP logging and prompts on the bridge, over raw JSON-RPC lines in-process: a session
//! that sends `logging/setLevel` is told how each governed call ended (at or above its
//! level, never the arguments); one that does not is told nothing; `prompts/list` is
//! empty and `prompts/get` says so.

mod common;

use common::{
    harness::Setup,
    scripted::{Canned, ScriptedTenet},
};
use serde_json::{Value, json};

const INITIALIZE: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

/// Calls `acme_items_get` as request `id`; the log notifications sent before its
/// answer, and the answer.
async fn call(lines: &mut common::harness::Lines, id: u64) -> (Vec<Value>, Value) {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "acme_items_get", "arguments": {"id": "secret-argument"}}});
    lines.send(request.to_string().as_bytes()).await;
    let mut logs = Vec::new();
    loop {
        let message = lines.next().await;
        if message["id"] == id {
            return (logs, message);
        }
        if message["method"] == "notifications/message" {
            logs.push(message["params"].clone());
        }
    }
}

async fn session(tenet: &ScriptedTenet) -> common::harness::Lines {
    let mut lines = Setup::new(tenet).start_lines();
    let answer = lines.exchange(INITIALIZE).await;
    assert!(
        answer["result"]["capabilities"]["logging"].is_object(),
        "{answer}"
    );
    assert!(
        answer["result"]["capabilities"]["prompts"].is_object(),
        "{answer}"
    );
    lines
        .send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    lines
}

#[tokio::test]
async fn a_session_that_set_a_level_hears_of_outcomes_at_or_above_it() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.items.get",
        vec![
            Canned::allow("job_1"),
            Canned::json(202, json!({"decision": "ESCALATE", "reviewId": "rev_1"})),
        ],
    );
    let mut lines = session(&tenet).await;

    // No level set: nothing.
    let (logs, _) = call(&mut lines, 1).await;
    assert!(logs.is_empty(), "{logs:?}");

    let set = lines
        .exchange(
            br#"{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"info"}}"#,
        )
        .await;
    assert_eq!(set["result"], json!({}), "{set}");
    tenet.on_execute("acme.items.get", vec![Canned::allow("job_2")]);
    let (logs, answer) = call(&mut lines, 3).await;
    assert_eq!(answer["result"]["structuredContent"]["status"], "executed");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["level"], "info");
    assert_eq!(logs[0]["logger"], "tenet");
    assert_eq!(logs[0]["data"]["status"], "executed");
    assert_eq!(logs[0]["data"]["tool"], "acme.items.get");
    assert!(!logs[0].to_string().contains("secret-argument"), "{logs:?}");

    // At `warning`, an executed call is below the level; an escalated one is not.
    lines
        .exchange(
            br#"{"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"warning"}}"#,
        )
        .await;
    let (logs, _) = call(&mut lines, 5).await;
    assert!(logs.is_empty(), "{logs:?}");
    tenet.on_execute(
        "acme.items.get",
        vec![Canned::json(
            202,
            json!({"decision": "ESCALATE", "reviewId": "rev_2"}),
        )],
    );
    let (logs, answer) = call(&mut lines, 6).await;
    assert_eq!(answer["result"]["structuredContent"]["status"], "escalated");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["level"], "warning");
    assert!(
        logs[0]["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("rev_2"),
        "{logs:?}"
    );
}

#[tokio::test]
async fn prompts_are_listed_empty_and_unknown_ones_refused() {
    let tenet = ScriptedTenet::start().await;
    let mut lines = session(&tenet).await;
    let listed = lines
        .exchange(br#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#)
        .await;
    assert_eq!(listed["result"]["prompts"], json!([]), "{listed}");
    let got = lines
        .exchange(br#"{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"x"}}"#)
        .await;
    assert_eq!(got["error"]["code"], -32602, "{got}");
    assert!(
        got["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offers no prompts"),
        "{got}"
    );
}

#[tokio::test]
async fn discovery_results_are_not_logged_as_outcomes() {
    let tenet = ScriptedTenet::start().await;
    let mut lines = Setup {
        tool_mode: tenet_mcp::bridge::ToolMode::Dynamic,
        ..Setup::new(&tenet)
    }
    .start_lines();
    lines.exchange(INITIALIZE).await;
    lines
        .send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    lines
        .exchange(
            br#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}"#,
        )
        .await;
    // A search is no governed call: its answer comes with no log notification.
    let answer = lines
        .exchange(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"tenet_search_tools","arguments":{"query":"items"}}}"#)
        .await;
    assert_eq!(answer["id"], 2, "a log notification came first: {answer}");
    assert!(
        answer["result"]["structuredContent"]["tools"].is_array(),
        "{answer}"
    );
    // A governed call through discovery is.
    let request = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "tenet_call_tool", "arguments": {"name": "acme_items_get", "arguments": {"id": "1"}}}});
    let logged = lines.exchange(request.to_string().as_bytes()).await;
    assert_eq!(logged["method"], "notifications/message", "{logged}");
    assert_eq!(logged["params"]["data"]["status"], "executed", "{logged}");
}
