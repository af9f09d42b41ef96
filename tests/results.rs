//! Big downstream bodies (`serve --max-result-bytes`): past the limit the result carries
//! the start of the body as a string (`execution.truncated`, `execution.size_bytes`) and a
//! `resource_link` to `tenet://jobs/{job_id}/execution`, which `resources/read` serves whole
//! to the agent whose call it was and to no other. In-process against a scripted Tenet
//! (stdio pipe, and HTTP with two tokens); the flag's parsing through the binary.

mod common;

use std::{process::Stdio, time::Duration};

use common::{
    harness::{Harness, Setup, finished_task},
    http_server::{TOKEN_A, TOKEN_B, tokens_file, within},
    scripted::{Canned, ScriptedTenet},
    stdio_server,
};
use rmcp::{
    RoleClient, Service, ServiceExt,
    model::{
        CallToolResponse, CallToolResult, ContentBlock, ErrorCode, ReadResourceRequestParams,
        ResourceContents, TaskPayload,
    },
    service::{RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tenet_mcp::{results::DEFAULT_MAX_RESULT_BYTES, transport::http::Options};

const URI: &str = "tenet://jobs/job_big/execution";

/// A JSON body whose text is about `bytes` long, with characters JSON escapes and
/// multi-byte ones, so the cut has to respect both.
fn big_body(bytes: usize) -> Value {
    let item = json!({"name": "caf\u{e9} \"quoted\"\n", "id": 12345});
    let n = bytes / item.to_string().len() + 1;
    json!({"items": vec![item; n]})
}

/// Scripts acme.items.get to complete as job `job_big` with `body`.
fn script(tenet: &ScriptedTenet, body: &Value) {
    tenet.on_execute("acme.items.get", vec![Canned::allow("job_big")]);
    tenet.on_job(
        "job_big",
        vec![Canned::completed("job_big", 200, body.clone())],
    );
}

async fn call_get(client: &RunningService<RoleClient, ()>) -> CallToolResult {
    let params = common::harness::params("acme_items_get", json!({"id": "1"}));
    within(
        "tools/call",
        Duration::from_secs(15),
        client.call_tool(params),
    )
    .await
    .expect("a tool result")
}

async fn read<C: Service<RoleClient>>(
    client: &RunningService<RoleClient, C>,
    uri: &str,
) -> Result<(String, Option<String>), ServiceError> {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await?;
    match result.contents.as_slice() {
        [
            ResourceContents::TextResourceContents {
                uri: got,
                mime_type,
                text,
                ..
            },
        ] => {
            assert_eq!(got, uri);
            Ok((text.clone(), mime_type.clone()))
        }
        other => panic!("one text content, not {other:?}"),
    }
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// What a cut result must hold, for a body whose JSON text is `full`.
fn assert_cut(result: &CallToolResult, full: &str, limit: usize) {
    let structured = result
        .structured_content
        .clone()
        .expect("structuredContent");
    let execution = &structured["execution"];
    assert_eq!(structured["status"], "executed");
    assert_eq!(execution["truncated"], true, "{execution}");
    assert_eq!(execution["size_bytes"], full.len());
    let kept = execution["body"].as_str().expect("a cut body is a string");
    assert!(full.starts_with(kept) && !kept.is_empty());
    let encoded = serde_json::to_string(kept).unwrap().len() - 2;
    assert!(encoded <= limit, "{encoded} bytes encoded, limit {limit}");
    let next = full[kept.len()..].chars().next().unwrap();
    let one_more = serde_json::to_string(&format!("{kept}{next}"))
        .unwrap()
        .len()
        - 2;
    assert!(one_more > limit, "the longest prefix that fits is kept");
    // Models that see only structuredContent read the same words as those that see the text.
    let summary = structured["summary"].as_str().unwrap();
    assert_eq!(summary, text_of(result));
    assert!(
        summary.contains(&format!("The response body is {} bytes", full.len()))
            && summary.contains(&format!("resources/read of {URI}")),
        "{summary}"
    );
    let links: Vec<_> = result
        .content
        .iter()
        .filter_map(ContentBlock::as_resource_link)
        .collect();
    assert_eq!(links.len(), 1, "{:?}", result.content);
    assert_eq!(links[0].uri, URI);
    assert_eq!(links[0].mime_type.as_deref(), Some("application/json"));
    assert_eq!(links[0].size, Some(full.len() as u64));
}

#[tokio::test]
async fn a_body_past_the_limit_is_cut_and_linked_and_read_whole_by_its_agent() {
    let tenet = ScriptedTenet::start().await;
    let body = big_body(3 * DEFAULT_MAX_RESULT_BYTES);
    script(&tenet, &body);
    let harness = Harness::start(&tenet).await;
    let info = harness.peer_info().unwrap();
    assert!(info.capabilities.resources.is_some(), "resources declared");

    let tools = harness.list_all_tools().await.unwrap();
    let tool = tools.iter().find(|t| t.name == "acme_items_get").unwrap();
    let schema = Value::Object((*tool.output_schema.clone().unwrap()).clone());
    let result = call_get(&harness.client).await;
    let full = body.to_string();
    assert_cut(&result, &full, DEFAULT_MAX_RESULT_BYTES);
    let structured = result.structured_content.clone().unwrap();
    assert!(
        jsonschema::validator_for(&schema)
            .unwrap()
            .is_valid(&structured),
        "a cut result is valid against the outputSchema"
    );

    let (text, mime_type) = read(&harness.client, URI).await.unwrap();
    assert_eq!(text, full);
    assert_eq!(mime_type.as_deref(), Some("application/json"));
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), body);

    let templates = harness.list_all_resource_templates().await.unwrap();
    assert_eq!(
        templates
            .iter()
            .map(|t| t.uri_template.as_str())
            .collect::<Vec<_>>(),
        ["tenet://jobs/{job_id}/execution"]
    );
    let listed = harness.list_all_resources().await.unwrap();
    assert!(
        listed.is_empty(),
        "bodies are linked from results, not listed"
    );

    let Err(ServiceError::McpError(error)) =
        read(&harness.client, "tenet://jobs/job_other/execution").await
    else {
        panic!("an error for a body never kept")
    };
    assert_eq!(error.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert!(
        error.message.contains("tenet_job_status"),
        "{}",
        error.message
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_body_within_the_limit_is_unchanged() {
    let tenet = ScriptedTenet::start().await;
    let body = json!({"id": "1", "name": "small"});
    script(&tenet, &body);
    let harness = Harness::start(&tenet).await;
    let result = call_get(&harness.client).await;
    let structured = result.structured_content.clone().unwrap();
    assert_eq!(
        structured["execution"],
        json!({"status": 200, "headers": {}, "body": body, "duration_ms": 3}),
        "no truncated or size_bytes field"
    );
    assert_eq!(
        result.content.len(),
        1,
        "only the text block: {:?}",
        result.content
    );
    assert!(!text_of(&result).contains("resources/read"));
    let Err(ServiceError::McpError(error)) = read(&harness.client, URI).await else {
        panic!("nothing is kept for a body that fits")
    };
    assert_eq!(error.code, ErrorCode::RESOURCE_NOT_FOUND);
    harness.stop().await;
}

/// A plain-text body is cut the same way and read back as text/plain.
#[tokio::test]
async fn a_text_body_is_cut_and_read_as_text() {
    let tenet = ScriptedTenet::start().await;
    let text = "línea de texto\n".repeat(DEFAULT_MAX_RESULT_BYTES / 8);
    script(&tenet, &Value::String(text.clone()));
    let harness = Harness::start(&tenet).await;
    let result = call_get(&harness.client).await;
    let structured = result.structured_content.clone().unwrap();
    assert_eq!(structured["execution"]["truncated"], true);
    assert_eq!(structured["execution"]["size_bytes"], text.len());
    let (read_back, mime_type) = read(&harness.client, URI).await.unwrap();
    assert_eq!(
        (read_back, mime_type.as_deref()),
        (text, Some("text/plain"))
    );
    harness.stop().await;
}

/// A call that outlived its poll deadline is followed with tenet_job_status, whose
/// result is cut and linked the same way.
#[tokio::test]
async fn a_followed_job_s_body_is_cut_and_linked_too() {
    let tenet = ScriptedTenet::start().await;
    tenet.start_job("acme.items.get", "job_big");
    let harness = Setup::new(&tenet).poll_timeout(0.2).start().await;
    let pending = call_get(&harness.client).await;
    let pending = pending.structured_content.unwrap();
    assert_eq!(pending["status"], "pending");
    let body = big_body(2 * DEFAULT_MAX_RESULT_BYTES);
    tenet.on_job(
        "job_big",
        vec![Canned::completed("job_big", 200, body.clone())],
    );
    let params =
        common::harness::params("tenet_job_status", json!({"job_ref": pending["job_ref"]}));
    let followed = harness.client.call_tool(params).await.unwrap();
    assert_cut(&followed, &body.to_string(), DEFAULT_MAX_RESULT_BYTES);
    let (text, _) = read(&harness.client, URI).await.unwrap();
    assert_eq!(text, body.to_string());
    harness.stop().await;
}

/// A task-aware client's task (`serve --tasks`) ends with the same cut, linked result.
#[tokio::test(start_paused = true)]
async fn a_task_s_body_is_cut_and_linked_too() {
    let tenet = ScriptedTenet::start().await;
    let body = big_body(2 * DEFAULT_MAX_RESULT_BYTES);
    script(&tenet, &body);
    let client = Setup::new(&tenet).start_with_tasks().await;
    let response = client
        .call_tool_once(common::harness::params(
            "acme_items_get",
            json!({"id": "1"}),
        ))
        .await
        .unwrap();
    let CallToolResponse::Task(created) = response else {
        panic!("expected a task, got {response:?}")
    };
    let done = finished_task(&client, &created.task.task_id).await;
    let TaskPayload::Completed { result } = done.payload else {
        panic!("expected a completed task: {:?}", done.payload)
    };
    let result: CallToolResult = serde_json::from_value(Value::Object(result)).unwrap();
    assert_cut(&result, &body.to_string(), DEFAULT_MAX_RESULT_BYTES);
    let (text, _) = read(&client.client, URI).await.unwrap();
    assert_eq!(text, body.to_string());
    client.stop().await;
}

async fn http_client(base: &str, token: &str) -> RunningService<RoleClient, ()> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    within("initialize", Duration::from_secs(10), ().serve(transport))
        .await
        .expect("the server answers initialize")
}

/// Over HTTP each token is an agent: the body of agent-a's call is agent-a's alone.
#[tokio::test]
async fn another_agent_cannot_read_the_body() {
    let tenet = ScriptedTenet::start().await;
    let body = big_body(2 * DEFAULT_MAX_RESULT_BYTES);
    script(&tenet, &body);
    let tokens = tokens_file();
    let server = Setup::new(&tenet)
        .serve_http(Options {
            auth_tokens: Some(tokens.path().to_owned()),
            ..Options::default()
        })
        .await;
    let alice = http_client(&server.base, TOKEN_A).await;
    let bob = http_client(&server.base, TOKEN_B).await;
    let result = call_get(&alice).await;
    assert_cut(&result, &body.to_string(), DEFAULT_MAX_RESULT_BYTES);

    let Err(ServiceError::McpError(error)) = read(&bob, URI).await else {
        panic!("agent-b must not read agent-a's body")
    };
    assert_eq!(error.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert!(
        !error.message.contains("12345") && error.data.is_none(),
        "nothing of the body leaks: {error:?}"
    );
    let (text, _) = read(&alice, URI).await.expect("agent-a reads its body");
    assert_eq!(text, body.to_string());
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
    server.shut_down().await.unwrap();
}

/// The body's size past which results cut it: 2048 by flag or environment, not 2047.
#[tokio::test]
async fn the_flag_and_its_environment_variable_set_the_limit() {
    let tenet = ScriptedTenet::start().await;
    let body = Value::String("x".repeat(2048));
    script(&tenet, &body);
    for (extra, env) in [
        (&["--max-result-bytes", "2048"][..], &[][..]),
        (&[][..], &[("TENET_MCP_MAX_RESULT_BYTES", "2048")][..]),
    ] {
        let client = stdio_server::start_with_env(&tenet, extra, env).await;
        let result = call_get(&client).await;
        assert_eq!(
            result.structured_content.unwrap()["execution"]["body"],
            body
        );
        client.cancel().await.unwrap();
    }
    let client = stdio_server::start_with_env(&tenet, &["--max-result-bytes", "2047"], &[]).await;
    let result = call_get(&client).await;
    let execution = result.structured_content.unwrap()["execution"].clone();
    assert_eq!(
        (
            execution["truncated"].clone(),
            execution["size_bytes"].clone()
        ),
        (json!(true), json!(2048))
    );
    assert_eq!(execution["body"].as_str().unwrap().len(), 2047);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_limits_are_refused_before_serving() {
    for (args, env) in [
        (&["--max-result-bytes", "1023"][..], None),
        (&["--max-result-bytes", "67108865"][..], None),
        (&["--max-result-bytes", "100KB"][..], None),
        (&["--max-result-bytes", "0"][..], None),
        (&[][..], Some("lots")),
    ] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
        command
            .args(["serve", "--emulator"])
            .args(args)
            .env_remove("TENET_MCP_MAX_RESULT_BYTES")
            .stdin(Stdio::null());
        if let Some(value) = env {
            command.env("TENET_MCP_MAX_RESULT_BYTES", value);
        }
        let output = within("the refusal", Duration::from_secs(10), command.output())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains("--max-result-bytes")
                && stderr.contains("not a number of bytes between 1024 and 67108864"),
            "{args:?} {env:?}: {stderr}"
        );
    }
}
