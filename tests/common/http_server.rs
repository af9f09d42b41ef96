//! The server binary over HTTP, as the HTTP tests drive it: started on a free
//! loopback port against a scripted Tenet, with its stderr collected, and raw
//! request helpers.

use std::{
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
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    sync::oneshot,
};

use super::scripted::ScriptedTenet;

pub const KEY: &str = "tnt_http_secret_key_456";
pub const TOKEN_A: &str = "token-for-agent-a-0123456789";
pub const TOKEN_B: &str = "token-for-agent-b-9876543210";
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

pub fn fixture() -> String {
    format!("{}/tests/fixtures/acme.json", env!("CARGO_MANIFEST_DIR"))
}

/// Bounds every wait in these tests.
pub async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
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

/// The server under test: the binary, its base URL, and its stderr.
pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
    log: Arc<Mutex<String>>,
    /// Reads stderr until the process closes it.
    reader: Option<tokio::task::JoinHandle<()>>,
    pub http: reqwest::Client,
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
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
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
            .env("TENET_MCP_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = oneshot::channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            let mut url_tx = Some(url_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("tenet-mcp: listening on ")
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match tokio::time::timeout(Duration::from_secs(15), url_rx).await {
            Ok(Ok(base)) => base,
            _ => panic!(
                "the server did not say where it listens:\n{}",
                log.lock().unwrap()
            ),
        };
        Self {
            child,
            base,
            log,
            reader: Some(reader),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The whole log of an exited server: waits for stderr to be read to its end.
    pub async fn final_log(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            within("the rest of stderr", Duration::from_secs(5), reader)
                .await
                .unwrap();
        }
        self.log()
    }

    /// An rmcp Streamable HTTP client, with a bearer token or none.
    pub async fn client(&self, token: Option<&str>) -> RunningService<RoleClient, ()> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url("/mcp"));
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
        within(
            "initialize over Streamable HTTP",
            Duration::from_secs(10),
            ().serve(transport),
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

    pub async fn live_sessions(&self) -> u64 {
        let health: Value = self.get("/healthz", &[]).await.json().await.unwrap();
        health["sessions"].as_u64().unwrap()
    }

    /// Sends SIGTERM and returns the exit code, bounded.
    pub async fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        within(
            "exit after SIGTERM",
            Duration::from_secs(20),
            self.child.wait(),
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

