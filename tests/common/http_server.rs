//! HTTP servers under test, and clients for them: [`Endpoint`] (raw requests, an rmcp
//! Streamable HTTP client, `/metrics` and `/healthz`), [`SseClient`] (a raw legacy SSE
//! client), and [`Server`], the binary over HTTP, for the tests that need a process:
//! argv, signals, exit codes, stderr, its memory, and metrics no other test shares.
//! In-process servers ([`super::harness::HttpHarness`]) are reached through an
//! [`Endpoint`] too.

use std::{
    collections::HashMap,
    ops::Deref,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{StatusCode, header};
use rmcp::{
    RoleClient, ServiceExt,
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::{oneshot, watch},
    task::JoinHandle,
};

pub use super::harness::{KEY, fixture};
use super::scripted::ScriptedTenet;

pub const TOKEN_A: &str = "token-for-agent-a-0123456789";
pub const TOKEN_B: &str = "token-for-agent-b-9876543210";
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// Bounds every wait in these tests.
pub async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

/// A loopback port free at the time of asking (for a process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tokens file giving TOKEN_A to agent-a and TOKEN_B to agent-b.
pub fn tokens_file() -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        file.path(),
        format!("[[tokens]]\ntoken = \"{TOKEN_A}\"\nagent_id = \"agent-a\"\n\n[[tokens]]\ntoken = \"{TOKEN_B}\"\nagent_id = \"agent-b\"\n"),
    )
    .unwrap();
    file
}

/// Where an HTTP server under test listens, and the requests tests make to it.
pub struct Endpoint {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client for raw requests.
    pub http: reqwest::Client,
}

impl Endpoint {
    /// The server at `base`.
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An rmcp Streamable HTTP client transport to /mcp, with a bearer token or none.
    pub fn transport(&self, token: Option<&str>) -> StreamableHttpClientTransport<reqwest::Client> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url("/mcp"));
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        StreamableHttpClientTransport::with_client(reqwest::Client::new(), config)
    }

    /// rmcp's default client over [`Endpoint::transport`], initialized.
    pub async fn client(&self, token: Option<&str>) -> RunningService<RoleClient, ()> {
        within(
            "initialize over Streamable HTTP",
            Duration::from_secs(10),
            ().serve(self.transport(token)),
        )
        .await
        .expect("the server answers initialize")
    }

    /// A raw POST to /mcp.
    pub async fn post_mcp(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/mcp"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, ACCEPT_BOTH)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        within("POST /mcp", Duration::from_secs(10), request.send())
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        within("GET", Duration::from_secs(10), request.send())
            .await
            .unwrap()
    }

    pub async fn metrics(&self, token: Option<&str>) -> String {
        let mut request = self.http.get(self.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// `/metrics` once `ready` holds for it, or after 5 s (for the assertions that
    /// follow to show): a call is counted just after its answer is sent.
    pub async fn metrics_when(&self, token: Option<&str>, ready: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let metrics = self.metrics(token).await;
            if ready(&metrics) || tokio::time::Instant::now() >= deadline {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn live_sessions(&self) -> u64 {
        let health: Value = self.get("/healthz", &[]).await.json().await.unwrap();
        health["sessions"].as_u64().unwrap()
    }

    /// Waits (at most 5 s) until the server holds `n` live sessions.
    pub async fn wait_for_sessions(&self, n: u64) {
        within(
            &format!("{n} live sessions"),
            Duration::from_secs(5),
            async {
                while self.live_sessions().await != n {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        )
        .await;
    }
}

/// A child process whose stderr is read, line by line, in the background.
pub struct Logged {
    pub child: Child,
    /// Stderr so far; its sender is told of every line.
    log: watch::Receiver<String>,
    /// Reads stderr until the process closes it.
    reader: Option<JoinHandle<()>>,
}

impl Logged {
    /// Spawns `command` with stderr piped (killed on drop) and waits, at most 15 s,
    /// for a stderr line containing `marker`: that line, or `None` when the process
    /// ended or took too long.
    pub async fn spawn(command: &mut Command, marker: &str) -> (Self, Option<String>) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (sink, log) = watch::channel(String::new());
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.send_modify(|log| {
                    log.push_str(&line);
                    log.push('\n');
                });
            }
        });
        let logged = Self {
            child,
            log,
            reader: Some(reader),
        };
        let line = tokio::time::timeout(Duration::from_secs(15), logged.line(marker))
            .await
            .ok()
            .flatten();
        (logged, line)
    }

    /// The first stderr line containing `marker`, once written; `None` if stderr
    /// closes without one.
    pub async fn line(&self, marker: &str) -> Option<String> {
        let mut receiver = self.log.clone();
        let log = receiver.wait_for(|log| log.contains(marker)).await.ok()?;
        log.lines()
            .find(|line| line.contains(marker))
            .map(str::to_owned)
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.log.borrow().clone()
    }

    /// The whole stderr of an exited process: waits for it to be read to its end.
    pub async fn final_log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            within("the rest of stderr", Duration::from_secs(5), reader)
                .await
                .unwrap();
        }
        self.log()
    }
}

/// The server binary over HTTP: its process and stderr, and its [`Endpoint`].
pub struct Server {
    pub process: Logged,
    endpoint: Endpoint,
}

impl Deref for Server {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Server {
    /// Starts `serve --transport http` on a free loopback port.
    pub async fn start(tenet: &ScriptedTenet, extra: &[&str]) -> Self {
        Self::start_with(
            tenet,
            &["--transport", "http", "--bind", "127.0.0.1:0"],
            extra,
        )
        .await
    }

    pub async fn start_with(tenet: &ScriptedTenet, transport: &[&str], extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenet-mcp"));
        command
            .args([
                "serve",
                "--catalog",
                &fixture(),
                "--poll-timeout",
                "3",
                "--request-timeout",
                "2",
            ])
            .args(transport)
            .args(extra)
            .env("TENET_API_KEY", KEY)
            .env("TENET_API_URL", tenet.url())
            .env_remove("TENET_AGENT_ID")
            .env("TENET_MCP_LOG", "info");
        const LISTENING: &str = "tenet-mcp: listening on ";
        let (process, line) = Logged::spawn(&mut command, LISTENING).await;
        let Some(base) =
            line.and_then(|line| Some(line.strip_prefix(LISTENING)?.trim().to_owned()))
        else {
            panic!(
                "the server did not say where it listens:\n{}",
                process.log()
            )
        };
        Self {
            process,
            endpoint: Endpoint::new(base),
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The whole log of an exited server: waits for stderr to be read to its end.
    pub async fn final_log(&mut self) -> String {
        self.process.final_log().await
    }

    /// Sends SIGTERM.
    pub fn signal_terminate(&self) {
        let pid = self.process.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGTERM and returns the exit code, bounded.
    pub async fn terminate(&mut self) -> Option<i32> {
        self.signal_terminate();
        within(
            "exit after SIGTERM",
            Duration::from_secs(20),
            self.process.child.wait(),
        )
        .await
        .unwrap()
        .code()
    }

    /// Stops the server and checks that no secret reached its logs.
    pub async fn stop(mut self) -> String {
        assert_eq!(
            self.terminate().await,
            Some(0),
            "exit code after SIGTERM; log:\n{}",
            self.log()
        );
        let log = self.final_log().await;
        for secret in [KEY, TOKEN_A, TOKEN_B] {
            assert!(
                !log.contains(secret),
                "a secret leaked into the logs:\n{log}"
            );
        }
        log
    }
}

/// A raw legacy SSE client: the event stream read in the background, answers
/// routed to their requests by id.
pub struct SseClient {
    http: reqwest::Client,
    post_url: String,
    token: Option<String>,
    routes: Arc<Mutex<Routes>>,
    ended: watch::Receiver<bool>,
    pub reader: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct Routes {
    waiting: HashMap<String, oneshot::Sender<Value>>,
    arrived: HashMap<String, Value>,
}

impl SseClient {
    /// `GET /sse`; `Err` carries the response when it is not a stream.
    pub async fn open(
        server: &Endpoint,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, reqwest::Response> {
        let http = reqwest::Client::new();
        let mut request = http
            .get(server.url("/sse"))
            .header(header::ACCEPT, "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let mut response = within("GET /sse", Duration::from_secs(10), request.send())
            .await
            .unwrap();
        if response.status() != StatusCode::OK {
            return Err(response);
        }
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let routes = Arc::new(Mutex::new(Routes::default()));
        let (ended_tx, ended) = watch::channel(false);
        let (endpoint_tx, endpoint_rx) = oneshot::channel::<String>();
        let sink = routes.clone();
        let reader = tokio::spawn(async move {
            let mut endpoint_tx = Some(endpoint_tx);
            let mut buffer = String::new();
            let mut first = true;
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let (mut event, mut data) = ("message".to_owned(), Vec::new());
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event:") {
                            event = name.trim().to_owned();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                        }
                    }
                    if data.is_empty() {
                        continue; // a keep-alive comment
                    }
                    let data = data.join("\n");
                    if first {
                        assert_eq!(event, "endpoint", "the first event names the endpoint");
                        first = false;
                        if let Some(tx) = endpoint_tx.take() {
                            let _ = tx.send(data);
                        }
                        continue;
                    }
                    assert_eq!(event, "message", "server messages are `message` events");
                    let message: Value =
                        serde_json::from_str(&data).expect("message events carry JSON");
                    let Some(id) = message
                        .get("id")
                        .filter(|_| message.get("method").is_none())
                    else {
                        continue; // a notification or a server request
                    };
                    let id = id.to_string();
                    let mut routes = sink.lock().unwrap();
                    match routes.waiting.remove(&id) {
                        Some(waiter) => {
                            let _ = waiter.send(message);
                        }
                        None => {
                            routes.arrived.insert(id, message);
                        }
                    }
                }
            }
            let _ = ended_tx.send(true);
        });
        let endpoint = within("the endpoint event", Duration::from_secs(10), endpoint_rx)
            .await
            .expect("an endpoint event");
        assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");
        Ok(Self {
            http,
            post_url: server.url(&endpoint),
            token: token.map(str::to_owned),
            routes,
            ended,
            reader,
        })
    }

    pub fn session_id(&self) -> &str {
        self.post_url.rsplit_once('=').unwrap().1
    }

    /// POSTs raw bytes to the session's endpoint.
    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.post_url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = token.or(self.token.as_deref()) {
            request = request.bearer_auth(token);
        }
        within("POST /message", Duration::from_secs(10), request.send())
            .await
            .unwrap()
    }

    /// Sends a notification; expects 202.
    pub async fn notify(&self, method: &str) {
        let response = self
            .post_raw(
                json!({"jsonrpc": "2.0", "method": method}).to_string(),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }

    /// Sends a request (expects 202) and waits for its answer on the stream.
    pub async fn request(&self, id: &str, method: &str, params: Value) -> Value {
        let (tx, rx) = oneshot::channel();
        let key = json!(id).to_string();
        {
            let mut routes = self.routes.lock().unwrap();
            if let Some(early) = routes.arrived.remove(&key) {
                return early;
            }
            routes.waiting.insert(key, tx);
        }
        let response = self
            .post_raw(
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
                None,
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "POST {method}: {}",
            response.text().await.unwrap()
        );
        within(
            &format!("the answer to {method} {id}"),
            Duration::from_secs(20),
            rx,
        )
        .await
        .expect("an answer on the stream")
    }

    pub async fn initialize(&self) -> Value {
        let answer = self
            .request("init", "initialize", json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "raw-sse", "version": "0"}}))
            .await;
        self.notify("notifications/initialized").await;
        answer
    }

    /// Calls a tool; returns (structuredContent, isError).
    pub async fn call(&self, id: &str, tool: &str, args: Value) -> (Value, bool) {
        let answer = self
            .request(id, "tools/call", json!({"name": tool, "arguments": args}))
            .await;
        let result = &answer["result"];
        assert!(result.is_object(), "a result: {answer}");
        (
            result["structuredContent"].clone(),
            result["isError"].as_bool().unwrap_or(false),
        )
    }

    /// Waits for the server to end the stream.
    pub async fn wait_ended(&mut self, limit: Duration) {
        within(
            "the end of the SSE stream",
            limit,
            self.ended.wait_for(|ended| *ended),
        )
        .await
        .unwrap();
    }
}

impl Drop for SseClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

pub fn initialize_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}).to_string()
}

/// Finds the value of a metric line whose name and labels match.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
            let series_name = series.split('{').next().unwrap_or("");
            series_name == name && labels.iter().all(|label| series.contains(label))
        })
        .and_then(|line| line.rsplit_once(' '))
        .and_then(|(_, value)| value.parse().ok())
}
