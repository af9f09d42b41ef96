//! MCP over HTTP (Streamable HTTP at /mcp and legacy SSE at /sse) against a scripted
//! Tenet: both transports, bearer tokens and agent ids, Origin/Host checks, body limit,
//! malformed JSON, unknown sessions, the session cap, idle reaping, 50 concurrent
//! clients, /metrics, graceful shutdown, config errors, and interop with the Python
//! `mcp` SDK and the MCP Inspector CLI. Everything listens on and connects to loopback
//! only.
//!
//! Most tests serve the bridge in-process ([`HttpHarness`]); the binary ([`Server`])
//! serves the tests of argv, exit codes, signals and stderr, and the one that reads
//! metrics every call of the process counts (in-process tests share one recorder).

mod common;

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{
    harness::{HttpHarness, Logs},
    http_server::{
        KEY, Server, SseClient, TOKEN_A, TOKEN_B, fixture, initialize_body, metric, tokens_file,
        within,
    },
    interop::{check_inspector_outcomes, python_driver},
    scripted::{Canned, ScriptedTenet},
};
use reqwest::{StatusCode, header};
use rmcp::{RoleClient, service::RunningService};
use serde_json::{Value, json};
use tenet_mcp::transport::http::Options;

/// Calls a tool and returns (structuredContent, isError).
async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> (Value, bool) {
    let (report, _, is_error) = within(
        "tools/call",
        Duration::from_secs(15),
        common::harness::ok(client, tool, args),
    )
    .await;
    (report, is_error)
}

/// `--auth-tokens` with the [`tokens_file`] (kept alive by the caller).
fn with_tokens(tokens: &tempfile::NamedTempFile) -> Options {
    Options {
        auth_tokens: Some(PathBuf::from(tokens.path())),
        ..Options::default()
    }
}

/// The answers that give one call of each outcome.
fn script_outcomes(tenet: &ScriptedTenet) {
    tenet.on_execute("acme.items.delete", vec![Canned::json(202, json!({"decision": "ESCALATE", "reviewId": "rev_h", "reasonCodes": ["RULE_irreversible-escalate"]}))]);
    tenet.on_execute("acme.payments.create", vec![Canned::json(403, json!({"decision": "BLOCK", "decisionId": "d_h", "reasonCodes": ["RULE_block-irreversible-on-prod"]}))]);
}

#[tokio::test]
async fn streamable_http_serves_tools_and_each_outcome() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    let server = Server::start(&tenet, &["--agent-id", "local-agent"]).await;
    let client = server.client(None).await;
    let info = client.peer_info().unwrap();
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("tenet-mcp")
    );
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 6);

    let (executed, is_error) = call(&client, "acme_items_get", json!({"id": "1"})).await;
    assert_eq!(
        (executed["status"].clone(), is_error),
        (json!("executed"), false)
    );
    let (escalated, is_error) = call(&client, "acme_items_delete", json!({"id": "1"})).await;
    assert_eq!(
        (
            escalated["status"].clone(),
            escalated["review_id"].clone(),
            is_error
        ),
        (json!("escalated"), json!("rev_h"), false)
    );
    let (blocked, is_error) = call(
        &client,
        "acme_payments_create",
        json!({"amount": 5, "to": "acct"}),
    )
    .await;
    assert_eq!(
        (blocked["status"].clone(), is_error),
        (json!("blocked"), true)
    );

    // Unauthenticated on loopback: calls carry the bridge's --agent-id.
    let sent = tenet.executes_of("acme.items.get");
    assert_eq!(sent[0].body["agent"]["agentId"], "local-agent");
    assert_eq!(sent[0].headers["authorization"], format!("Bearer {KEY}"));

    let outcomes = [
        ("acme_items_get", "executed"),
        ("acme_items_delete", "escalated"),
        ("acme_payments_create", "blocked"),
    ];
    let count = |metrics: &str, tool: &str, status: &str| {
        let labels = [
            &format!("tool=\"{tool}\"") as &str,
            &format!("status=\"{status}\""),
        ];
        metric(metrics, "tenet_mcp_tool_calls_total", &labels)
    };
    let metrics = server
        .metrics_when(None, |metrics| {
            outcomes
                .iter()
                .all(|(tool, status)| count(metrics, tool, status).is_some())
                && metric(metrics, "tenet_mcp_tool_calls_in_flight", &[]) == Some(0.0)
        })
        .await;
    for (tool, status) in outcomes {
        assert_eq!(
            count(&metrics, tool, status),
            Some(1.0),
            "{tool}/{status} in\n{metrics}"
        );
    }
    assert!(
        metric(
            &metrics,
            "tenet_mcp_tool_call_duration_seconds_count",
            &["tool=\"acme_items_get\""]
        )
        .is_some(),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "tenet_mcp_tenet_request_duration_seconds_count",
            &["endpoint=\"execute\""]
        )
        .is_some(),
        "Tenet request latency: {metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "tenet_mcp_sessions",
            &["transport=\"streamable_http\""]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tenet_mcp_tool_calls_in_flight", &[]),
        Some(0.0),
        "{metrics}"
    );
    // The client closing its session (DELETE) frees it.
    client.cancel().await.unwrap();
    server.wait_for_sessions(0).await;
    server.stop().await;
}

#[tokio::test]
async fn legacy_sse_speaks_the_2024_11_05_protocol() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    let server = HttpHarness::start(&tenet, Options::default()).await;
    let sse = SseClient::open(&server, None, None).await.unwrap();
    let init = sse.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "tenet-mcp");
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    let listed = sse.request("list", "tools/list", json!({})).await;
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 6);
    let (executed, _) = sse.call("c1", "acme_items_get", json!({"id": "9"})).await;
    assert_eq!(executed["status"], "executed");
    let (escalated, _) = sse
        .call("c2", "acme_items_delete", json!({"id": "9"}))
        .await;
    assert_eq!(escalated["status"], "escalated");
    let (blocked, is_error) = sse
        .call(
            "c3",
            "acme_payments_create",
            json!({"amount": 1, "to": "x"}),
        )
        .await;
    assert_eq!(
        (blocked["status"].clone(), is_error),
        (json!("blocked"), true)
    );
    assert_eq!(
        tenet.executes_of("acme.items.get")[0].body["agent"]["agentId"],
        "default"
    );

    // Malformed JSON: a JSON-RPC parse error; not JSON-RPC: invalid request.
    let bad = sse.post_raw("{not json", None).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");
    let bad = sse
        .post_raw(json!({"jsonrpc": "2.0", "id": 5}).to_string(), None)
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].clone(), body["id"].clone()),
        (json!(-32600), json!(5)),
        "{body}"
    );

    // Unknown and missing session ids.
    let unknown = server
        .http
        .post(server.url("/message?sessionId=0123456789abcdef0123456789abcdef"))
        .body(initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let missing = server
        .http
        .post(server.url("/message"))
        .body(initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    // The stream closing ends the session: its endpoint is gone.
    let id = sse.session_id().to_owned();
    assert_eq!(server.live_sessions().await, 1);
    sse.reader.abort();
    server.wait_for_sessions(0).await;
    let gone = server
        .http
        .post(server.url(&format!("/message?sessionId={id}")))
        .body(initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    drop(sse);
    server.stop().await;
}

#[tokio::test]
async fn bearer_tokens_authenticate_and_name_the_agent() {
    let tenet = ScriptedTenet::start().await;
    let tokens = tokens_file();
    let server = HttpHarness::start(&tenet, with_tokens(&tokens)).await;

    // No token, or a wrong one: 401 with a Bearer challenge, on every MCP route and /metrics.
    for (token, invalid) in [(None, false), (Some("token-nobody-has-0123456789"), true)] {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let responses = [
            server.post_mcp(initialize_body(), &headers).await,
            server.get("/sse", &headers).await,
            server.get("/metrics", &headers).await,
            {
                let mut request = server
                    .http
                    .post(server.url("/message?sessionId=x"))
                    .body(initialize_body());
                for (name, value) in &headers {
                    request = request.header(*name, *value);
                }
                request.send().await.unwrap()
            },
        ];
        for response in responses {
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{}",
                response.url()
            );
            let challenge = response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert_eq!(challenge.contains("invalid_token"), invalid, "{challenge}");
        }
    }
    // Liveness stays open.
    assert_eq!(server.get("/healthz", &[]).await.status(), StatusCode::OK);

    // Each token's agent id reaches Tenet; the client's token never does.
    let client = server.client(Some(TOKEN_A)).await;
    let (report, _) = call(&client, "acme_items_get", json!({"id": "a"})).await;
    assert_eq!(report["status"], "executed");
    let sse = SseClient::open(&server, Some(TOKEN_B), None).await.unwrap();
    sse.initialize().await;
    let (report, _) = sse.call("b1", "acme_items_get", json!({"id": "b"})).await;
    assert_eq!(report["status"], "executed");
    let executes = tenet.executes_of("acme.items.get");
    let agent_of = |id: &str| {
        executes
            .iter()
            .find(|r| r.body["toolCall"]["arguments"]["id"] == id)
            .unwrap()
            .body["agent"]["agentId"]
            .clone()
    };
    assert_eq!(agent_of("a"), "agent-a");
    assert_eq!(agent_of("b"), "agent-b");
    for request in tenet.requests() {
        assert_eq!(
            request.headers["authorization"],
            format!("Bearer {KEY}"),
            "the bridge's own key, never a client token"
        );
        let text = format!("{:?}", request);
        assert!(
            !text.contains(TOKEN_A) && !text.contains(TOKEN_B),
            "a client token reached Tenet: {text}"
        );
    }

    // A session belongs to the agent that opened it.
    let foreign_sessions = |metrics: &str| {
        metric(
            metrics,
            "tenet_mcp_http_rejections_total",
            &[r#"reason="foreign_session""#],
        )
        .unwrap_or(0.0)
    };
    // No other test of this process uses a foreign session: the count is this test's.
    let before = foreign_sessions(&server.metrics(Some(TOKEN_A)).await);
    let foreign = sse
        .post_raw(
            json!({"jsonrpc": "2.0", "id": "x", "method": "tools/list"}).to_string(),
            Some(TOKEN_A),
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"], "session_not_found", "{body}");
    let metrics = server.metrics(Some(TOKEN_A)).await;
    assert_eq!(
        foreign_sessions(&metrics) - before,
        1.0,
        "a foreign session on SSE is counted as on Streamable HTTP:\n{metrics}"
    );
    assert!(
        server
            .metrics(Some(TOKEN_A))
            .await
            .contains("tenet_mcp_tool_calls_total"),
        "/metrics with a token"
    );
    client.cancel().await.unwrap();
    drop(sse);
    server.stop().await;
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused() {
    let tenet = ScriptedTenet::start().await;
    let server = HttpHarness::start(&tenet, Options::default()).await;
    let evil = [("origin", "https://evil.example")];
    assert_eq!(
        server.post_mcp(initialize_body(), &evil).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/sse", &evil).await.status(),
        StatusCode::FORBIDDEN
    );
    let message = server
        .http
        .post(server.url("/message?sessionId=x"))
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(message.status(), StatusCode::FORBIDDEN);
    // Loopback origins (a local Inspector) and no Origin at all (non-browser clients) are fine.
    let local = server
        .post_mcp(initialize_body(), &[("origin", "http://localhost:6274")])
        .await;
    assert_eq!(local.status(), StatusCode::OK);
    assert!(
        SseClient::open(&server, None, Some("http://127.0.0.1:3000"))
            .await
            .is_ok()
    );
    // Unauthenticated on loopback: a rebinding Host is refused.
    let rebinding = server.get("/sse", &[("host", "evil.example:8765")]).await;
    assert_eq!(rebinding.status(), StatusCode::FORBIDDEN);
    server.stop().await;

    let options = Options {
        allowed_origins: vec!["https://app.example.com".into()],
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    assert_eq!(
        server
            .post_mcp(initialize_body(), &[("origin", "https://app.example.com")])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        server
            .post_mcp(initialize_body(), &[("origin", "http://localhost:6274")])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_malformed_json_and_unknown_sessions() {
    let tenet = ScriptedTenet::start().await;
    let options = Options {
        max_body: 2048,
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x".repeat(3000)}}).to_string();
    let response = server.post_mcp(big.clone(), &[]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("--max-body"));
    // Chunked, without Content-Length: still limited.
    let chunks = futures::stream::iter(
        big.clone()
            .into_bytes()
            .chunks(512)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = server
        .post_mcp(reqwest::Body::wrap_stream(chunks), &[])
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let sse = SseClient::open(&server, None, None).await.unwrap();
    assert_eq!(
        sse.post_raw(big, None).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let malformed = server
        .post_mcp("{\"jsonrpc\": \"2.0\", \"id\": 1, ", &[])
        .await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(
        (body["jsonrpc"].clone(), body["error"]["code"].clone()),
        (json!("2.0"), json!(-32700)),
        "{body}"
    );

    let unknown = server
        .post_mcp(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string(),
            &[("mcp-session-id", "no-such-session")],
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    drop(sse);
    server.stop().await;
}

#[tokio::test]
async fn the_session_cap_answers_503() {
    let tenet = ScriptedTenet::start().await;
    let options = Options {
        max_sessions: 2,
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    let first = SseClient::open(&server, None, None).await.unwrap();
    let initialized = server.post_mcp(initialize_body(), &[]).await;
    assert_eq!(initialized.status(), StatusCode::OK);
    assert!(initialized.headers().contains_key("mcp-session-id"));
    drop(initialized);
    let refused = SseClient::open(&server, None, None)
        .await
        .err()
        .expect("a third session is refused");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    assert!(refused.text().await.unwrap().contains("--max-sessions"));
    assert_eq!(
        server.post_mcp(initialize_body(), &[]).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A session that ends frees its slot.
    drop(first);
    server.wait_for_sessions(1).await;
    assert!(SseClient::open(&server, None, None).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_are_reaped_but_not_during_a_call() {
    let (logs, _capture) = Logs::capture();
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.items.create",
        vec![Canned::allow("job_long").delayed(Duration::from_millis(1800))],
    );
    let options = Options {
        idle_timeout: Duration::from_millis(800),
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;

    // A session with a call that outlasts the idle timeout keeps it, while idle
    // sessions of both transports go.
    let busy = SseClient::open(&server, None, None).await.unwrap();
    busy.initialize().await;
    let long_call = busy.call("long", "acme_items_create", json!({"name": "slow"}));
    let open_idle = async {
        let idle = SseClient::open(&server, None, None).await.unwrap();
        idle.initialize().await;
        let initialized = server.post_mcp(initialize_body(), &[]).await;
        let session = initialized.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (idle, session)
    };
    let ((report, _), (mut idle, session)) = tokio::join!(long_call, open_idle);
    assert_eq!(
        report["status"], "executed",
        "the call outlived the idle timeout and completed"
    );
    idle.wait_ended(Duration::from_secs(3)).await;
    let reaped = server
        .http
        .post(server.url(&format!("/message?sessionId={}", idle.session_id())))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(reaped.status(), StatusCode::NOT_FOUND);
    let after = server
        .post_mcp(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string(),
            &[("mcp-session-id", &session)],
        )
        .await;
    assert_eq!(
        after.status(),
        StatusCode::NOT_FOUND,
        "a reaped Streamable HTTP session is gone"
    );
    let mut busy = busy;
    busy.wait_ended(Duration::from_secs(3)).await;
    assert_eq!(server.live_sessions().await, 0);
    server.stop().await;
    let log = logs.text();
    assert!(log.contains("idle session reaped"), "{log}");
}

/// 50 clients at once (half Streamable HTTP, half legacy SSE), each making 20 calls
/// concurrently in its session: every answer is the one for its request. They call
/// `acme_items_replace`, which no other test of this process calls, so its count in
/// the process-wide metrics is theirs.
// Four workers: the server and its 50 clients share one runtime, as the binary and
// the test process had two each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_clients_twenty_calls_each() {
    const CLIENTS: usize = 50;
    const CALLS: usize = 20;
    let tenet = ScriptedTenet::start().await;
    let server = Arc::new(HttpHarness::start(&tenet, Options::default()).await);
    let replaced = |metrics: &str| {
        metric(
            metrics,
            "tenet_mcp_tool_calls_total",
            &["tool=\"acme_items_replace\"", "status=\"executed\""],
        )
        .unwrap_or(0.0)
    };
    let before = replaced(&server.metrics(None).await);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let server = server.clone();
        clients.push(tokio::spawn(async move {
            let ids: Vec<String> = (0..CALLS).map(|n| format!("c{c}-n{n}")).collect();
            if c % 2 == 0 {
                let client = server.client(None).await;
                let calls = ids.iter().map(|id| {
                    let client = &client;
                    async move {
                        (
                            id.clone(),
                            // Bounded per client below: under load a call may wait its turn.
                            common::harness::ok(client, "acme_items_replace", json!({"id": id}))
                                .await
                                .0,
                        )
                    }
                });
                let results = futures::future::join_all(calls).await;
                client.cancel().await.unwrap();
                results
            } else {
                let sse = SseClient::open(&server, None, None).await.unwrap();
                sse.initialize().await;
                let calls = ids.iter().map(|id| {
                    let sse = &sse;
                    async move {
                        (
                            id.clone(),
                            sse.call(id, "acme_items_replace", json!({"id": id}))
                                .await
                                .0,
                        )
                    }
                });
                futures::future::join_all(calls).await
            }
        }));
    }
    let mut results = Vec::new();
    for client in clients {
        results.extend(
            within("a client's calls", Duration::from_secs(60), client)
                .await
                .unwrap(),
        );
    }
    assert_eq!(results.len(), CLIENTS * CALLS);
    let executes: HashMap<String, Value> = tenet
        .executes_of("acme.items.replace")
        .into_iter()
        .map(|r| (r.body["requestId"].as_str().unwrap().to_owned(), r.body))
        .collect();
    assert_eq!(executes.len(), CLIENTS * CALLS, "one execute per call");
    for (id, report) in &results {
        assert_eq!(report["status"], "executed", "{id}: {report}");
        // The report's request id is the execute Tenet got for exactly this call's arguments.
        let sent = &executes[report["request_id"].as_str().unwrap()];
        assert_eq!(
            sent["toolCall"]["arguments"]["id"],
            id.as_str(),
            "{id} got another call's answer: {report}"
        );
        assert_eq!(
            report["execution"]["body"]["job"], report["job_id"],
            "{report}"
        );
    }
    let all = (CLIENTS * CALLS) as f64;
    let metrics = server
        .metrics_when(None, |metrics| replaced(metrics) - before >= all)
        .await;
    assert_eq!(replaced(&metrics) - before, all, "{metrics}");
    eprintln!(
        "{} calls over {CLIENTS} clients in {:?}",
        CLIENTS * CALLS,
        started.elapsed()
    );
    let server = Arc::into_inner(server).expect("every client is done");
    server.stop().await;
}

/// `--threads 1`: the whole server on one worker thread still serves concurrent
/// sessions and calls (nothing on the call path blocks its only thread).
#[tokio::test]
async fn one_thread_serves_concurrent_sessions() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    let server = Arc::new(Server::start(&tenet, &["--threads", "1"]).await);
    let calls = (0..8).map(|n| {
        let server = server.clone();
        tokio::spawn(async move {
            let client = server.client(None).await;
            let (report, is_error) =
                call(&client, "acme_items_delete", json!({"id": format!("i{n}")})).await;
            client.cancel().await.unwrap();
            (report, is_error)
        })
    });
    let answers = within(
        "eight sessions calling a one-thread server",
        Duration::from_secs(20),
        futures::future::join_all(calls),
    )
    .await;
    for answer in answers {
        let (report, _) = answer.unwrap();
        assert_eq!(report["status"], "escalated", "{report}");
        assert_eq!(report["review_id"], "rev_h", "{report}");
    }
}

#[tokio::test]
async fn sigterm_lets_calls_in_flight_finish_then_exits_0() {
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.items.create",
        vec![Canned::allow("job_shutdown").delayed(Duration::from_millis(1500))],
    );
    let tokens = tokens_file();
    let tokens_path = tokens.path().to_str().unwrap();
    let mut server = Server::start(
        &tenet,
        &["--shutdown-grace", "10", "--auth-tokens", tokens_path],
    )
    .await;
    let client = server.client(Some(TOKEN_A)).await;
    let sse = SseClient::open(&server, Some(TOKEN_B), None).await.unwrap();
    sse.initialize().await;
    let streamable_call = tokio::spawn(async move {
        let (report, _) = call(&client, "acme_items_create", json!({"name": "streamable"})).await;
        report
    });
    let sse_call = tokio::spawn(async move {
        let (report, _) = sse
            .call("in-flight", "acme_items_create", json!({"name": "sse"}))
            .await;
        report
    });
    tenet.wait_for_executes("acme.items.create", 2).await;
    let signalled = Instant::now();
    server.signal_terminate();
    // No new connections once shutting down.
    within(
        "the server to stop accepting",
        Duration::from_secs(5),
        async {
            while reqwest::Client::new()
                .get(server.url("/healthz"))
                .send()
                .await
                .is_ok()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
    let streamable = within(
        "the Streamable HTTP call",
        Duration::from_secs(10),
        streamable_call,
    )
    .await
    .unwrap();
    let sse = within("the SSE call", Duration::from_secs(10), sse_call)
        .await
        .unwrap();
    assert_eq!(streamable["status"], "executed", "{streamable}");
    assert_eq!(sse["status"], "executed", "{sse}");
    let status = within("exit", Duration::from_secs(10), server.process.child.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        signalled.elapsed()
    );
    let log = server.final_log().await;
    assert!(
        log.contains("signal received") && log.contains("HTTP server stopped"),
        "{log}"
    );
    assert!(
        log.contains("agent-a, agent-b"),
        "the startup lists the agents:\n{log}"
    );
}

/// Runs the binary with `args` to its end (configuration errors exit at once).
fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["serve", "--catalog", &fixture()])
        .args(args)
        .env("TENET_API_KEY", KEY)
        .env("TENET_API_URL", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`serve {args:?}` did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn configuration_errors_exit_2_with_what_to_fix() {
    let (code, stderr) = run_to_end(&["--transport", "http", "--bind", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to serve without authentication")
            && stderr.contains("--auth-tokens"),
        "{stderr}"
    );

    let (code, stderr) = run_to_end(&["--bind", "127.0.0.1:0", "--max-sessions", "3"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--bind, --max-sessions apply to HTTP only")
            && stderr.contains("--transport http"),
        "{stderr}"
    );

    let (code, stderr) = run_to_end(&[
        "--transport",
        "sse",
        "--auth-tokens",
        "/nonexistent/tokens.toml",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/tokens.toml"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let dup = dir.path().join("dup.toml");
    std::fs::write(&dup, format!("[[tokens]]\ntoken = \"{TOKEN_A}\"\nagent_id = \"a\"\n[[tokens]]\ntoken = \"{TOKEN_A}\"\nagent_id = \"b\"\n")).unwrap();
    let (code, stderr) = run_to_end(&[
        "--transport",
        "http",
        "--bind",
        "127.0.0.1:0",
        "--auth-tokens",
        dup.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("dup.toml") && stderr.contains("same token") && !stderr.contains(TOKEN_A),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run_to_end(&["--transport", "http", "--bind", &addr]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );

    let (code, stderr) = run_to_end(&["--transport", "http", "--max-body", "12"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("between 1024"), "{stderr}");

    let (code, stderr) = run_to_end(&["--transport", "http", "--header-read-timeout", "31"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("at most 30"), "{stderr}");
    let (code, stderr) = run_to_end(&["--max-connections", "10", "--max-sessions-per-agent", "2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--max-sessions-per-agent, --max-connections apply to HTTP only"),
        "{stderr}"
    );

    let (code, stderr) = run_to_end(&["--threads", "2"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--threads applies to HTTP only"),
        "{stderr}"
    );
    let (code, stderr) = run_to_end(&["--transport", "http", "--threads", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--threads") && stderr.contains("1..=1024"),
        "{stderr}"
    );

    let (code, stderr) = run_to_end(&[
        "--transport",
        "http",
        "--allow-unauthenticated",
        "--auth-tokens",
        "x.toml",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[tokio::test]
async fn allow_unauthenticated_serves_a_public_bind_with_a_warning() {
    let tenet = ScriptedTenet::start().await;
    let server = Server::start_with(
        &tenet,
        &[
            "--transport",
            "sse",
            "--bind",
            "0.0.0.0:0",
            "--allow-unauthenticated",
        ],
        &[],
    )
    .await;
    let port = server.base.rsplit_once(':').unwrap().1.to_owned();
    within(
        "the warning",
        Duration::from_secs(5),
        server
            .process
            .line("WARNING: serving WITHOUT authentication"),
    )
    .await
    .expect("a warning before stderr closes");
    let log = server.log();
    assert!(
        !log.contains("Streamable HTTP at"),
        "--transport sse serves legacy SSE only: {log}"
    );
    // Reach it over loopback only; --transport sse has no /mcp.
    let local = format!("http://127.0.0.1:{port}");
    let response = reqwest::get(format!("{local}/mcp")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = reqwest::get(format!("{local}/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

// Interop with clients nobody here wrote (installed by tests/interop/setup.sh).

fn python_steps() -> Value {
    json!([
        {"op": "list_tools"},
        {"op": "call_tool", "name": "acme_items_get", "arguments": {"id": "py"}},
        {"op": "call_tool", "name": "acme_items_delete", "arguments": {"id": "py"}},
        {"op": "call_tool", "name": "acme_payments_create", "arguments": {"amount": 100, "to": "acct_1"}}
    ])
}

fn check_python_report(out: &Value) {
    assert_eq!(out["server_info"]["name"], "tenet-mcp", "{out}");
    let steps = out["steps"].as_array().unwrap();
    assert_eq!(steps[0]["tools"].as_array().unwrap().len(), 6);
    let status = |i: usize| steps[i]["result"]["structuredContent"]["status"].clone();
    assert_eq!(
        (status(1), status(2), status(3)),
        (json!("executed"), json!("escalated"), json!("blocked")),
        "{out}"
    );
    assert_eq!(steps[3]["result"]["isError"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_clients_over_both_http_transports() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    let tokens = tokens_file();
    let server = HttpHarness::start(&tenet, with_tokens(&tokens)).await;
    for (transport, path, token, agent) in [
        ("http", "/mcp", TOKEN_A, "agent-a"),
        ("sse", "/sse", TOKEN_B, "agent-b"),
    ] {
        let args: Vec<String> = vec![
            "--transport".into(),
            transport.into(),
            "--url".into(),
            server.url(path),
            "--header".into(),
            format!("Authorization: Bearer {token}"),
        ];
        let steps = python_steps();
        let out = tokio::task::spawn_blocking(move || python_driver(&args, &steps))
            .await
            .unwrap();
        check_python_report(&out);
        let last = tenet.executes_of("acme.items.get").pop().unwrap();
        assert_eq!(last.body["agent"]["agentId"], agent, "{transport}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inspector_cli_over_both_http_transports() {
    let tenet = ScriptedTenet::start().await;
    script_outcomes(&tenet);
    let tokens = tokens_file();
    let server = HttpHarness::start(&tenet, with_tokens(&tokens)).await;
    for (transport, path) in [("http", "/mcp"), ("sse", "/sse")] {
        let base = |method: &[&str]| -> Vec<String> {
            let mut args: Vec<String> = vec![
                "--transport".into(),
                transport.into(),
                "--server-url".into(),
                server.url(path),
                "--header".into(),
                format!("Authorization: Bearer {TOKEN_A}"),
            ];
            args.extend(method.iter().map(|s| s.to_string()));
            args
        };
        tokio::task::block_in_place(|| check_inspector_outcomes(transport, base));
    }
    assert!(
        tenet
            .executes_of("acme.items.get")
            .iter()
            .all(|r| r.body["agent"]["agentId"] == "agent-a")
    );
    server.stop().await;
}

/// Without OAuth, a client that looks for it (after a 401) is told to send the static
/// bearer token, which is the message clients such as Claude Code show.
#[tokio::test]
async fn oauth_discovery_says_to_send_the_static_token() {
    let tenet = ScriptedTenet::start().await;
    let tokens = tokens_file();
    let server = HttpHarness::start(&tenet, with_tokens(&tokens)).await;
    let http = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/.well-known/oauth-protected-resource"),
        ("GET", "/.well-known/oauth-protected-resource/mcp"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/mcp/.well-known/openid-configuration"),
        ("POST", "/register"),
    ] {
        let response = http
            .request(method.parse().unwrap(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "oauth_not_configured", "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("static bearer token") && message.contains("Authorization: Bearer"),
            "{path}: {message}"
        );
    }
    let other: Value = http
        .get(server.url("/nowhere"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["error"], "not_found", "{other}");
    server.stop().await;
}
