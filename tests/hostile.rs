//! The standing hostile suite: the server under the inputs an attacker (or a
//! broken client) sends, on stdio, Streamable HTTP and legacy SSE. Every case asserts
//! the exact status or JSON-RPC code, and that the server still serves afterwards.
//!
//! Covered: half-open and slow connections and the connection cap; one agent taking
//! every session; session-less (2026-07-28) calls and their accounting; the
//! DNS-rebinding guard over HTTP/2 cleartext; malformed JSON-RPC of every kind
//! (garbage, invalid UTF-8, batches, 100k-deep nesting, bad `tools/call` params),
//! 50 MiB bodies and lines, bad tokens and Origins. Everything is bounded and
//! listens on and connects to loopback only.
//!
//! The servers run in-process ([`HttpHarness`]), but for the two tests that measure
//! the process: its memory, and the metrics every call of the process counts.

mod common;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use common::{
    harness::{HttpHarness, KEY, Logs, Setup},
    http_server::{
        ACCEPT_BOTH, Endpoint, Server, SseClient, TOKEN_A, TOKEN_B, metric, tokens_file, within,
    },
    scripted::{Canned, ScriptedTenet},
    stateless,
};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tenet_mcp::transport::http::Options;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The `tools/call` params that are not a call: each must be answered -32602.
fn bad_call_params() -> Vec<Value> {
    vec![
        json!({}),
        Value::Null,
        json!({"name": "acme_items_get", "arguments": "id=1"}),
        json!({"name": "acme_items_get", "arguments": ["1"]}),
    ]
}

/// A `tools/call` request with `params` (left out when `null`).
fn call_with(id: u64, params: &Value) -> Value {
    let mut request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call"});
    if !params.is_null() {
        request["params"] = params.clone();
    }
    request
}

/// A valid call of the fixture's `acme_items_get`.
fn good_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "acme_items_get", "arguments": {"id": "1"}}})
}

/// `[[[[...` nested `depth` deep, then closed.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// The resident memory of process `pid`, in KiB (Linux), for the report.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Reads the JSON-RPC answer out of a Streamable HTTP response (JSON or SSE).
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let text = within(
        "the response body",
        Duration::from_secs(15),
        response.text(),
    )
    .await
    .unwrap();
    if !sse {
        return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    let message = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some() && message.get("method").is_none())
        .unwrap_or(Value::Null);
    (status, message)
}

/// A raw Streamable HTTP session: initialized, its id kept.
struct Session<'a> {
    server: &'a Endpoint,
    id: String,
    token: Option<&'a str>,
}

impl<'a> Session<'a> {
    /// Opens a session; `Err` carries the refusal.
    async fn open(server: &'a Endpoint, token: Option<&'a str>) -> Result<Self, reqwest::Response> {
        let response = post(server, token, &[], initialize()).await;
        if response.status() != StatusCode::OK {
            return Err(response);
        }
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let (_, init) = answer(response).await;
        assert_eq!(init["result"]["serverInfo"]["name"], "tenet-mcp");
        let session = Self { server, id, token };
        let initialized = session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await;
        assert_eq!(initialized.status(), StatusCode::ACCEPTED);
        Ok(session)
    }

    async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        post(
            self.server,
            self.token,
            &[("mcp-session-id", &self.id)],
            body,
        )
        .await
    }

    /// A request on the session: its HTTP status and JSON-RPC answer.
    async fn rpc(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        answer(self.post(body).await).await
    }

    /// A valid call, which must be executed.
    async fn still_serves(&self, id: u64) {
        let (status, answer) = self.rpc(good_call(id).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["status"], "executed",
            "{answer}"
        );
    }

    async fn delete(&self) -> StatusCode {
        let mut request = self
            .server
            .http
            .delete(self.server.url("/mcp"))
            .header("mcp-session-id", &self.id);
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status()
    }
}

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "0"}}}).to_string()
}

/// A raw POST to /mcp, with a bearer token or none.
async fn post(
    server: &Endpoint,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(bearer.as_deref().map(|bearer| ("authorization", bearer)));
    server.post_mcp(body, &all).await
}

/// POSTs a 50 MiB JSON body on a raw connection, with its length declared or chunked,
/// and returns the HTTP status the server answers before the body is all sent.
async fn huge_post(server: &Endpoint, path: &str, headers: &str, declared: bool) -> u16 {
    const SIZE: usize = 50 << 20;
    let addr = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let framing = if declared {
        format!("Content-Length: {SIZE}")
    } else {
        "Transfer-Encoding: chunked".to_owned()
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..SIZE / chunk.len() {
            let sent = if declared {
                write.write_all(&chunk).await
            } else {
                let size = format!("{:x}\r\n", chunk.len());
                async {
                    write.write_all(size.as_bytes()).await?;
                    write.write_all(&chunk).await?;
                    write.write_all(b"\r\n").await
                }
                .await
            };
            if sent.is_err() {
                return; // the server answered and closed
            }
        }
    });
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.windows(2).any(|w| w == b"\r\n") {
        let n = within(
            "the answer to a huge body",
            Duration::from_secs(15),
            read.read(&mut buf),
        )
        .await
        .unwrap();
        assert!(n > 0, "the connection closed without an answer");
        reply.extend_from_slice(&buf[..n]);
    }
    writer.abort();
    let line = String::from_utf8_lossy(&reply);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// `/healthz` answers 200.
async fn healthy(server: &Endpoint) {
    let response = server.get("/healthz", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Waits until the server closes `stream` (a read sees EOF or a reset).
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_healthz_keeps_answering() {
    const HALF_OPEN: usize = 2000;
    let tenet = ScriptedTenet::start().await;
    let server = Server::start(&tenet, &["--header-read-timeout", "2"]).await;
    let pid = server.process.child.id().unwrap();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let warm = reqwest::Client::new();
    let response = warm.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let before = rss_kib(pid);

    let mut flood = Vec::with_capacity(HALF_OPEN);
    for i in 0..HALF_OPEN {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        // Half a request head; every tenth sends nothing at all.
        if i % 10 != 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await
                .unwrap();
        }
        flood.push(stream);
    }
    // The quickest of three answers, on a connection opened before the flood: what
    // is measured is the server's responsiveness, not the test machine's scheduler.
    let mut took = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let response = warm.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        took = took.min(started.elapsed());
    }
    assert!(
        took < Duration::from_millis(100),
        "/healthz took {took:?} with {HALF_OPEN} half-open connections"
    );
    // A new connection is served too.
    healthy(&server).await;
    let during = rss_kib(pid);

    // Every half-open connection is closed by the server within the header timeout.
    within(
        "the server closing the half-open connections",
        Duration::from_secs(15),
        futures::future::join_all(flood.iter_mut().map(closed_by_server)),
    )
    .await;
    drop(flood);
    let metrics = server.metrics(None).await;
    let open = metric(&metrics, "tenet_mcp_http_connections", &[]).unwrap();
    assert!(open <= 2.0, "open connections after the flood: {open}");
    let rejected = metric(
        &metrics,
        "tenet_mcp_http_rejections_total",
        &["reason=\"header_timeout\""],
    );
    assert!(rejected.is_some_and(|n| n >= 1.0), "{metrics}");
    // The memory the flood took is handed back once its connections are gone.
    let (before, during) = (before.unwrap(), during.unwrap());
    let mut after = rss_kib(pid).unwrap();
    for _ in 0..50 {
        if after <= before + (during.saturating_sub(before)) / 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = rss_kib(pid).unwrap();
    }
    eprintln!(
        "RSS of the server: {before} KiB before, {during} KiB with {HALF_OPEN} half-open connections, {after} KiB after they were closed"
    );
    assert!(
        after <= before + (during.saturating_sub(before)) / 2,
        "the flood's memory stayed: {before} KiB before, {during} KiB during, {after} KiB after"
    );
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let tenet = ScriptedTenet::start().await;
    let options = Options {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(30),
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    within(
        "the server closing a connection past --max-connections",
        Duration::from_secs(5),
        closed_by_server(&mut extra),
    )
    .await;
    drop(held);
    // The slots come back as the held connections close.
    within("a free slot", Duration::from_secs(10), async {
        loop {
            if let Ok(response) = server.http.get(server.url("/healthz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let metrics = server.metrics(None).await;
    assert!(
        metric(
            &metrics,
            "tenet_mcp_http_rejections_total",
            &["reason=\"connection_limit\""]
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn one_agent_cannot_take_every_session() {
    let tenet = ScriptedTenet::start().await;
    let tokens = tokens_file();
    let options = Options {
        auth_tokens: Some(PathBuf::from(tokens.path())),
        max_sessions_per_agent: 2,
        max_sessions: 10,
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    let first = Session::open(&server, Some(TOKEN_A)).await.unwrap();
    let _second = Session::open(&server, Some(TOKEN_A)).await.unwrap();
    let refused = Session::open(&server, Some(TOKEN_A)).await.err().unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "agent_session_limit");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--max-sessions-per-agent"),
        "{body}"
    );
    // The legacy transport counts toward the same quota.
    let sse = SseClient::open(&server, Some(TOKEN_A), None)
        .await
        .err()
        .unwrap();
    assert_eq!(sse.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another agent is not locked out.
    let other = Session::open(&server, Some(TOKEN_B)).await.unwrap();
    other.still_serves(1).await;
    // A closed session frees its place.
    assert!(first.delete().await.is_success());
    let again = Session::open(&server, Some(TOKEN_A)).await.unwrap();
    again.still_serves(2).await;
    server.stop().await;
}

/// A session-less (2026-07-28) call of the fixture's `acme_items_get`.
fn stateless_call(id: u64) -> Value {
    stateless::request(id, "acme_items_get", json!({"id": "1"}), &[])
}

#[tokio::test]
async fn session_less_calls_are_metered_and_capped() {
    let tenet = ScriptedTenet::start().await;
    let server = Server::start(&tenet, &["--max-sessions", "1"]).await;
    let version = stateless::headers("acme_items_get");
    let (status, answered) =
        answer(post(&server, None, &version, stateless_call(1).to_string()).await).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(
        answered["result"]["structuredContent"]["status"], "executed",
        "{answered}"
    );
    let executed = |metrics: &str| {
        metric(
            metrics,
            "tenet_mcp_tool_calls_total",
            &["tool=\"acme_items_get\"", "status=\"executed\""],
        )
    };
    let in_flight = |metrics: &str| metric(metrics, "tenet_mcp_tool_calls_in_flight", &[]);
    let metrics = server
        .metrics_when(None, |metrics| {
            executed(metrics).is_some() && in_flight(metrics) == Some(0.0)
        })
        .await;
    assert_eq!(executed(&metrics), Some(1.0), "{metrics}");
    assert_eq!(in_flight(&metrics), Some(0.0), "{metrics}");
    // While it runs, a session-less request holds a slot of --max-sessions.
    let session = Session::open(&server, None).await.unwrap();
    let refused = post(&server, None, &version, stateless_call(2).to_string()).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(session.delete().await.is_success());
    let (status, _) =
        answer(post(&server, None, &version, stateless_call(3).to_string()).await).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_a_session_less_call_in_flight() {
    let (logs, _capture) = Logs::capture();
    let tenet = ScriptedTenet::start().await;
    tenet.on_execute(
        "acme.items.get",
        vec![
            Canned::json(
                202,
                json!({"jobId": "job_slow", "status": "pending", "decision": "ALLOW"}),
            )
            .delayed(Duration::from_millis(1500)),
        ],
    );
    let server = HttpHarness::start(&tenet, Options::default()).await;
    let version = stateless::headers("acme_items_get");
    let mut request = server
        .http
        .post(server.url("/mcp"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, ACCEPT_BOTH)
        .body(stateless_call(1).to_string());
    for (name, value) in version {
        request = request.header(name, value);
    }
    let call = async {
        let (status, answered) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{answered}");
        answered
    };
    let shut_down = async {
        // The call is in flight from before its execute reaches Tenet.
        tenet.wait_for_executes("acme.items.get", 1).await;
        server.shut_down().await
    };
    let (answered, stopped) = tokio::join!(call, shut_down);
    assert_eq!(
        answered["result"]["structuredContent"]["status"], "executed",
        "{answered}"
    );
    stopped.expect("a clean shutdown");
    let log = logs.text();
    assert!(log.contains("in_flight=1"), "{log}");
}

#[tokio::test]
async fn the_host_check_holds_over_http2_cleartext() {
    let tenet = ScriptedTenet::start().await;
    let server = HttpHarness::start(&tenet, Options::default()).await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("evil.example", addr)
        .build()
        .unwrap();
    let ok = h2.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(
        (ok.status(), ok.version()),
        (StatusCode::OK, reqwest::Version::HTTP_2)
    );
    let rebound = h2
        .post(format!("http://evil.example:{}/mcp", addr.port()))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, ACCEPT_BOTH)
        .body(initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.version(), reqwest::Version::HTTP_2);
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let body: Value = rebound.json().await.unwrap();
    assert_eq!(body["error"], "forbidden_host");
    // A loopback name over h2c is served.
    let (status, init) = answer(
        h2.post(server.url("/mcp"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, ACCEPT_BOTH)
            .body(initialize())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(init["result"]["serverInfo"]["name"], "tenet-mcp");
    server.stop().await;
}

#[tokio::test]
async fn streamable_http_answers_malformed_json_rpc_with_exact_codes() {
    let tenet = ScriptedTenet::start().await;
    let tokens = tokens_file();
    let options = Options {
        auth_tokens: Some(PathBuf::from(tokens.path())),
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    let session = Session::open(&server, Some(TOKEN_A)).await.unwrap();
    for (i, params) in bad_call_params().iter().enumerate() {
        let (status, answer) = session
            .rpc(call_with(10 + i as u64, params).to_string())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params}: {answer}");
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
        assert_eq!(answer["id"], 10 + i as u64, "{answer}");
    }
    let mut invalid_utf8 = br#"{"jsonrpc":"2.0","id":1,"method":"ping","x":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\"}");
    let cases: Vec<(Vec<u8>, i64)> = vec![
        (b"{not json".to_vec(), -32700),
        (invalid_utf8, -32700),
        (nested(100_000).into_bytes(), -32700),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            -32600,
        ),
        (br#"{"jsonrpc":"2.0","id":4}"#.to_vec(), -32600),
        (b"7".to_vec(), -32600),
    ];
    for (body, code) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(40)
            .collect::<String>();
        let (status, answer) = session.rpc(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shown}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{shown}: {answer}");
    }
    // 50 MiB, declared or not: refused by size, not read.
    let headers = format!(
        "Authorization: Bearer {TOKEN_A}\r\nMcp-Session-Id: {}\r\nAccept: {ACCEPT_BOTH}\r\n",
        session.id
    );
    assert_eq!(huge_post(&server, "/mcp", &headers, true).await, 413);
    assert_eq!(huge_post(&server, "/mcp", &headers, false).await, 413);
    // Bad tokens and Origins.
    let bad_token = post(&server, Some("not-a-token-0123456789"), &[], initialize()).await;
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
    let no_token = post(&server, None, &[], initialize()).await;
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    let origin = post(
        &server,
        Some(TOKEN_A),
        &[("origin", "https://evil.example")],
        initialize(),
    )
    .await;
    assert_eq!(origin.status(), StatusCode::FORBIDDEN);
    // The legacy transport, on the same port, checks the same.
    let sse = SseClient::open(&server, Some("not-a-token-0123456789"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(sse.status(), StatusCode::UNAUTHORIZED);
    let sse = SseClient::open(&server, Some(TOKEN_A), Some("https://evil.example"))
        .await
        .err()
        .unwrap();
    assert_eq!(sse.status(), StatusCode::FORBIDDEN);
    // Another agent's token cannot use the session.
    let foreign = post(
        &server,
        Some(TOKEN_B),
        &[("mcp-session-id", &session.id)],
        good_call(5).to_string(),
    )
    .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    session.still_serves(99).await;
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn legacy_sse_answers_malformed_json_rpc_with_exact_codes() {
    let tenet = ScriptedTenet::start().await;
    let server = HttpHarness::start(&tenet, Options::default()).await;
    let sse = SseClient::open(&server, None, None).await.unwrap();
    sse.initialize().await;
    for params in bad_call_params() {
        let response = sse.post_raw(call_with(3, &params).to_string(), None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{params}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32602, "{params}: {body}");
        assert_eq!(body["id"], 3, "{body}");
    }
    for (body, code) in [
        (nested(100_000), -32700),
        ("{not json".to_owned(), -32700),
        ("[]".to_owned(), -32600),
    ] {
        let response = sse.post_raw(body, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    let path = format!("/message?sessionId={}", sse.session_id());
    assert_eq!(huge_post(&server, &path, "", true).await, 413);
    assert_eq!(huge_post(&server, &path, "", false).await, 413);
    let origin = SseClient::open(&server, None, Some("https://evil.example"))
        .await
        .err()
        .unwrap();
    assert_eq!(origin.status(), StatusCode::FORBIDDEN);
    let (executed, _) = sse
        .call("after", "acme_items_get", json!({"id": "1"}))
        .await;
    assert_eq!(executed["status"], "executed");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_but_steady_client_is_served() {
    let tenet = ScriptedTenet::start().await;
    let options = Options {
        header_read_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let server = HttpHarness::start(&tenet, options).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    for chunk in [
        &b"GET /hea"[..],
        b"lthz HTTP/1.1\r\n",
        b"Host: 127.0.0.1\r\n",
        b"Connection: close\r\n\r\n",
    ] {
        stream.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut reply = String::new();
    within(
        "the slow request's answer",
        Duration::from_secs(5),
        stream.read_to_string(&mut reply),
    )
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn stdio_answers_every_bad_line_and_keeps_serving() {
    let (logs, _capture) = Logs::capture();
    let tenet = ScriptedTenet::start().await;
    let mut stdio = Setup::new(&tenet).start_lines();
    // Garbage before initialize is answered too.
    let garbage = stdio.exchange(b"{not json").await;
    assert_eq!(
        (garbage["error"]["code"].clone(), garbage["id"].clone()),
        (json!(-32700), Value::Null)
    );
    let init = stdio.exchange(initialize().as_bytes()).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "tenet-mcp");
    stdio
        .send(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
                .to_string()
                .as_bytes(),
        )
        .await;

    for (i, params) in bad_call_params().iter().enumerate() {
        let id = 10 + i as u64;
        let answer = stdio
            .exchange(call_with(id, params).to_string().as_bytes())
            .await;
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
        assert_eq!(answer["id"], id, "{answer}");
    }
    let mut invalid_utf8 = br#"{"jsonrpc":"2.0","id":1,"method":"ping","x":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\"}");
    let over_long = {
        let mut line = br#"{"jsonrpc":"2.0","id":2,"method":"ping","pad":""#.to_vec();
        line.resize(50 << 20, b'a');
        line.extend_from_slice(b"\"}");
        line
    };
    let cases: Vec<(Vec<u8>, i64)> = vec![
        (invalid_utf8, -32700),
        (nested(100_000).into_bytes(), -32700),
        (over_long, -32700),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            -32600,
        ),
        (br#"{"jsonrpc":"2.0","id":4}"#.to_vec(), -32600),
    ];
    for (line, code) in cases {
        let shown = String::from_utf8_lossy(&line)
            .chars()
            .take(40)
            .collect::<String>();
        let answer = stdio.exchange(&line).await;
        assert_eq!(answer["error"]["code"], code, "{shown}: {answer}");
    }
    let executed = stdio.exchange(good_call(50).to_string().as_bytes()).await;
    assert_eq!(executed["id"], 50);
    assert_eq!(
        executed["result"]["structuredContent"]["status"], "executed",
        "{executed}"
    );

    stdio
        .close()
        .await
        .expect("a clean stop when the input ends");
    let log = logs.text();
    assert!(
        log.contains("not a JSON-RPC message"),
        "bad lines are logged: {log}"
    );
    assert!(log.contains("WARN"), "at warn: {log}");
    assert!(!log.contains(KEY));
}
