//! Interoperability over stdio with clients nobody here wrote: the Python `mcp` SDK's
//! client and the MCP Inspector CLI, against the real binary and a scripted Tenet.
//! A missing client fails these tests (run tests/interop/setup.sh, as tests/run.sh does).

mod common;

use common::{
    interop::{check_inspector_outcomes, python_driver},
    scripted::{Canned, ScriptedTenet},
};
use serde_json::{Value, json};

fn fixture() -> String {
    format!("{}/tests/fixtures/acme.json", env!("CARGO_MANIFEST_DIR"))
}

/// The Python driver's arguments to spawn the bridge over stdio against `tenet`.
fn stdio_args(tenet: &ScriptedTenet, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--transport",
        "stdio",
        "--command",
        env!("CARGO_BIN_EXE_tenet-mcp"),
    ]
    .map(String::from)
    .into();
    for arg in ["serve", "--catalog", &fixture(), "--poll-timeout", "5"]
        .into_iter()
        .chain(extra.iter().copied())
    {
        // `--arg=VALUE`: values starting with `--` must be attached.
        args.push(format!("--arg={arg}"));
    }
    args.extend(["--env".to_owned(), "TENET_API_KEY=tnt_interop".to_owned()]);
    args.extend(["--env".to_owned(), format!("TENET_API_URL={}", tenet.url())]);
    args
}

fn script_outcomes(tenet: &ScriptedTenet) {
    tenet.on_execute(
        "acme.items.get",
        vec![Canned::json(
            202,
            json!({"jobId": "job_py", "decision": "ALLOW", "decisionId": "dec_py"}),
        )],
    );
    tenet.on_job("job_py", vec![
        Canned::json(200, json!({"jobId": "job_py", "status": "running"})),
        Canned::json(200, json!({"jobId": "job_py", "status": "completed", "execution": {"status": 200, "headers": {}, "body": {"id": "7"}, "durationMs": 4}})),
    ]);
    tenet.on_execute("acme.items.delete", vec![Canned::json(202, json!({"decision": "ESCALATE", "reviewId": "rev_py", "reasonCodes": ["RULE_irreversible-escalate"]}))]);
    tenet.on_execute(
        "acme.payments.create",
        vec![Canned::json(
            403,
            json!({"decision": "BLOCK", "reasonCodes": ["RULE_block-irreversible-on-prod"]}),
        )],
    );
    tenet.on_execute(
        "acme.items.create",
        vec![Canned::json(
            202,
            json!({"jobId": "job_fail", "decision": "ALLOW"}),
        )],
    );
    tenet.on_job("job_fail", vec![Canned::json(200, json!({"jobId": "job_fail", "status": "failed", "executionError": "credential_not_found"}))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_client_over_stdio() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    let steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "acme_items_get", "arguments": {"id": "7"}, "progress": true},
        {"op": "call_tool", "name": "acme_items_delete", "arguments": {"id": "7"}},
        {"op": "call_tool", "name": "acme_payments_create", "arguments": {"amount": 100, "to": "acct_1"}},
        {"op": "call_tool", "name": "acme_items_create", "arguments": {"name": "x"}},
        {"op": "call_tool", "name": "acme_items_create", "arguments": {"count": "many"}},
        {"op": "call_tool", "name": "no_such_tool", "arguments": {}},
        {"op": "call_tool", "name": "acme_items_get", "arguments": {"id": "8"}}
    ]);
    let args = stdio_args(&tenet, &[]);
    let out = tokio::task::spawn_blocking(move || python_driver(&args, &steps))
        .await
        .unwrap();
    assert_eq!(out["server_info"]["name"], "tenet-mcp");
    let steps = out["steps"].as_array().unwrap();

    let tools = steps[0]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 6);
    let delete = tools
        .iter()
        .find(|t| t["name"] == "acme_items_delete")
        .unwrap();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    assert_eq!(delete["outputSchema"]["type"], "object");

    let result = |i: usize| -> (&Value, bool, String) {
        let r = &steps[i]["result"];
        let text = r["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (
            &r["structuredContent"],
            r["isError"].as_bool().unwrap_or(false),
            text,
        )
    };
    let (executed, is_error, text) = result(1);
    assert_eq!(
        (
            executed["status"].clone(),
            executed["execution"]["body"].clone(),
            is_error
        ),
        (json!("executed"), json!({"id": "7"}), false)
    );
    assert!(text.contains("HTTP 200"));
    let progress = steps[1]["progress"].as_array().unwrap();
    assert!(
        progress
            .iter()
            .any(|p| p["message"].as_str().unwrap_or("").contains("job_py is")),
        "progress callback: {progress:?}"
    );

    let (escalated, is_error, text) = result(2);
    assert_eq!(
        (
            escalated["status"].clone(),
            escalated["review_id"].clone(),
            is_error
        ),
        (json!("escalated"), json!("rev_py"), false)
    );
    assert!(text.contains("do not retry"));
    let (blocked, is_error, _) = result(3);
    assert_eq!(
        (
            blocked["status"].clone(),
            blocked["reason_codes"].clone(),
            is_error
        ),
        (
            json!("blocked"),
            json!(["RULE_block-irreversible-on-prod"]),
            true
        )
    );
    let (failed, is_error, _) = result(4);
    assert_eq!(
        (
            failed["status"].clone(),
            failed["execution_error"].clone(),
            is_error
        ),
        (json!("failed"), json!("credential_not_found"), true)
    );
    let (invalid, is_error, text) = result(5);
    assert_eq!(
        (invalid["status"].clone(), is_error),
        (json!("error"), true)
    );
    assert!(text.contains("name") && text.contains("count"), "{text}");
    assert_eq!(
        steps[6]["error"]["code"], -32602,
        "unknown tool: {}",
        steps[6]
    );
    let (after, _, _) = result(7);
    assert_eq!(after["status"], "executed", "still serving after bad input");
    assert_eq!(
        tenet.executes_of("acme.items.create").len(),
        1,
        "invalid arguments never reached Tenet"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inspector_cli_over_stdio() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    // Inspector options first, then `--` and the server command (whose own flags,
    // such as --catalog, would otherwise be taken as the Inspector's).
    let base = |method: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["-e", "TENET_API_KEY=tnt_interop", "-e"]
            .map(String::from)
            .into();
        args.push(format!("TENET_API_URL={}", tenet.url()));
        args.extend(method.iter().map(|s| s.to_string()));
        args.extend(
            [
                "--",
                env!("CARGO_BIN_EXE_tenet-mcp"),
                "serve",
                "--catalog",
                &fixture(),
            ]
            .map(String::from),
        );
        args
    };
    tokio::task::block_in_place(|| check_inspector_outcomes("stdio", base));
}
