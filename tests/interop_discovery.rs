//! Discovery mode with a client nobody here wrote: the Python `mcp` SDK, which validates
//! every non-error result against the tool's `outputSchema`, drives `--tool-mode dynamic`
//! over stdio. A missing client fails this test (run tests/interop/setup.sh).

mod common;

use common::{
    http_server::{KEY, fixture},
    interop::python_driver,
    scripted::ScriptedTenet,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_searches_describes_and_calls_in_dynamic_mode() {
    let tenet = ScriptedTenet::start().await;
    let mut args: Vec<String> = vec![
        "--transport".into(),
        "stdio".into(),
        "--command".into(),
        env!("CARGO_BIN_EXE_tenet-mcp").into(),
    ];
    for arg in ["serve", "--catalog", &fixture(), "--tool-mode", "dynamic"] {
        args.push(format!("--arg={arg}"));
    }
    args.extend(["--env".into(), format!("TENET_API_KEY={KEY}")]);
    args.extend(["--env".into(), format!("TENET_API_URL={}", tenet.url())]);
    let steps = json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "tenet_search_tools", "arguments": {"query": "get item"}},
        {"op": "call_tool", "name": "tenet_describe_tool", "arguments": {"name": "acme.items.get"}},
        {"op": "call_tool", "name": "tenet_call_tool", "arguments": {"name": "acme.items.get", "arguments": {"id": "7"}}},
        {"op": "call_tool", "name": "acme_items_get", "arguments": {"id": "8"}}
    ]);
    let out = tokio::task::spawn_blocking(move || python_driver(&args, &steps))
        .await
        .unwrap();
    let steps = out["steps"].as_array().expect("the driver ran every step");
    let names: Vec<&str> = steps[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tenet_job_status",
            "tenet_search_tools",
            "tenet_describe_tool",
            "tenet_call_tool"
        ]
    );
    let structured = |i: usize| &steps[i]["result"]["structuredContent"];
    assert_eq!(structured(1)["tools"][0]["name"], "acme.items.get", "{out}");
    assert_eq!(structured(2)["inputSchema"]["required"], json!(["id"]));
    // The SDK accepted both results against the call report's outputSchema.
    for i in [3, 4] {
        assert_eq!(structured(i)["status"], "executed", "{}", steps[i]);
        assert_eq!(steps[i]["result"]["isError"], false);
    }
    assert_eq!(tenet.executes_of("acme.items.get").len(), 2);
}
