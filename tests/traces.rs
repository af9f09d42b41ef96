//! OpenTelemetry traces (`serve --otlp-endpoint`): an OTLP/HTTP receiver in the test
//! decodes what the server exports and checks the span tree of a governed call, that it
//! continues the client's `traceparent` (HTTP header or `_meta.traceparent`), that the
//! `traceparent` Tenet received names the span that sent it, and that no argument or
//! secret is exported.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use common::{
    http_server::{KEY, Server, SseClient},
    scripted::{Canned, ScriptedTenet},
    stateless,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value, trace::v1::Span,
};
use prost::Message;
use serde_json::json;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const ARGUMENT: &str = "argument-value-never-exported";

/// What the receiver got: every export's raw bytes and decoded spans.
#[derive(Clone, Default)]
struct Received {
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Received {
    fn spans(&self) -> Vec<Span> {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .flat_map(|body| {
                ExportTraceServiceRequest::decode(body.clone())
                    .expect("an OTLP/HTTP protobuf export")
                    .resource_spans
            })
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect()
    }
}

async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(|State(received): State<Received>, body: Bytes| async move {
                received.bodies.lock().unwrap().push(body);
                ""
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn string_attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            any_value::Value::StringValue(text) => text.clone(),
            any_value::Value::IntValue(number) => number.to_string(),
            other => format!("{other:?}"),
        })
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|span| span.name == name).collect()
}

/// Runs one governed call (a job that needs two polls) with the client's trace context
/// given by `meta` or `headers`; returns the exported spans and the Tenet requests.
async fn traced_call(
    meta: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (Vec<Span>, Received, ScriptedTenet) {
    let (collector, received) = receiver().await;
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute("acme.items.get", vec![Canned::allow("job_t")]);
    tenet.on_job(
        "job_t",
        vec![
            Canned::job("job_t", "running"),
            Canned::completed("job_t", 200, json!({"id": "x"})),
        ],
    );
    let server = Server::start(&tenet, &["--otlp-endpoint", &collector]).await;
    let answer = stateless::call(
        &reqwest::Client::new(),
        &server.url("/mcp"),
        "acme_items_get",
        json!({"id": ARGUMENT}),
        meta,
        headers,
    )
    .await;
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "executed",
        "{answer}"
    );
    // SIGTERM: the exporter sends what it buffered before the process exits.
    server.stop().await;
    (received.spans(), received, tenet)
}

fn check_tree(spans: &[Span], received: &Received, tenet: &ScriptedTenet) {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let calls = named(spans, "tools/call");
    assert_eq!(calls.len(), 1, "{spans:#?}");
    let call = calls[0];
    // The call continues the client's trace.
    assert_eq!(hex(&call.trace_id), CLIENT_TRACE);
    assert_eq!(hex(&call.parent_span_id), CLIENT_SPAN);
    assert_eq!(
        string_attribute(call, "tool").as_deref(),
        Some("acme.items.get")
    );
    assert_eq!(
        string_attribute(call, "mcp_tool").as_deref(),
        Some("acme_items_get")
    );
    assert_eq!(string_attribute(call, "agent").as_deref(), Some("default"));
    assert_eq!(
        string_attribute(call, "status").as_deref(),
        Some("executed")
    );
    assert_eq!(string_attribute(call, "job_id").as_deref(), Some("job_t"));
    assert!(string_attribute(call, "request_id").is_some());

    // Its children: validation, one execute, one span per poll.
    let children = |name: &str| -> Vec<&Span> {
        named(spans, name)
            .into_iter()
            .filter(|span| span.parent_span_id == call.span_id && span.trace_id == call.trace_id)
            .collect()
    };
    assert_eq!(children("validate").len(), 1, "{spans:#?}");
    let executes = children("tenet.execute");
    assert_eq!(executes.len(), 1, "{spans:#?}");
    let polls = children("tenet.poll");
    assert_eq!(polls.len(), 2, "{spans:#?}");
    let statuses: Vec<Option<String>> = polls
        .iter()
        .map(|span| string_attribute(span, "job_status"))
        .collect();
    assert!(
        statuses.contains(&Some("running".into())) && statuses.contains(&Some("completed".into())),
        "{statuses:?}"
    );

    // Tenet was told which span sent each request.
    let traceparent = |span: &Span| format!("00-{CLIENT_TRACE}-{}-01", hex(&span.span_id));
    let execute = &tenet.executes_of("acme.items.get")[0];
    assert_eq!(execute.headers["traceparent"], traceparent(executes[0]));
    let poll_parents: Vec<String> = tenet
        .requests()
        .into_iter()
        .filter(|request| request.kind == "job")
        .map(|request| request.headers["traceparent"].clone())
        .collect();
    let poll_spans: Vec<String> = polls.iter().map(|span| traceparent(span)).collect();
    for parent in &poll_parents {
        assert!(
            poll_spans.contains(parent),
            "{parent} not in {poll_spans:?}"
        );
    }

    // Neither the arguments nor a secret left the process.
    for body in received.bodies.lock().unwrap().iter() {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains(ARGUMENT), "an argument was exported");
        assert!(!text.contains(KEY), "the API key was exported");
    }
}

#[tokio::test]
async fn a_call_is_a_span_tree_continuing_the_header_traceparent() {
    let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let (spans, received, tenet) = traced_call(&[], &[("traceparent", &parent)]).await;
    check_tree(&spans, &received, &tenet);
}

#[tokio::test]
async fn a_call_continues_the_meta_traceparent() {
    let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let (spans, received, tenet) = traced_call(&[("traceparent", &parent)], &[]).await;
    check_tree(&spans, &received, &tenet);
}

#[tokio::test]
async fn without_an_exporter_the_client_traceparent_reaches_tenet_unchanged() {
    let tenet = ScriptedTenet::start().await;
    let server = Server::start(&tenet, &[]).await;
    let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let answer = stateless::call(
        &reqwest::Client::new(),
        &server.url("/mcp"),
        "acme_items_get",
        json!({"id": "x"}),
        &[("traceparent", &parent)],
        &[],
    )
    .await;
    assert_eq!(answer["result"]["structuredContent"]["status"], "executed");
    for request in tenet.requests() {
        assert_eq!(request.headers["traceparent"], parent, "{}", request.path);
    }
    // And a call without one sends none.
    let before = tenet.requests().len();
    stateless::call(
        &reqwest::Client::new(),
        &server.url("/mcp"),
        "acme_items_get",
        json!({"id": "y"}),
        &[],
        &[],
    )
    .await;
    for request in &tenet.requests()[before..] {
        assert!(!request.headers.contains_key("traceparent"));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_bad_endpoint_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
        .args(["serve", "--emulator", "--otlp-endpoint", "localhost:4318"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--otlp-endpoint is not an http:// or https:// URL"),
        "{stderr}"
    );
}

#[tokio::test]
async fn on_legacy_sse_the_post_s_traceparent_header_reaches_tenet() {
    let tenet = ScriptedTenet::start().await;
    let server = Server::start(&tenet, &[]).await;
    let sse = SseClient::open(&server, None, None).await.unwrap();
    sse.initialize().await;
    let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let posted = reqwest::Client::new()
        .post(server.url(&format!("/message?sessionId={}", sse.session_id())))
        .header("content-type", "application/json")
        .header("traceparent", &parent)
        .body(
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": "acme_items_get", "arguments": {"id": "x"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    tenet.wait_for_executes("acme.items.get", 1).await;
    assert_eq!(
        tenet.executes_of("acme.items.get")[0].headers["traceparent"],
        parent
    );
    server.stop().await;
}
