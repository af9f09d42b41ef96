//! The bridge driven by rmcp's client against a scripted Tenet: every row of the Tenet
//! contract, retries, poll timeout, bad key, bad input (in-process, over the stdio
//! transport's line framing); and the binary itself for exit codes, argv and stdout purity.

mod common;

use std::{process::Stdio, time::Duration};

use common::{
    harness::{Harness, Logs, Setup, fixture},
    scripted::{Canned, ScriptedTenet},
};
use rmcp::{model::ErrorCode, service::ServiceError};
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, time::Instant};

const KEY: &str = "tnt_test_secret_key_123";

/// An in-process bridge (`--poll-timeout 3 --request-timeout 2`, key [`KEY`]) and
/// what it logged, at debug level.
struct Bridge {
    harness: Harness,
    logs: Logs,
    _capture: tracing::subscriber::DefaultGuard,
}

impl std::ops::Deref for Bridge {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.harness
    }
}

impl Bridge {
    /// Starts it as `adjust` changes this file's settings.
    async fn start(tenet: &ScriptedTenet, adjust: impl FnOnce(Setup) -> Setup) -> Self {
        let (logs, capture) = Logs::capture();
        let setup = Setup {
            api_key: KEY.to_owned(),
            ..Setup::new(tenet).poll_timeout(3.0).request_timeout(2.0)
        };
        Self {
            harness: adjust(setup).start().await,
            logs,
            _capture: capture,
        }
    }

    /// Stops the bridge and returns its logs, checked for the API key.
    async fn stop(self) -> String {
        self.harness.stop().await;
        let log = self.logs.text();
        assert!(
            !log.contains(KEY),
            "the API key leaked into the logs:\n{log}"
        );
        log
    }
}

#[tokio::test]
async fn lists_catalog_tools_with_schemas_and_annotations() {
    let tenet = ScriptedTenet::start().await;
    let bridge = Bridge::start(&tenet, |s| s).await;
    let tools = bridge.client.list_all_tools().await.unwrap();
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "tenet_job_status",
            "acme_items_get",
            "acme_items_create",
            "acme_items_replace",
            "acme_items_delete",
            "acme_payments_create"
        ]
    );
    let hints = |name: &str| {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let a = tool.annotations.clone().unwrap();
        (
            a.read_only_hint,
            a.destructive_hint,
            a.idempotent_hint,
            a.open_world_hint,
        )
    };
    assert_eq!(
        hints("acme_items_get"),
        (Some(true), Some(false), Some(true), Some(true))
    );
    assert_eq!(
        hints("acme_items_create"),
        (Some(false), Some(false), Some(false), Some(true))
    );
    assert_eq!(
        hints("acme_items_replace"),
        (Some(false), Some(false), Some(true), Some(true))
    );
    assert_eq!(
        hints("acme_items_delete"),
        (Some(false), Some(true), Some(true), Some(true))
    );
    assert_eq!(
        hints("acme_payments_create"),
        (Some(false), Some(true), Some(false), Some(true))
    );
    let get = tools.iter().find(|t| t.name == "acme_items_get").unwrap();
    assert_eq!(get.title.as_deref(), Some("Get an item"));
    assert_eq!(get.input_schema.get("required"), Some(&json!(["id"])));
    let output = Value::Object((*get.output_schema.clone().expect("outputSchema")).clone());
    assert_eq!(output["type"], "object");
    for field in [
        "status",
        "outcome",
        "executed",
        "decision_id",
        "review_id",
        "reason_codes",
        "job_id",
        "execution",
        "execution_error",
        "http_status",
        "tool",
        "request_id",
    ] {
        assert!(
            output["properties"].get(field).is_some(),
            "outputSchema lacks {field}: {output}"
        );
    }
    assert!(
        tenet.requests().is_empty(),
        "listing tools must not call Tenet"
    );
    bridge.stop().await;
}

#[tokio::test]
async fn allowed_call_is_executed_after_polling_the_job() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.get", vec![Canned::json(202, json!({"jobId": "job_1", "status": "pending", "decision": "ALLOW", "decisionId": "dec_1"}))]);
    let running = json!({"jobId": "job_1", "status": "running"});
    tenet.on_job("job_1", vec![
        Canned::job("job_1", "pending"),
        Canned::json(200, running),
        Canned::json(200, json!({"jobId": "job_1", "status": "completed", "execution": {"status": 200, "headers": {"x-a": "1"}, "body": {"id": "42", "name": "widget"}, "durationMs": 12}})),
    ]);
    let bridge = Bridge::start(&tenet, |s| Setup {
        context: vec![("env".into(), "staging".into())],
        ..s.agent("agent-7")
    })
    .await;
    let (report, text, is_error) = bridge.ok("acme_items_get", json!({"id": "42"})).await;
    assert!(!is_error);
    assert_eq!(report["status"], "executed");
    assert_eq!(report["outcome"], "ALLOW");
    assert_eq!(report["executed"], true);
    assert_eq!(report["decision_id"], "dec_1");
    assert_eq!(report["job_id"], "job_1");
    assert_eq!(report["tool"], "acme.items.get");
    assert_eq!(report["http_status"], 202);
    assert_eq!(
        report["execution"],
        json!({"status": 200, "headers": {"x-a": "1"}, "body": {"id": "42", "name": "widget"}, "duration_ms": 12})
    );
    assert!(
        text.contains("HTTP 200") && text.contains("widget"),
        "{text}"
    );
    assert_eq!(tenet.polls_of("job_1"), 3);

    let executes = tenet.executes_of("acme.items.get");
    assert_eq!(executes.len(), 1);
    let sent = &executes[0];
    let request_id = sent.body["requestId"].as_str().unwrap();
    assert_eq!(report["request_id"], request_id);
    assert!(
        uuid::Uuid::parse_str(request_id).is_ok(),
        "requestId is a UUID"
    );
    assert_eq!(sent.headers["idempotency-key"], request_id);
    assert_eq!(sent.headers["authorization"], format!("Bearer {KEY}"));
    assert!(
        sent.headers["user-agent"].starts_with("tenet-mcp/"),
        "{}",
        sent.headers["user-agent"]
    );
    assert!(sent.headers["content-type"].starts_with("application/json"));
    assert_eq!(
        sent.body,
        json!({"requestId": request_id, "service": "acme", "toolCall": {"toolName": "acme.items.get", "arguments": {"id": "42"}}, "agent": {"agentId": "agent-7"}, "context": {"env": "staging"}})
    );
    let poll = tenet
        .requests()
        .into_iter()
        .find(|r| r.kind == "job")
        .unwrap();
    assert_eq!(poll.headers["authorization"], format!("Bearer {KEY}"));
    let log = bridge.stop().await;
    assert!(
        log.contains("tool call governed"),
        "the call is logged (so the key check sees the logs): {log}"
    );
}

/// Each contract row: the scripted answer, then what the report must say.
#[tokio::test]
async fn every_decision_shape_becomes_the_right_report() {
    let tenet = ScriptedTenet::start().await;
    let bridge = Bridge::start(&tenet, |s| s).await;
    let cases: Vec<(Canned, Value, bool, &str)> = vec![
        (
            Canned::json(
                200,
                json!({"jobId": "job_200", "status": "pending", "decision": "ALLOW"}),
            ),
            json!({"status": "executed", "outcome": "ALLOW", "executed": true, "job_id": "job_200"}),
            false,
            "HTTP 200",
        ),
        (
            Canned::json(
                200,
                json!({"decision": "ALLOW_WITH_CONDITIONS", "status": "completed", "execution": {"status": 201, "headers": {}, "body": "created", "durationMs": 3}}),
            ),
            json!({"status": "executed", "outcome": "ALLOW_WITH_CONDITIONS", "executed": true, "execution": {"status": 201, "headers": {}, "body": "created", "duration_ms": 3}}),
            false,
            "HTTP 201",
        ),
        (
            Canned::json(
                202,
                json!({"decision": "ESCALATE", "reviewId": "rev_1", "status": "pending"}),
            ),
            json!({"status": "escalated", "outcome": "ESCALATE", "executed": false, "review_id": "rev_1"}),
            false,
            "held for human approval as review rev_1",
        ),
        (
            Canned::json(
                202,
                json!({"decision": {"outcome": "ESCALATE", "id": "dec_n", "reviewId": "rev_2", "reason_codes": ["RULE_irreversible-escalate"]}}),
            ),
            json!({"status": "escalated", "outcome": "ESCALATE", "decision_id": "dec_n", "review_id": "rev_2", "reason_codes": ["RULE_irreversible-escalate"]}),
            false,
            "do not retry",
        ),
        (
            Canned::json(
                403,
                json!({"decision": "BLOCK", "decisionId": "d1", "reasonCodes": ["RULE_block-irreversible-on-prod"]}),
            ),
            json!({"status": "blocked", "outcome": "BLOCK", "decision_id": "d1", "reason_codes": ["RULE_block-irreversible-on-prod"], "http_status": 403}),
            true,
            "RULE_block-irreversible-on-prod",
        ),
        (
            Canned::text(403, "<html>denied</html>"),
            json!({"status": "blocked", "outcome": "BLOCK"}),
            true,
            "Do not retry",
        ),
        (
            Canned::json(202, json!({"status": "pending"})),
            json!({"status": "escalated", "outcome": "ESCALATE"}),
            false,
            "human approval",
        ),
        (
            Canned::json(
                200,
                json!({"decision": "ALLOW", "executionError": "credential_not_found"}),
            ),
            json!({"status": "failed", "outcome": "ALLOW", "executed": false, "execution_error": "credential_not_found"}),
            true,
            "connect one in Tenet",
        ),
        (
            Canned::json(
                400,
                json!({"error": "unknown_tool", "message": "no such tool"}),
            ),
            json!({"status": "error", "outcome": null, "reason_codes": ["unknown_tool"], "http_status": 400}),
            true,
            "no such tool",
        ),
        (
            Canned::json(401, json!({"error": "unauthorized"})),
            json!({"status": "error", "outcome": null, "http_status": 401}),
            true,
            "rejected the API key",
        ),
    ];
    for (i, (answer, expected, expect_error, needle)) in cases.into_iter().enumerate() {
        let name = format!("case {i}");
        tenet.on_execute("acme.items.create", vec![answer]);
        let (report, text, is_error) = bridge.ok("acme_items_create", json!({"name": name})).await;
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&report[key], value, "{name}: field {key} of {report:#}");
        }
        assert_eq!(is_error, expect_error, "{name}: isError; {report}");
        assert!(
            text.contains(needle),
            "{name}: text {text:?} lacks {needle:?}"
        );
        assert!(!text.contains(KEY), "{name}: the key leaked into the text");
        assert_eq!(
            report["summary"], text,
            "{name}: structuredContent.summary carries the text block's words (clients that show models only structuredContent)"
        );
    }
    bridge.stop().await;
}

#[tokio::test]
async fn failed_jobs_report_their_error() {
    let tenet = ScriptedTenet::start().await;
    let bridge = Bridge::start(&tenet, |s| s).await;
    tenet.on_execute("acme.items.create", vec![Canned::allow("job_f")]);
    tenet.on_job(
        "job_f",
        vec![Canned::json(
            200,
            json!({"jobId": "job_f", "status": "failed", "executionError": "downstream_timeout"}),
        )],
    );
    let (report, _, is_error) = bridge.ok("acme_items_create", json!({"name": "x"})).await;
    assert_eq!(
        (
            report["status"].clone(),
            report["execution_error"].clone(),
            is_error
        ),
        (json!("failed"), json!("downstream_timeout"), true)
    );

    tenet.on_execute("acme.items.create", vec![Canned::allow("job_g")]);
    tenet.on_job(
        "job_g",
        vec![Canned::json(
            200,
            json!({"jobId": "job_g", "status": "failed"}),
        )],
    );
    let (report, _, _) = bridge.ok("acme_items_create", json!({"name": "y"})).await;
    assert_eq!(report["execution_error"], "downstream_failed");
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn poll_deadline_answers_pending_with_the_job_id() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.create", vec![Canned::allow("job_slow")]);
    tenet.on_job("job_slow", vec![Canned::job("job_slow", "running")]);
    let bridge = Bridge::start(&tenet, |s| s.poll_timeout(0.6)).await;
    let started = Instant::now();
    let (report, text, is_error) = bridge.ok("acme_items_create", json!({"name": "x"})).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the poll deadline was not honoured"
    );
    assert_eq!(report["status"], "pending");
    assert_eq!(report["outcome"], "ALLOW");
    assert_eq!(report["executed"], false);
    assert_eq!(report["job_id"], "job_slow");
    assert_eq!(report["execution_error"], "poll_timeout");
    assert!(!is_error && text.contains("job_slow"), "{text}");
    // Adaptive polling: several polls early on, then backing off (not a fixed 0.75 s).
    let polls = tenet.polls_of("job_slow");
    assert!((4..=12).contains(&polls), "{polls} polls in 0.6 s");
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_the_same_request_id() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.payments.create",
        vec![
            Canned::text(503, "busy"),
            Canned::json(429, json!({"error": "rate_limited"})).header("retry-after", "1"),
            Canned::allow("job_r"),
        ],
    );
    let bridge = Bridge::start(&tenet, |s| s).await;
    let started = Instant::now();
    let (report, _, _) = bridge
        .ok("acme_payments_create", json!({"amount": 5, "to": "acct_1"}))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(report["status"], "executed");
    let executes = tenet.executes_of("acme.payments.create");
    assert_eq!(executes.len(), 3);
    let ids: Vec<_> = executes
        .iter()
        .map(|r| {
            (
                r.body["requestId"].clone(),
                r.headers["idempotency-key"].clone(),
            )
        })
        .collect();
    assert!(
        ids.iter()
            .all(|(body_id, key)| body_id == &ids[0].0 && body_id == key),
        "{ids:?}"
    );
    assert_eq!(report["request_id"], ids[0].0);
    assert_eq!(
        tenet.polls_of("job_r"),
        1,
        "one job, polled once to completion"
    );

    // Three server errors: give up, say so, and never more than three tries.
    tenet.on_execute("acme.items.create", vec![Canned::text(502, "bad gateway")]);
    let (report, text, is_error) = bridge.ok("acme_items_create", json!({"name": "x"})).await;
    assert_eq!(
        (
            report["status"].clone(),
            report["http_status"].clone(),
            is_error
        ),
        (json!("error"), json!(502), true)
    );
    assert!(text.contains("HTTP 502 after 3 tries"), "{text}");
    assert_eq!(tenet.executes_of("acme.items.create").len(), 3);

    // 4xx other than 429 are never retried.
    tenet.on_execute(
        "acme.items.get",
        vec![Canned::json(400, json!({"error": "unknown_tool"}))],
    );
    bridge.ok("acme_items_get", json!({"id": "1"})).await;
    assert_eq!(tenet.executes_of("acme.items.get").len(), 1);
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried_then_reported() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.items.create",
        vec![
            Canned::allow("job_t").delayed(Duration::from_secs(3)),
            Canned::allow("job_t"),
        ],
    );
    let bridge = Bridge::start(&tenet, |s| s.request_timeout(0.5)).await;
    let (report, _, _) = bridge.ok("acme_items_create", json!({"name": "x"})).await;
    assert_eq!(report["status"], "executed");
    let executes = tenet.executes_of("acme.items.create");
    assert_eq!(executes.len(), 2);
    assert_eq!(executes[0].body["requestId"], executes[1].body["requestId"]);
    bridge.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unreachable_tenet_is_an_error_result() {
    let tenet = ScriptedTenet::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bridge = Bridge::start(&tenet, |s| Setup {
        api_url: format!("http://{closed}"),
        ..s
    })
    .await;
    let (report, text, is_error) = bridge.ok("acme_items_get", json!({"id": "1"})).await;
    assert!(is_error);
    assert_eq!(report["status"], "error");
    assert!(
        text.contains("cannot reach Tenet") && text.contains("after 3 tries"),
        "{text}"
    );
    assert!(tenet.requests().is_empty());
    bridge.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let tenet = ScriptedTenet::start().await;
    let bridge = Bridge::start(&tenet, |s| s).await;

    let (report, text, is_error) = bridge
        .ok("acme_items_create", json!({"count": 0, "extra": true}))
        .await;
    assert!(is_error);
    assert_eq!(report["status"], "error");
    assert_eq!(report["outcome"], Value::Null);
    assert!(
        text.contains("3 problem(s)"),
        "every violation is listed: {text}"
    );
    assert!(
        text.contains("name") && text.contains("count") && text.contains("extra"),
        "{text}"
    );
    assert!(
        tenet.requests().is_empty(),
        "invalid arguments must not reach Tenet"
    );

    let error = bridge.call("no_such_tool", json!({})).await.unwrap_err();
    let ServiceError::McpError(error) = error else {
        panic!("expected a JSON-RPC error, got {error:?}")
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert!(
        error.message.contains("Unknown tool: no_such_tool"),
        "{}",
        error.message
    );

    let (report, _, is_error) = bridge
        .ok("acme_items_get", json!({"id": "after-errors"}))
        .await;
    assert_eq!(
        (report["status"].clone(), is_error),
        (json!("executed"), false)
    );
    assert_eq!(
        tenet
            .requests()
            .iter()
            .filter(|r| r.kind == "execute")
            .count(),
        1
    );
    bridge.stop().await;
}

#[tokio::test]
async fn a_shutdown_stops_the_server_while_its_client_is_still_connected() {
    let tenet = ScriptedTenet::start().await;
    let bridge = Bridge::start(&tenet, |s| s).await;
    let (report, _, _) = bridge.ok("acme_items_get", json!({"id": "1"})).await;
    assert_eq!(report["status"], "executed");
    bridge
        .harness
        .shut_down()
        .await
        .expect("a shutdown (a signal in `serve`) ends serving cleanly");
}

#[tokio::test]
async fn missing_key_exits_2_with_what_to_set() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["serve"])
        .env_remove("TENET_API_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TENET_API_KEY is not set") && stderr.contains("--emulator"),
        "{stderr}"
    );
}

#[tokio::test]
async fn invalid_catalog_refuses_to_start_naming_file_and_tool() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, json!({"service": "b", "tools": [{"name": "b.x", "description": "d", "method": "GET", "path": "/x/{id}", "input_schema": {"type": "object"}}]}).to_string()).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["serve", "--catalog"])
        .arg(&bad)
        .env("TENET_API_KEY", KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json: tool b.x: path parameter `id`"),
        "{stderr}"
    );

    let check = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["catalog", "check", &fixture()])
        .output()
        .unwrap();
    assert!(check.status.success());
    let listing = String::from_utf8_lossy(&check.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["acme_items_delete", "DELETE", "/items/{id}"]),
        "{listing}"
    );
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["catalog", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(2),
        "an invalid catalog is a configuration error, as for serve"
    );
}

/// Writes initialize, initialized, tools/list and one call as raw lines; checks that the
/// three answers come back, each a JSON-RPC line, the call executed.
async fn raw_exchange(
    input: &mut (impl tokio::io::AsyncWrite + Unpin),
    output: impl tokio::io::AsyncRead + Unpin,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "acme_items_get", "arguments": {"id": "1"}}}),
    ];
    for message in &messages {
        input
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut lines = BufReader::new(output).lines();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("a line");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        seen.push(message);
    }
    assert_eq!(seen[0]["result"]["serverInfo"]["name"], "tenet-mcp");
    assert_eq!(seen[1]["result"]["tools"].as_array().unwrap().len(), 6);
    assert_eq!(seen[2]["result"]["structuredContent"]["status"], "executed");
}

/// The bridge binary serving the fixture catalog against `tenet`, for raw exchanges.
/// `TENET_API_URL` names a closed port: the `--api-url` flag must win for calls to execute.
fn raw_bridge(tenet: &ScriptedTenet) -> tokio::process::Command {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
    command
        .args(["serve", "--catalog", &fixture(), "--api-url", &tenet.url()])
        .env("TENET_API_KEY", KEY)
        .env("TENET_API_URL", format!("http://{closed}"))
        .kill_on_drop(true);
    command
}

/// Waits (at most 10 s) for the bridge to exit after its input ended; checks it exited cleanly.
async fn exits_cleanly(child: &mut tokio::process::Child, input: &str) {
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the server exits cleanly when {input} closes"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn socket_pairs_serve_like_pipes() {
    // Node.js clients (Claude Desktop, the MCP Inspector) give a server socket pairs, not pipes.
    use std::os::{fd::OwnedFd, unix::net::UnixStream};
    use tokio::io::AsyncWriteExt;
    let tenet = ScriptedTenet::start().await;
    let (ours_in, theirs_in) = UnixStream::pair().unwrap();
    let (ours_out, theirs_out) = UnixStream::pair().unwrap();
    let mut child = raw_bridge(&tenet)
        .stdin(Stdio::from(OwnedFd::from(theirs_in)))
        .stdout(Stdio::from(OwnedFd::from(theirs_out)))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tokio_side = |stream: UnixStream| {
        stream.set_nonblocking(true).unwrap();
        tokio::net::UnixStream::from_std(stream).unwrap()
    };
    let mut input = tokio_side(ours_in);
    raw_exchange(&mut input, tokio_side(ours_out)).await;
    input.shutdown().await.unwrap();
    exits_cleanly(&mut child, "its input socket").await;
}

/// Raw JSON-RPC over the pipes: every stdout line is a JSON-RPC message.
#[tokio::test]
async fn stdout_carries_only_json_rpc() {
    let tenet = ScriptedTenet::start().await;
    let mut child = raw_bridge(&tenet)
        .args(["--log-level", "trace"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Drain stderr as it comes: a full pipe would block the server's logging.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).await.unwrap();
        text
    });
    raw_exchange(&mut stdin, child.stdout.take().unwrap()).await;
    drop(stdin);
    exits_cleanly(&mut child, "stdin").await;
    let stderr = stderr_task.await.unwrap();
    assert!(
        stderr.contains("tool call governed"),
        "logs go to stderr: {stderr}"
    );
    assert!(!stderr.contains(KEY));
}
