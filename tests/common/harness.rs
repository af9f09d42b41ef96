//! The bridge in-process: built with [`tenet_mcp::serve::Upstream`] (the wiring `serve`
//! uses) against a [`ScriptedTenet`], served by [`tenet_mcp::transport::stdio::serve_on`]
//! over a `tokio::io::duplex` pipe and driven by rmcp's client, or served over HTTP on a
//! loopback port by [`Server::serve_until`]. No binary, no argv: binary tests are kept
//! for the command line, exit codes, logs on stderr and stdout purity.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use rmcp::{
    RoleClient, Service, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::{RunningService, ServiceError},
};
use serde_json::Value;
use tenet_mcp::{
    bridge::ToolMode,
    catalog::Catalog,
    error::ServeError,
    governor::JobRefs,
    reload,
    serve::Upstream,
    tenet::ApiKey,
    transport::{
        http::{Options, Server},
        stdio::serve_on,
    },
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf},
    sync::oneshot,
    task::JoinHandle,
};

use super::{http_server::Endpoint, scripted::ScriptedTenet};

/// The API key the bridges under test send to the scripted Tenet: distinct enough
/// that a log or error holding it is a leak.
pub const KEY: &str = "tnt_test_secret_key_456";

/// The test catalog (service `acme`).
pub fn fixture() -> String {
    format!("{}/tests/fixtures/acme.json", env!("CARGO_MANIFEST_DIR"))
}

/// `arguments` (a JSON object) as a `tools/call` of `tool`.
pub fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("tool arguments must be a JSON object, not {arguments}")
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}

/// Calls `tool` with `arguments` (a JSON object) on any connected client.
pub async fn call<C: Service<RoleClient>>(
    client: &RunningService<RoleClient, C>,
    tool: &str,
    arguments: Value,
) -> Result<CallToolResult, ServiceError> {
    client.call_tool(params(tool, arguments)).await
}

/// Calls `tool` on any connected client; its structured result, text and `isError`.
pub async fn ok<C: Service<RoleClient>>(
    client: &RunningService<RoleClient, C>,
    tool: &str,
    arguments: Value,
) -> (Value, String, bool) {
    let result = call(client, tool, arguments).await.expect("a tool result");
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    (
        result.structured_content.expect("structuredContent"),
        text,
        result.is_error.unwrap_or(false),
    )
}

/// The names of every tool any connected client is shown, all pages, in order.
pub async fn tool_names<C: Service<RoleClient>>(
    client: &RunningService<RoleClient, C>,
) -> Vec<String> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

/// Polls `tasks/get` for `task_id` every 50 ms until the task is terminal, and returns it.
pub async fn finished_task<C: Service<RoleClient>>(
    client: &RunningService<RoleClient, C>,
    task_id: &str,
) -> rmcp::model::DetailedTask {
    loop {
        let got = client
            .peer()
            .get_task(rmcp::model::GetTaskParams::new(task_id.to_owned()))
            .await
            .expect("tasks/get of a known task");
        if got.task.status().is_terminal() {
            return got.task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How to build an in-process bridge: `serve`'s flags, as fields.
pub struct Setup {
    /// Tenet's URL (`--api-url`).
    pub api_url: String,
    /// The key sent to Tenet (`TENET_API_KEY`).
    pub api_key: String,
    /// `--agent-id`.
    pub agent_id: String,
    /// `--poll-timeout`, in seconds.
    pub poll_timeout: f64,
    /// `--request-timeout`, in seconds.
    pub request_timeout: f64,
    /// `TENET_MCP_JOB_SECRET`: keys job references instead of the API key.
    pub job_secret: Option<String>,
    /// `--catalog` paths.
    pub catalogs: Vec<PathBuf>,
    /// `--watch`.
    pub watch: bool,
    /// `--tasks`.
    pub tasks: bool,
    /// `--context` pairs.
    pub context: Vec<(String, String)>,
    /// `--tool-mode`.
    pub tool_mode: ToolMode,
}

impl Setup {
    /// The test catalog against `tenet`, with `serve`'s defaults otherwise.
    pub fn new(tenet: &ScriptedTenet) -> Self {
        Self {
            api_url: tenet.url(),
            api_key: KEY.to_owned(),
            agent_id: "default".to_owned(),
            poll_timeout: 120.0,
            request_timeout: 30.0,
            job_secret: None,
            catalogs: vec![fixture().into()],
            watch: false,
            tasks: false,
            context: Vec::new(),
            tool_mode: ToolMode::Static,
        }
    }

    /// With `--agent-id`.
    pub fn agent(mut self, agent_id: &str) -> Self {
        self.agent_id = agent_id.to_owned();
        self
    }

    /// With `--poll-timeout`.
    pub fn poll_timeout(mut self, seconds: f64) -> Self {
        self.poll_timeout = seconds;
        self
    }

    /// With `--request-timeout`.
    pub fn request_timeout(mut self, seconds: f64) -> Self {
        self.request_timeout = seconds;
        self
    }

    /// With `--catalog` (replacing the test catalog).
    pub fn catalog(mut self, path: impl Into<PathBuf>) -> Self {
        self.catalogs = vec![path.into()];
        self
    }

    /// The bridge these settings describe, and its catalog paths.
    fn upstream(&self) -> Upstream {
        let mut upstream = Upstream::new(
            self.api_url.clone(),
            ApiKey::new(self.api_key.clone()).expect("a non-empty key"),
        );
        if let Some(secret) = &self.job_secret {
            upstream.job_refs = JobRefs::derive(secret);
        }
        upstream.agent_id = self.agent_id.clone();
        upstream.context = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        upstream.poll_timeout = Duration::from_secs_f64(self.poll_timeout);
        upstream.request_timeout = Duration::from_secs_f64(self.request_timeout);
        upstream.tasks = self.tasks;
        upstream.tools.mode = self.tool_mode;
        upstream
    }

    /// Starts the bridge and connects rmcp's default client to it.
    pub async fn start(self) -> Harness<()> {
        self.start_with(()).await
    }

    /// Starts the bridge and connects `client` (a handler or client info) to it.
    pub async fn start_with<C: Service<RoleClient>>(self, client: C) -> Harness<C> {
        let (client_side, serving) = self.spawn();
        let client = client
            .serve(tokio::io::split(client_side))
            .await
            .expect("the bridge answers initialize");
        Harness { client, serving }
    }

    /// Starts the bridge with MCP tasks on (`--tasks`) and a client that declares them.
    pub async fn start_with_tasks(self) -> Harness<rmcp::model::ClientConfig> {
        let config = rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::builder()
                .enable_tasks()
                .build(),
            rmcp::model::Implementation::new("task-client", "1"),
        );
        Setup {
            tasks: true,
            ..self
        }
        .start_with(config)
        .await
    }

    /// Starts the bridge for a test that writes and reads raw lines.
    pub fn start_lines(self) -> Lines {
        let (client_side, serving) = self.spawn();
        let (output, input) = tokio::io::split(client_side);
        Lines {
            input,
            output: BufReader::new(output).lines(),
            serving,
        }
    }

    /// Serves the bridge over HTTP as `options` say (`bind` is replaced by a free
    /// loopback port), in-process: [`Server::bind`] then [`Server::serve_until`].
    pub async fn serve_http(self, options: Options) -> HttpHarness {
        let catalog = Arc::new(Catalog::load_or_embedded(&self.catalogs).expect("a valid catalog"));
        let bridge = self
            .upstream()
            .bridge(catalog)
            .expect("the default selection fits any catalog");
        let server = Server::bind(Options {
            bind: "127.0.0.1:0".parse().unwrap(),
            ..options
        })
        .await
        .expect("the HTTP options are valid");
        let endpoint = Endpoint::new(format!("http://{}", server.local_addr()));
        let serving = Serving::spawn(|shutdown| server.serve_until(bridge, shutdown));
        HttpHarness { endpoint, serving }
    }

    /// Serves the bridge on one end of a pipe; returns the other end and the server.
    fn spawn(self) -> (DuplexStream, Serving) {
        let catalog = Arc::new(Catalog::load_or_embedded(&self.catalogs).expect("a valid catalog"));
        let bridge = self
            .upstream()
            .bridge(catalog)
            .expect("the default selection fits any catalog");
        reload::spawn(bridge.clone(), self.catalogs.clone(), self.watch);
        let (client_side, server_side) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server_side);
        let serving =
            Serving::spawn(|shutdown| serve_on(bridge, server_read, server_write, shutdown));
        (client_side, serving)
    }
}

/// A server running in a task, and the shutdown future it was given (resolved by
/// [`Serving::shut_down`], as a signal resolves `serve`'s).
struct Serving {
    task: JoinHandle<Result<(), ServeError>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Serving {
    /// Runs `serve` with a shutdown future.
    fn spawn<F>(serve: impl FnOnce(BoxFuture<'static, ()>) -> F) -> Self
    where
        F: Future<Output = Result<(), ServeError>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async {
            let _ = stopped.await;
        })));
        Self {
            task,
            stop: Some(stop),
        }
    }

    /// Resolves the shutdown future and waits for the server to stop.
    async fn shut_down(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.ended("when asked").await
    }

    /// Waits (at most 10 s) for the server to stop, which it should do `when`.
    async fn ended(mut self, when: &str) -> Result<(), ServeError> {
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop {when}"))
            .expect("the serving task does not panic")
    }
}

/// A bridge in-process that a test talks to in raw newline-delimited JSON-RPC.
pub struct Lines {
    input: WriteHalf<DuplexStream>,
    output: tokio::io::Lines<BufReader<ReadHalf<DuplexStream>>>,
    serving: Serving,
}

impl Lines {
    /// Writes `line` and its newline.
    pub async fn send(&mut self, line: &[u8]) {
        self.input.write_all(line).await.unwrap();
        self.input.write_all(b"\n").await.unwrap();
    }

    /// The next line written back, as JSON.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(15), self.output.next_line())
            .await
            .expect("a line within 15 s")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("an output line is not JSON ({e}): {line}"))
    }

    /// Writes `line`; the next line back.
    pub async fn exchange(&mut self, line: &[u8]) -> Value {
        self.send(line).await;
        self.next().await
    }

    /// Closes the input, as a client that quits does; the bridge's result.
    pub async fn close(mut self) -> Result<(), ServeError> {
        self.input.shutdown().await.unwrap();
        self.serving.ended("once its input ended").await
    }
}

/// A bridge running in-process and the rmcp client connected to it.
pub struct Harness<C: Service<RoleClient> = ()> {
    /// The connected client.
    pub client: RunningService<RoleClient, C>,
    serving: Serving,
}

impl<C: Service<RoleClient>> std::ops::Deref for Harness<C> {
    type Target = RunningService<RoleClient, C>;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl Harness<()> {
    /// The test catalog against `tenet` with `serve`'s defaults.
    pub async fn start(tenet: &ScriptedTenet) -> Self {
        Setup::new(tenet).start().await
    }
}

impl<C: Service<RoleClient>> Harness<C> {
    /// Calls `tool` with `arguments` (a JSON object).
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<CallToolResult, ServiceError> {
        call(&self.client, tool, arguments).await
    }

    /// Calls `tool`; its structured result, text and `isError`.
    pub async fn ok(&self, tool: &str, arguments: Value) -> (Value, String, bool) {
        ok(&self.client, tool, arguments).await
    }

    /// The names of every tool listed, all pages.
    pub async fn tool_names(&self) -> Vec<String> {
        tool_names(&self.client).await
    }

    /// Disconnects the client without waiting for the bridge, which may still be
    /// finishing calls in flight.
    pub async fn disconnect(self) {
        self.client.cancel().await.expect("the client stops");
    }

    /// Disconnects the client and waits for the bridge to finish serving.
    pub async fn stop(self) {
        self.client.cancel().await.expect("the client stops");
        self.serving
            .ended("once its client was gone")
            .await
            .expect("the bridge serves without error");
    }

    /// Asks the bridge to shut down (as a signal does) and waits for it.
    pub async fn shut_down(self) -> Result<(), ServeError> {
        self.serving.shut_down().await
    }
}

/// A bridge served in-process over HTTP on a loopback port, reached through its
/// [`Endpoint`].
pub struct HttpHarness {
    endpoint: Endpoint,
    serving: Serving,
}

impl std::ops::Deref for HttpHarness {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl HttpHarness {
    /// The test catalog against `tenet`, with `serve`'s defaults, over HTTP as
    /// `options` say.
    pub async fn start(tenet: &ScriptedTenet, options: Options) -> Self {
        Setup::new(tenet).serve_http(options).await
    }

    /// Shuts the server down gracefully (as a signal does) and waits for it.
    pub async fn shut_down(self) -> Result<(), ServeError> {
        self.serving.shut_down().await
    }

    /// Shuts the server down, which must go without error.
    pub async fn stop(self) {
        self.shut_down()
            .await
            .expect("the server shuts down cleanly");
    }
}

/// What the code under test logged on this thread while the guard lives: install
/// it first in a `#[tokio::test]` (one thread: the bridge's tasks log there too).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures every log record at `debug` and above until the guard is dropped.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
